"""The one place that picks the compiled extension (`fullduplex.protocol._speedups`) or pure
Python for the hot paths of the frame layer: masking (RFC 6455 §5.3), whole plain messages
received (as events, or handed to a callback), and whole messages framed for sending; and of
the HTTP server: request heads.

The pure-Python code is complete on its own: it runs when the extension is not built, and when
``FULLDUPLEX_NO_SPEEDUPS=1`` asks for it at run time (the test suite's pure-Python pass).
Whether the extension is built at all is setup.py's business (``FULLDUPLEX_BUILD_SPEEDUPS``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = [
    "apply_mask",
    "unmask_payload",
    "parse_messages",
    "deliver_messages",
    "frame_message",
    "MessageDeliverer",
    "PlainReads",
    "parse_request_head",
]


def _apply_mask_python(data: bytes | bytearray | memoryview, mask: bytes | bytearray) -> bytes:
    """Return ``data`` XORed with the repeating 4-byte ``mask``."""
    length = len(data)
    if not length:
        return b""
    # One big-integer XOR runs in C and beats a per-byte loop by two orders of magnitude.
    key = (bytes(mask) * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")


def _unmask_payload_python(
    buffer: bytes | bytearray | memoryview, key_offset: int, start: int, end: int, /
) -> bytes:
    """Return ``buffer[start:end]`` unmasked with the key at ``buffer[key_offset:key_offset+4]``.

    The payload that the key masks starts at ``key_offset + 4``; ``start`` may lie further in.
    (Slicing costs little next to the big-integer XOR; the compiled version avoids the copy.)
    """
    turn = (start - key_offset - 4) % 4
    key = bytes(buffer[key_offset + turn : key_offset + 4]) + bytes(
        buffer[key_offset : key_offset + turn]
    )
    return _apply_mask_python(buffer[start:end], key)


parse_messages: (
    Callable[
        [
            bytes | bytearray | memoryview,
            int,
            int,
            int,
            list[Any],
            Callable[[str], Any] | None,
            Callable[[bytes], Any] | None,
        ],
        int,
    ]
    | None
)
"""The compiled loop of `FrameParser.next_messages` (its Python twin is `frames._take_messages`),
or None where pure Python runs."""

deliver_messages: (
    Callable[
        [
            Callable[[str | bytes], object],
            object,
            object,
            int,
            int,
            bytes | bytearray | memoryview,
            int,
        ],
        int | tuple[int, Exception],
    ]
    | None
)
"""The compiled `frames.deliver_messages` (its Python twin is `frames._deliver_messages_python`),
or None where pure Python runs."""

frame_message: Callable[[str | bytes], bytes] | None
"""The compiled `frames.serialize_message` (its Python twin is `frames._serialize_message_python`),
or None where pure Python runs."""

MessageDeliverer: (
    Callable[
        [Callable[[str | bytes], object], object, object, int, int],
        Callable[[bytes | bytearray | memoryview, int], int | tuple[int, Exception]],
    ]
    | None
)
"""`deliver_messages` with all but its last two arguments bound, compiled (the twin of
``functools.partial(deliver_messages, ...)``, see `frames.bind_deliverer`), or None where
pure Python runs."""

PlainReads: Callable[[Any], Any] | None
"""The compiled `fullduplex.io.asyncio.plumbing._PlainReads` (the callback API's read, whose
Python class defines its contract), or None where pure Python runs. It lives in the extension
because the package has one; it calls only the connection's own methods and attributes."""

parse_request_head: (
    Callable[
        [bytes | bytearray | memoryview, int, int],
        tuple[str, str, str, list[str], int, int, str | None] | None,
    ]
    | None
)
"""The compiled fast path of `http_server._parse_head_python` for plainly valid request heads
(None for anything else), or None where pure Python runs."""

if os.environ.get("FULLDUPLEX_NO_SPEEDUPS") == "1":
    apply_mask = _apply_mask_python
    unmask_payload = _unmask_payload_python
    parse_messages = None
    deliver_messages = None
    frame_message = None
    MessageDeliverer = None
    PlainReads = None
    parse_request_head = None
else:
    try:
        from ._speedups import (
            MessageDeliverer,
            PlainReads,
            apply_mask,
            deliver_messages,
            frame_message,
            parse_messages,
            parse_request_head,
            unmask_payload,
        )
    except ImportError:  # not built, or built from an older _speedups.c
        apply_mask = _apply_mask_python
        unmask_payload = _unmask_payload_python
        parse_messages = None
        deliver_messages = None
        frame_message = None
        MessageDeliverer = None
        PlainReads = None
        parse_request_head = None
