"""The settings a connection runs with, and their defaults, in one place.

`serve`, `connect`, `fullduplex.sync.connect` and the command line all take the same
`Options`: pass ``options=Options(...)``, or any of its fields as keyword arguments
(``connect(url, ping_interval=None)``), which override the object's fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, TypedDict

from ..protocol.connection import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE
from ..protocol.extensions.permessage_deflate import DEFAULT_COMPRESSION_THRESHOLD
from ..protocol.http11 import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADERS

__all__ = ["Options", "OptionOverrides", "DEFAULT_OPTIONS"]


@dataclass(frozen=True, slots=True)
class Options:
    """How a connection behaves: timeouts, keepalive, limits, buffering, compression.

    Every field has the default that `serve` and `connect` use. One object can be shared by
    any number of servers and clients.

    Args:
        open_timeout: seconds for the opening handshake: a server drops a client that has
            not completed its upgrade request by then; a client gives up on the TCP
            connection and the handshake together. None: no limit.
        close_timeout: seconds to wait for the closing handshake before dropping the
            transport; a server also gives its handlers this long at shutdown.
        ping_interval: seconds between keepalive pings; None disables them.
        ping_timeout: seconds to wait for the pong before failing the connection with 1011;
            None waits forever.
        max_size: largest incoming message in bytes, after decompression (1009 beyond);
            None for no limit.
        max_frame_size: largest incoming frame payload; None for no limit but ``max_size``.
        max_fragments: largest number of frames per incoming message.
        max_header_bytes: largest handshake head (request or response) accepted (431 beyond).
        max_headers: most header fields in the handshake head.
        max_queue: received messages buffered before reading pauses. Once this side has
            started the closing handshake, reading goes on until the peer's close frame
            arrives, and messages beyond ``max_queue`` that come meanwhile are dropped.
        write_limit: bytes buffered for writing before `send` waits; also the most that
            sends queue before they are written without waiting for the loop turn's end.
        compression: ``"deflate"`` to negotiate permessage-deflate, None not to.
        compression_threshold: with permessage-deflate, messages shorter than this many bytes
            are sent uncompressed (1 KiB, as Node's ``ws``: below that deflate costs more CPU
            than the bytes it saves are worth); 0 compresses every message. Messages
            received are inflated whatever their size.

    Raises:
        ValueError: ``compression`` is neither ``"deflate"`` nor None, or
            ``compression_threshold`` is negative.
    """

    open_timeout: float | None = 10
    close_timeout: float = 10
    ping_interval: float | None = 20
    ping_timeout: float | None = 20
    max_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    max_frame_size: int | None = None
    max_fragments: int = DEFAULT_MAX_FRAGMENTS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    max_queue: int = 32
    write_limit: int = 64 * 1024
    compression: Literal["deflate"] | None = "deflate"
    compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD

    def __post_init__(self) -> None:
        if self.compression not in ("deflate", None):
            raise ValueError(f"unsupported compression {self.compression!r}; use 'deflate' or None")
        if self.compression_threshold < 0:
            raise ValueError(
                f"compression_threshold must be 0 or more, got {self.compression_threshold}"
            )

    def updated(self, overrides: OptionOverrides) -> Options:
        """Return these options with ``overrides`` applied (self when there are none).

        Raises:
            TypeError: an override names no field of `Options`.
        """
        if not overrides:
            return self
        return dataclasses.replace(self, **overrides)


class OptionOverrides(TypedDict, total=False):
    """The fields of `Options`, as keyword arguments of `serve` and `connect`."""

    open_timeout: float | None
    close_timeout: float
    ping_interval: float | None
    ping_timeout: float | None
    max_size: int | None
    max_frame_size: int | None
    max_fragments: int
    max_header_bytes: int
    max_headers: int
    max_queue: int
    write_limit: int
    compression: Literal["deflate"] | None
    compression_threshold: int


DEFAULT_OPTIONS = Options()
"""The defaults, as the default value of every ``options`` parameter."""
