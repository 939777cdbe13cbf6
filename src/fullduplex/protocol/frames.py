"""The WebSocket frame: its wire format (RFC 6455 §5.2), masking and close payloads.

A frame on the wire::

     0                   1                   2                   3
    |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
    |I|S|S|S|  (4)  |A|     (7)     |           (16/64)             |
    |N|V|V|V|       |S|             |                               |
    | |1|2|3|       |K|             |  Masking-key (0 or 4 bytes), payload ...

`FrameParser` turns bytes into `Frame`s; `serialize_frame` turns a frame back into bytes.
Neither knows about connection state: `connection.py` does. The one shortcut to messages is
`FrameParser.next_messages`, which turns the common case, a whole message in one plain frame,
straight into the caller's message events or bare messages (in C when the extension is built)
and leaves everything else to `next_frame` and the connection; `serialize_message` is its
counterpart on the send side, a whole message in one unmasked frame.

A header is decoded in one place in Python, `_read_header`; the compiled `parse_messages`
(``_speedups.c``) is its C twin for the frames `next_messages` takes.
"""

from __future__ import annotations

import enum
import functools
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from ..exceptions import InvalidPayload, MessageTooBig, ProtocolViolation
from ._compiled import MessageDeliverer as _CompiledDeliverer
from ._compiled import apply_mask, frame_message, parse_messages, unmask_payload
from ._compiled import deliver_messages as _compiled_deliver

__all__ = [
    "Opcode",
    "CloseCode",
    "Frame",
    "FrameParser",
    "serialize_frame",
    "serialize_message",
    "deliver_messages",
    "bind_deliverer",
    "parse_close_payload",
    "serialize_close_payload",
    "apply_mask",
    "MAX_CONTROL_PAYLOAD",
]

MAX_CONTROL_PAYLOAD = 125
"""RFC 6455 §5.5: control frames carry at most 125 bytes of payload."""


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 §5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA

    @property
    def is_control(self) -> bool:
        """Whether this is a control opcode (close, ping or pong)."""
        return self >= 0x8


_KNOWN_OPCODES = frozenset(Opcode)


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 §7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


# RFC 6455 §7.4.1 / §7.4.2 and the IANA registry: the codes an endpoint may put on the wire.
# 1004 is reserved, 1005/1006/1015 are reserved for reporting and never sent.
_SENDABLE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_sendable_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame on the wire."""
    return code in _SENDABLE_CODES or 3000 <= code <= 4999


class Frame(NamedTuple):
    """One WebSocket frame with its payload already unmasked.

    A named tuple rather than a dataclass because one is built per frame on the hot path.
    """

    opcode: int
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


_KEEP_BUFFER_BYTES = 64 * 1024

_UNPACK_16 = struct.Struct("!H").unpack_from
_UNPACK_64 = struct.Struct("!Q").unpack_from
_PACK_2 = struct.Struct("!BB").pack
_PACK_4 = struct.Struct("!BBH").pack
_PACK_10 = struct.Struct("!BBQ").pack

Buffer = bytes | bytearray | memoryview
TextMessage = Callable[[str], Any] | None
"""What `FrameParser.next_messages` builds a text message with: a one-field tuple subclass, or
None for the bare str."""
BinaryMessage = Callable[[bytes], Any] | None
"""What `FrameParser.next_messages` builds a binary message with: a one-field tuple subclass,
or None for the bare bytes."""


def _read_header(buffer: Buffer, start: int) -> tuple[int, int, int, int] | None:
    """Decode the frame header at ``buffer[start:]`` (RFC 6455 §5.2).

    Returns:
        ``(first byte, mask bit, payload length, offset)``, where the mask bit is 0x80 or 0 and
        ``offset`` is that of the masking key, or of the payload when there is no key; None
        while the header is incomplete. Nothing is checked: the length may have its most
        significant bit set.
    """
    available = len(buffer) - start
    if available < 2:
        return None
    second = buffer[start + 1]
    length = second & 0x7F
    if length < 126:
        return buffer[start], second & 0x80, length, start + 2
    if length == 126:
        if available < 4:
            return None
        return buffer[start], second & 0x80, _UNPACK_16(buffer, start + 2)[0], start + 4
    if available < 10:
        return None
    return buffer[start], second & 0x80, _UNPACK_64(buffer, start + 2)[0], start + 10


class FrameParser:
    """Incremental frame parser: feed bytes, then pull complete frames.

    The parser checks what a frame header alone can tell: masking (a server requires masked
    frames, a client refuses them, RFC 6455 §5.1), known opcodes, the control-frame rules of
    §5.5 and the payload size limit. A frame over the limit is refused as soon as its header
    is read, so its payload is never buffered.

    Args:
        expect_masked: True on the server side, where every frame must be masked.
    """

    __slots__ = (
        "_buffer",
        "_position",
        "_mask_bit",
        "_discard",
        "refused_opcode",
    )

    def __init__(self, *, expect_masked: bool) -> None:
        self._buffer = bytearray()
        self._position = 0
        self._mask_bit = 0x80 if expect_masked else 0
        # Bytes still to drop of a refused frame, so parsing resumes at the next frame.
        self._discard = 0
        self.refused_opcode: int | None = None
        """The opcode of the last frame `next_frame` refused."""

    def feed(self, data: Buffer) -> None:
        """Append received bytes."""
        if self._discard:
            skipped = min(self._discard, len(data))
            self._discard -= skipped
            data = data[skipped:]
        if self._position:
            del self._buffer[: self._position]
            self._position = 0
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as frames."""
        return len(self._buffer) - self._position

    def next_frame(self, max_payload: int) -> Frame | None:
        """Return the next complete frame, or None until more bytes arrive.

        After an error the refused frame is skipped, so the caller may go on parsing (to
        receive the peer's close frame) unless the length itself was invalid.

        Args:
            max_payload: the largest data-frame payload acceptable right now.

        Raises:
            ProtocolViolation: the header breaks RFC 6455.
            MessageTooBig: the payload length exceeds ``max_payload``.
        """
        buffer = self._buffer
        start = self._position
        header = _read_header(buffer, start)
        if header is None:
            return None
        first, is_masked, length, offset = header
        opcode = first & 0x0F
        if length >> 63:
            self._discard = 2**63  # the stream cannot be resynchronized
            raise ProtocolViolation("frame length has its most significant bit set")
        end = offset + (4 if is_masked else 0) + length
        # Fast path: a data frame within the limit, masked as expected; anything else is checked
        # in full by _header_error.
        if opcode > 2 or length > max_payload or is_masked != self._mask_bit:
            error = self._header_error(first, opcode, length, max_payload, is_masked)
            if error is not None:
                self.refused_opcode = opcode
                self._skip(end - start)
                raise error
        if len(buffer) < end:
            return None
        if is_masked:
            payload = unmask_payload(buffer, offset, offset + 4, end)
        else:
            payload = bytes(buffer[offset:end])
        self._position = end
        if end == len(buffer):
            self._forget_buffer()
        return Frame(
            opcode,
            payload,
            (first & 0x80) != 0,
            (first & 0x40) != 0,
            (first & 0x20) != 0,
            (first & 0x10) != 0,
        )

    def next_messages(
        self,
        max_payload: int,
        events: list[Any],
        text_message: TextMessage,
        binary_message: BinaryMessage,
    ) -> int:
        """Turn the whole messages in one plain frame at the head of the buffer into events.

        Takes every consecutive complete frame with FIN set, RSV1-3 clear, opcode TEXT or
        BINARY, masked as expected and with at most ``max_payload`` bytes of valid payload (text
        must be valid UTF-8), and appends ``text_message(str)`` or ``binary_message(bytes)`` for
        each to ``events`` (a list). Both must be one-field tuple subclasses, which the
        compiled loop fills itself (`TextReceived`, `BinaryReceived`), or None: then the bare
        str or bytes is appended. It stops at the first
        frame that is incomplete or anything else, invalid frames included: call `next_frame`
        next, which returns that frame or reports its error.
        Frames are consumed exactly as `next_frame` would consume them.

        Only a connection without extensions and between messages may call this: such a frame
        is a message there, and nowhere else.

        Returns:
            The number of events appended.
        """
        buffer = self._buffer
        count = len(events)
        start = _take_messages(
            buffer,
            self._position,
            self._mask_bit,
            max_payload,
            events,
            text_message,
            binary_message,
        )
        count = len(events) - count
        if count:
            self._position = start
            if start == len(buffer):
                self._forget_buffer()
        return count

    def feed_messages(
        self,
        data: Buffer,
        max_payload: int,
        events: list[Any],
        text_message: TextMessage,
        binary_message: BinaryMessage,
    ) -> int:
        """`feed` ``data``, then take its whole messages in one plain frame as `next_messages`.

        When nothing is buffered, the messages are taken straight from ``data`` and only the
        rest is buffered: a read that holds whole frames, the usual case, is never copied.
        The same callers as `next_messages` may call this.

        Returns:
            The number of events appended.
        """
        if self._position < len(self._buffer) or self._discard:
            self.feed(data)
            return self.next_messages(max_payload, events, text_message, binary_message)
        count = len(events)
        taken = _take_messages(
            data, 0, self._mask_bit, max_payload, events, text_message, binary_message
        )
        if taken < len(data):
            self.feed(data[taken:] if taken else data)
        return len(events) - count

    def feed_bare_messages(self, data: Buffer, max_payload: int, messages: list[Any]) -> bool:
        """`feed_messages` with bare messages: append the str or bytes of each whole message in
        one plain frame at the head of the stream to ``messages``. The same callers may call it.

        Returns:
            Whether bytes are left buffered: then call `next_frame`.
        """
        if self._position < len(self._buffer) or self._discard:
            self.feed(data)
            self.next_messages(max_payload, messages, None, None)
            return self._position < len(self._buffer)
        taken = _take_messages(data, 0, self._mask_bit, max_payload, messages, None, None)
        if taken == len(data):
            return False
        self.feed(data[taken:] if taken else data)
        return True

    def _forget_buffer(self) -> None:
        """Empty the buffer once every byte in it was parsed."""
        if len(self._buffer) > _KEEP_BUFFER_BYTES:
            # A new object, not clear(): CPython shrinks a large bytearray's memory in place,
            # and growing it again for the next large frame faults in every page anew (256 page
            # faults per 1 MiB message), where freed memory is otherwise reused.
            self._buffer = bytearray()
        else:
            self._buffer.clear()
        self._position = 0

    def _header_error(
        self, first: int, opcode: int, length: int, max_payload: int, is_masked: int
    ) -> ProtocolViolation | None:
        if opcode not in _KNOWN_OPCODES:
            return ProtocolViolation(f"reserved opcode {opcode:#x}")
        if opcode >= 0x8:
            if not first & 0x80:
                return ProtocolViolation("fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                return ProtocolViolation(f"control frame payload of {length} bytes exceeds 125")
        elif length > max_payload:
            return MessageTooBig(f"frame of {length} bytes exceeds the limit of {max_payload}")
        if is_masked != self._mask_bit:
            # RFC 6455 §5.1: a server fails on unmasked frames, a client on masked ones.
            return ProtocolViolation(
                "client frame is not masked" if self._mask_bit else "server frame is masked"
            )
        return None

    def _skip(self, count: int) -> None:
        available = len(self._buffer) - self._position
        self._position += min(count, available)
        self._discard = max(0, count - available)

    @property
    def head_opcode(self) -> int | None:
        """The opcode of the frame at the head of the buffer, or None when nothing is buffered."""
        if self._position < len(self._buffer):
            return self._buffer[self._position] & 0x0F
        return None

    def peek_payload(self, offset: int) -> tuple[int, bytes] | None:
        """Return the opcode and the received payload bytes, from ``offset``, of the incomplete
        data frame at the head of the buffer, or None when its header is incomplete.

        Lets the caller validate a text frame's UTF-8 before all of it arrived, to fail fast.
        """
        buffer = self._buffer
        header = _read_header(buffer, self._position)
        if header is None:
            return None
        first, is_masked, _, key_offset = header
        payload_start = key_offset + (4 if is_masked else 0)
        if len(buffer) <= payload_start + offset:
            return None
        if is_masked:
            chunk = unmask_payload(buffer, key_offset, payload_start + offset, len(buffer))
        else:
            chunk = bytes(buffer[payload_start + offset :])
        return first & 0x0F, chunk


def _plain_message_at(
    buffer: Buffer, start: int, mask_bit: int, max_payload: int
) -> tuple[int, str | bytes] | None:
    """Return the end and the message of the whole message in one plain frame at
    ``buffer[start:]``, or None when the frame there is anything else, incomplete, or text that
    is not valid UTF-8 (`next_frame` then returns it, and the connection reports the error)."""
    header = _read_header(buffer, start)
    if header is None:
        return None
    first, is_masked, length, offset = header
    # 0x81 and 0x82: FIN, no RSV bits, TEXT or BINARY; and the mask bit RFC 6455 §5.1 asks.
    if (first != 0x81 and first != 0x82) or is_masked != mask_bit or length > max_payload:
        return None
    if mask_bit:
        end = offset + 4 + length
        if end > len(buffer):
            return None
        payload = unmask_payload(buffer, offset, offset + 4, end)
    else:
        end = offset + length
        if end > len(buffer):
            return None
        payload = bytes(buffer[offset:end])
    if first == 0x82:
        return end, payload
    try:
        return end, payload.decode()
    except UnicodeDecodeError:
        return None


def _take_messages_python(
    buffer: Buffer,
    start: int,
    mask_bit: int,
    max_payload: int,
    events: list[Any],
    text_message: TextMessage,
    binary_message: BinaryMessage,
) -> int:
    """Append the events of the plain one-frame messages at ``buffer[start:]``; return the
    position after the last frame taken. The loop of `FrameParser.next_messages`, and the
    contract of its compiled twin `parse_messages`."""
    while (taken := _plain_message_at(buffer, start, mask_bit, max_payload)) is not None:
        start, message = taken
        if isinstance(message, str):
            events.append(message if text_message is None else text_message(message))
        else:
            events.append(message if binary_message is None else binary_message(message))
    return start


def _deliver_messages_python(
    callback: Callable[[str | bytes], object],
    owner: Any,
    open_state: object,
    mask_bit: int,
    max_payload: int,
    buffer: Buffer,
    nbytes: int,
) -> int | tuple[int, Exception]:
    """Call ``callback(message)`` for each whole message in one plain frame at the head of
    ``buffer[:nbytes]``, while ``owner.state is open_state`` (checked before each message).

    The contract of the compiled `deliver_messages`.

    Returns:
        The position after the last frame taken; or, when ``callback`` raised an Exception,
        ``(position, exception)``, the frame of that message included in ``position``.
    """
    view = memoryview(buffer)[:nbytes]
    start = 0
    while owner.state is open_state:
        taken = _plain_message_at(view, start, mask_bit, max_payload)
        if taken is None:
            break
        start, message = taken
        try:
            callback(message)
        except Exception as exc:
            return start, exc
    return start


_take_messages = parse_messages if parse_messages is not None else _take_messages_python

deliver_messages: Callable[
    [Callable[[str | bytes], object], Any, object, int, int, Buffer, int],
    int | tuple[int, Exception],
] = _compiled_deliver if _compiled_deliver is not None else _deliver_messages_python
"""Call ``callback(message)`` for each whole message in one plain frame at the head of
``buffer[:nbytes]``: ``deliver_messages(callback, owner, open_state, mask_bit, max_payload,
buffer, nbytes)``, in C when the extension is built (see `_deliver_messages_python`). For
`Connection.message_deliverer`, which binds every argument but the last two (`bind_deliverer`)."""


def bind_deliverer(
    callback: Callable[[str | bytes], object],
    owner: Any,
    open_state: object,
    mask_bit: int,
    max_payload: int,
) -> Callable[[Buffer, int], int | tuple[int, Exception]]:
    """Return `deliver_messages` with all but its last two arguments bound:
    ``deliver(buffer, nbytes)``.

    A compiled object where the extension is built (its arguments are checked once, here,
    not on every read; the callback API's compiled read calls it without a Python call),
    else ``functools.partial``.
    """
    if _CompiledDeliverer is not None:
        return _CompiledDeliverer(callback, owner, open_state, mask_bit, max_payload)
    return functools.partial(deliver_messages, callback, owner, open_state, mask_bit, max_payload)


def serialize_frame(
    opcode: int,
    payload: Buffer,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
) -> list[bytes | bytearray | memoryview]:
    """Return the bytes of one frame, as a list of buffers to write in order.

    The payload is not copied when no mask is applied.

    Args:
        mask: the 4-byte masking key; a client must always pass one (RFC 6455 §5.3).
    """
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        header = _PACK_2(first, mask_bit | length)
    elif length < 0x10000:
        header = _PACK_4(first, mask_bit | 126, length)
    else:
        header = _PACK_10(first, mask_bit | 127, length)
    if mask is None:
        return [header, payload]
    return [header + mask + apply_mask(payload, mask)]


def _serialize_message_python(message: str | bytes) -> bytes:
    """Return one unmasked frame carrying the whole ``message``, header and payload in one
    bytes object. The contract of the compiled `frame_message`."""
    if type(message) is str:
        first = 0x81  # FIN, TEXT
        payload = message.encode()
    elif type(message) is bytes:
        first = 0x82  # FIN, BINARY
        payload = message
    else:
        raise TypeError(f"cannot send {type(message).__name__}; use str or bytes")
    length = len(payload)
    if length < 126:
        return _PACK_2(first, length) + payload
    if length < 0x10000:
        return _PACK_4(first, 126, length) + payload
    return _PACK_10(first, 127, length) + payload


serialize_message: Callable[[str | bytes], bytes] = (
    frame_message if frame_message is not None else _serialize_message_python
)
"""Return one unmasked frame (a server's) carrying the whole message, in one bytes object: FIN
and TEXT with the UTF-8 of a ``str``, FIN and BINARY for ``bytes``. One call and one object per
message, where `serialize_frame` returns a header and the payload apart (which spares copying
a large payload).

Raises:
    TypeError: the message is neither exactly ``str`` nor ``bytes``.
    UnicodeEncodeError: the str holds a lone surrogate.
"""


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Return ``(code, reason)`` from a close frame's payload (RFC 6455 §5.5.1).

    An empty payload means "no status code": ``(1005, "")``.

    Raises:
        ProtocolViolation: the payload is one byte long, or the code may not be sent.
        InvalidPayload: the reason is not valid UTF-8.
    """
    if not payload:
        return CloseCode.NO_STATUS_RCVD, ""
    if len(payload) == 1:
        raise ProtocolViolation("close frame payload of 1 byte")
    (code,) = _UNPACK_16(payload)
    if not is_sendable_close_code(code):
        raise ProtocolViolation(f"invalid close code {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError as exc:
        raise InvalidPayload("close reason is not valid UTF-8") from exc
    return code, reason


def serialize_close_payload(code: int, reason: str = "") -> bytes:
    """Return a close frame's payload for ``code`` and ``reason``.

    Code 1005 ("no status") gives an empty payload, as §7.1.5 describes.

    Raises:
        ValueError: the code may not be sent, or the reason exceeds 123 UTF-8 bytes.
    """
    if code == CloseCode.NO_STATUS_RCVD:
        if reason:
            raise ValueError("a close without a code cannot carry a reason")
        return b""
    if not is_sendable_close_code(code):
        raise ValueError(f"close code {code} may not be sent")
    encoded = reason.encode()
    if len(encoded) > MAX_CONTROL_PAYLOAD - 2:
        raise ValueError(f"close reason of {len(encoded)} UTF-8 bytes exceeds 123")
    return struct.pack("!H", code) + encoded
