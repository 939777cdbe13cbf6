"""Socket.IO v5 packets, sans I/O: text and binary Engine.IO messages in, `Packet` out, and back.

Wire format (socket.io-protocol v5, "Packet encoding")::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

followed, for BINARY_EVENT (5) and BINARY_ACK (6), by ``<attachments>`` binary messages that
replace the ``{"_placeholder":true,"num":N}`` objects of the payload. The namespace is omitted
for ``/``; it may end the message without a comma (``40/admin``).

Refusal policy (everything raises `InvalidPacket`, after which the connection is closed, as
the reference server does): an unknown type; a malformed attachment count, zero, or more than
``max_attachments``; an ack id that is not a safe JavaScript integer (more than 2**53 - 1); a
payload that is not JSON or not of the type's shape (CONNECT an object, DISCONNECT none,
EVENT a non-empty array starting with an event name that is not reserved, ACK an array);
a binary message when no attachment is expected; a text message while attachments are
awaited; placeholders that do not name each announced attachment exactly once.
"""

from __future__ import annotations

import enum
import re
from typing import Any, NamedTuple

from ...exceptions import ProtocolViolation
from ..jsontext import dumps as _DUMPS
from ..jsontext import loads as _LOADS

__all__ = [
    "PacketType",
    "Packet",
    "InvalidPacket",
    "Decoder",
    "encode",
    "encode_ack",
    "RESERVED_EVENTS",
    "MAX_ACK_ID",
]

RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
"""Event names a client may not emit (they mean something to the server or client library)."""

MAX_ACK_ID = 2**53 - 1
"""The largest ack id: JavaScript's largest safe integer, as clients count them."""


class PacketType(enum.IntEnum):
    """The seven packet types of Socket.IO v5."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


class InvalidPacket(ProtocolViolation):
    """A client sent a packet that breaks the Socket.IO protocol; the connection is closed."""


# A NamedTuple rather than a frozen dataclass: as immutable, and built in 40% of the time
# (600 ns for a frozen dataclass here), which shows when packets are built for every event.
class Packet(NamedTuple):
    """One Socket.IO packet with its binary attachments already put back in ``data``.

    ``type`` is EVENT or ACK whether or not the data holds bytes: `encode` picks the binary
    variant itself, and `Decoder` reports BINARY_EVENT / BINARY_ACK as EVENT / ACK.
    """

    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None


_HEADS = {kind: str(int(kind)) for kind in PacketType}
_BINARY = (bytes, bytearray, memoryview)


def _has_binary(value: Any) -> bool:
    if isinstance(value, _BINARY):
        return True
    if isinstance(value, list | tuple):
        return any(_has_binary(item) for item in value)
    if isinstance(value, dict):
        return any(_has_binary(item) for item in value.values())
    return False


def _deconstruct(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, _BINARY):
        buffers.append(bytes(value))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(value, list | tuple):
        return [_deconstruct(item, buffers) for item in value]
    if isinstance(value, dict):
        return {key: _deconstruct(item, buffers) for key, item in value.items()}
    return value


def encode(packet: Packet) -> list[str | bytes]:
    """Serialize ``packet`` into the Engine.IO messages that carry it, text first.

    Raises:
        ValueError: ``data`` holds something JSON cannot carry (NaN, an arbitrary object).
        TypeError: the same, for types json refuses.
    """
    data = packet.data
    kind = packet.type
    payload = ""
    if data is not None:
        try:
            payload = _DUMPS(data)
        except TypeError:
            # Most packets carry no bytes: only when json refuses something look for them.
            if kind not in (PacketType.EVENT, PacketType.ACK) or not _has_binary(data):
                raise
    head = _HEADS[kind] if packet.namespace == "/" else f"{int(kind)}{packet.namespace},"
    if packet.id is not None:
        head += str(packet.id)
    if data is None or payload:
        return [head + payload]
    buffers: list[bytes] = []
    data = _deconstruct(data, buffers)
    binary = PacketType.BINARY_EVENT if kind == PacketType.EVENT else PacketType.BINARY_ACK
    head = f"{int(binary)}{len(buffers)}-"
    if packet.namespace != "/":
        head += packet.namespace + ","
    if packet.id is not None:
        head += str(packet.id)
    messages: list[str | bytes] = [head + _DUMPS(data)]
    messages.extend(buffers)
    return messages


def encode_ack(namespace: str, ack_id: int, args: list[Any] | tuple[Any, ...]) -> list[str | bytes]:
    """Serialize the ACK of event ``ack_id`` with ``args``: what
    ``encode(Packet(PacketType.ACK, namespace, list(args), ack_id))`` returns, without the
    `Packet` on the usual path (a server acks every event).

    Raises:
        ValueError: ``args`` hold something JSON cannot carry (NaN).
        TypeError: the same, for types json refuses.
    """
    if namespace == "/":
        try:
            return [f"3{ack_id}{_DUMPS(args)}"]
        except TypeError:
            pass  # bytes among the arguments: a BINARY_ACK
    return encode(Packet(PacketType.ACK, namespace, list(args), ack_id))


def _valid_payload(kind: PacketType, payload: Any) -> bool:
    if kind == PacketType.CONNECT:
        return isinstance(payload, dict)
    if kind == PacketType.DISCONNECT:
        return False  # DISCONNECT carries no payload at all
    if kind == PacketType.CONNECT_ERROR:
        return isinstance(payload, str | dict)
    if kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
        if not isinstance(payload, list) or not payload:
            return False
        name = payload[0]
        if isinstance(name, bool):
            return False
        return isinstance(name, int | float) or (
            isinstance(name, str) and name not in RESERVED_EVENTS
        )
    return isinstance(payload, list)


# type, attachment count and "-", namespace (up to "," or the end), ack id; JSON follows.
_HEADER = re.compile(r"([0-6])(?:([0-9]*)-)?(?:(/[^,]*),?)?([0-9]*)")
_KINDS = tuple(PacketType)
_NEEDS_PAYLOAD = frozenset(
    {PacketType.EVENT, PacketType.BINARY_EVENT, PacketType.ACK, PacketType.BINARY_ACK}
)
_BINARY_KINDS = frozenset({PacketType.BINARY_EVENT, PacketType.BINARY_ACK})


# As module constants: ``PacketType.EVENT`` costs about 0.3 µs on Python 3.11 (the enum
# metaclass's attribute lookup), a global 0.02 µs.
_EVENT = PacketType.EVENT
_ACK = PacketType.ACK


def _parse_text(text: str, max_attachments: int) -> tuple[Packet, int]:
    kind_digit = text[:1]
    if kind_digit == "2" or kind_digit == "3":
        # The usual packet, an EVENT or ACK for "/" without attachments ("2" ack id? "["),
        # read without the regular expression.
        bracket = text.find("[", 1)
        digits = text[1:bracket]
        if bracket > 0 and (not digits or (digits.isascii() and digits.isdigit())):
            ack_id: int | None = None
            if digits:
                ack_id = int(digits) if len(digits) <= 16 else MAX_ACK_ID + 1
                if ack_id > MAX_ACK_ID:
                    raise InvalidPacket("ack id out of range")
            try:
                payload: Any = _LOADS(text[bracket:])
            except ValueError as exc:
                raise InvalidPacket("invalid payload: not JSON") from exc
            # JSON text that starts with "[" is an array: an ACK's whole check. An EVENT's
            # usual name, a string that is not reserved, is checked here.
            if kind_digit == "2":
                name = payload[0] if payload else None
                if (type(name) is not str or name in RESERVED_EVENTS) and not _valid_payload(
                    PacketType.EVENT, payload
                ):
                    raise InvalidPacket("invalid payload for a EVENT packet")
                return Packet(_EVENT, "/", payload, ack_id), 0
            return Packet(_ACK, "/", payload, ack_id), 0
    header = _HEADER.match(text)
    if header is None:
        raise InvalidPacket(f"unknown packet type {text[:1]!r}")
    kind_digit, count, namespace, digits = header.groups()
    kind = _KINDS[ord(kind_digit) - 48]
    attachments = 0
    if kind in _BINARY_KINDS:
        if not count or len(count) > 6 or not 1 <= int(count) <= max_attachments:
            raise InvalidPacket(f"illegal attachment count {count!r} (1 to {max_attachments})")
        attachments = int(count)
    elif count is not None:
        raise InvalidPacket(f"a {kind.name} packet has no attachment count")
    ack_id = None
    if digits:
        # Bound the digits before converting: a million of them would be slow to parse.
        ack_id = int(digits) if len(digits) <= 16 else MAX_ACK_ID + 1
        if ack_id > MAX_ACK_ID:
            raise InvalidPacket("ack id out of range")
    payload = None
    rest = text[header.end() :]
    if rest:
        try:
            payload = _LOADS(rest)
        except ValueError as exc:
            raise InvalidPacket("invalid payload: not JSON") from exc
        if not _valid_payload(kind, payload):
            raise InvalidPacket(f"invalid payload for a {kind.name} packet")
    elif kind in _NEEDS_PAYLOAD:
        raise InvalidPacket(f"a {kind.name} packet needs a payload")
    return Packet(kind, namespace or "/", payload, ack_id), attachments


def _reconstruct(value: Any, buffers: list[bytes], used: list[int]) -> Any:
    if isinstance(value, list):
        return [_reconstruct(item, buffers, used) for item in value]
    if isinstance(value, dict):
        if value.get("_placeholder") is True and len(value) == 2:
            num = value.get("num")
            if not isinstance(num, int) or isinstance(num, bool) or not 0 <= num < len(buffers):
                raise InvalidPacket("placeholder names no announced attachment")
            used.append(num)
            return buffers[num]
        return {key: _reconstruct(item, buffers, used) for key, item in value.items()}
    return value


class Decoder:
    """Turns a connection's Engine.IO messages into `Packet` objects, one connection each.

    Args:
        max_attachments: the most binary attachments one packet may announce.
    """

    __slots__ = ("max_attachments", "_pending", "_expected", "_buffers")

    def __init__(self, max_attachments: int = 10) -> None:
        self.max_attachments = max_attachments
        self._pending: Packet | None = None
        self._expected = 0
        self._buffers: list[bytes] = []

    @property
    def is_awaiting_attachments(self) -> bool:
        """Whether a binary packet's header came and some of its attachments did not."""
        return self._pending is not None

    def receive(self, message: str | bytes) -> Packet | None:
        """Feed one Engine.IO message.

        Returns:
            The packet it completes, or None while a binary packet still awaits attachments.

        Raises:
            InvalidPacket: the message breaks the protocol; the decoder must not be used again.
        """
        if isinstance(message, str):
            if self._pending is not None:
                raise InvalidPacket("text message while binary attachments were expected")
            packet, attachments = _parse_text(message, self.max_attachments)
            if not attachments:
                return packet
            self._pending, self._expected, self._buffers = packet, attachments, []
            return None
        if self._pending is None:
            raise InvalidPacket("binary message without a packet announcing it")
        self._buffers.append(bytes(message))
        if len(self._buffers) < self._expected:
            return None
        pending, buffers = self._pending, self._buffers
        self._pending, self._expected, self._buffers = None, 0, []
        used: list[int] = []
        data = _reconstruct(pending.data, buffers, used)
        if sorted(used) != list(range(len(buffers))):
            raise InvalidPacket("placeholders do not match the announced attachment count")
        kind = PacketType.EVENT if pending.type == PacketType.BINARY_EVENT else PacketType.ACK
        return Packet(kind, pending.namespace, data, pending.id)
