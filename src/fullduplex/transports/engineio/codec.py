"""Engine.IO v4 packets on the wire: sans-I/O encoding and decoding.

Engine.IO (protocol revision 4, https://github.com/socketio/engine.io-protocol) carries
packets of seven types, each written as one ASCII digit followed by its data:

=====  =========  ==========================================================
digit  type       meaning
=====  =========  ==========================================================
0      OPEN       server to client, once: the handshake's JSON
1      CLOSE      either side ends the session
2      PING       server to client (heartbeat); ``2probe`` from the client
3      PONG       client to server (heartbeat); ``3probe`` from the server
4      MESSAGE    application data, text or binary
5      UPGRADE    client to server over the new WebSocket: switch now
6      NOOP       ends a pending long-poll during an upgrade
=====  =========  ==========================================================

Two framings:

- **WebSocket**: one packet per WebSocket message. A text frame holds ``digit + data``; a
  binary frame is a MESSAGE packet whose data is the frame's bytes, with no prefix.
- **HTTP long-polling**: a *payload* is several packets joined by the record separator
  ``\\x1e``, all as text; a binary MESSAGE is written ``b`` followed by its base64 form.

Everything here is pure: no sockets, no clocks. Decoding refuses what the protocol does not
define with `InvalidPacket`, whose ``close_code`` is the one a WebSocket close uses.
"""

from __future__ import annotations

import binascii
import enum
import json
from base64 import b64decode, b64encode
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import NamedTuple

from ...exceptions import ProtocolViolation

__all__ = [
    "PacketType",
    "Packet",
    "InvalidPacket",
    "RECORD_SEPARATOR",
    "encode_packet",
    "decode_packet",
    "encode_payload",
    "decode_payload",
    "open_packet",
    "ServerError",
]

RECORD_SEPARATOR = "\x1e"
"""Separates packets in a long-polling payload (engine.io-protocol, "Payload")."""


class PacketType(enum.IntEnum):
    """The seven Engine.IO v4 packet types, numbered as on the wire."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


_TYPE_BY_DIGIT = {str(int(kind)): kind for kind in PacketType}
_DIGIT_BY_TYPE = {kind: digit for digit, kind in _TYPE_BY_DIGIT.items()}


class InvalidPacket(ProtocolViolation):
    """A packet or payload is not valid Engine.IO v4; the session ends ("parse error")."""


# A NamedTuple rather than a frozen dataclass: as immutable, and built in 40% of the time
# (600 ns for a frozen dataclass here), which shows when packets are built for every event.
class Packet(NamedTuple):
    """One Engine.IO packet.

    Attributes:
        type: what the packet is.
        data: its data: ``str`` for text, ``bytes`` for a binary MESSAGE; ``"probe"`` in the
            upgrade's PING/PONG, the handshake's JSON in OPEN, empty otherwise.
    """

    type: PacketType
    data: str | bytes = ""


# Builds a `Packet` from (type, data) without the NamedTuple's Python-level __new__ (a third of
# the time), for the packets of every event.
_new_packet = tuple.__new__


def encode_packet(packet: Packet) -> str | bytes:
    """Return ``packet`` as one WebSocket message: ``str`` for a text frame, ``bytes`` for binary.

    Raises:
        TypeError: ``packet`` has binary data but is not a MESSAGE.
    """
    data = packet.data
    if isinstance(data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise TypeError(f"only MESSAGE packets carry binary data, not {packet.type.name}")
        return data
    return f"{int(packet.type)}{data}"


def decode_packet(message: str | bytes) -> Packet:
    """Return the packet in one WebSocket message (``bytes`` for a binary frame).

    Raises:
        InvalidPacket: a text message that is empty or does not start with a packet type.
    """
    if not isinstance(message, str):
        return Packet(PacketType.MESSAGE, bytes(message))
    kind = _TYPE_BY_DIGIT.get(message[:1])
    if kind is None:
        raise InvalidPacket(f"unknown packet type in {message[:20]!r}")
    packet: Packet = _new_packet(Packet, (kind, message[1:]))
    return packet


def encode_payload(packets: Iterable[Packet]) -> bytes:
    """Return ``packets`` as one long-polling payload, UTF-8 encoded (a response body)."""
    parts = []
    for packet in packets:
        data = packet.data
        if isinstance(data, bytes):
            # engine.io-protocol, "HTTP long-polling": binary data is base64 with a "b" prefix.
            parts.append("b" + b64encode(data).decode("ascii"))
        else:
            parts.append(_DIGIT_BY_TYPE[packet.type] + data)
    return RECORD_SEPARATOR.join(parts).encode()


def decode_payload(body: bytes) -> list[Packet]:
    """Return the packets of one long-polling payload (a POST body).

    Raises:
        InvalidPacket: the body is not UTF-8, is empty, or holds a packet that is empty, of an
            unknown type, or ``b`` followed by invalid base64.
    """
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise InvalidPacket("payload is not UTF-8") from exc
    packets = []
    for part in text.split(RECORD_SEPARATOR):
        if part[:1] == "b":
            try:
                packets.append(Packet(PacketType.MESSAGE, b64decode(part[1:], validate=True)))
            except binascii.Error as exc:
                raise InvalidPacket("invalid base64 in a binary packet") from exc
        else:
            packets.append(decode_packet(part))
    return packets


def open_packet(
    sid: str,
    upgrades: Sequence[str],
    ping_interval_ms: int,
    ping_timeout_ms: int,
    max_payload_bytes: int,
) -> Packet:
    """Return the handshake's OPEN packet (engine.io-protocol, "Handshake").

    Args:
        sid: the session id the client sends back in every later request.
        upgrades: the transports the client may upgrade to (``["websocket"]`` from polling).
        ping_interval_ms: the heartbeat's interval, in milliseconds, advertised as is.
        ping_timeout_ms: how long the server waits for a pong, in milliseconds.
        max_payload_bytes: the largest payload the server accepts in one request.
    """
    handshake = {
        "sid": sid,
        "upgrades": list(upgrades),
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max_payload_bytes,
    }
    return Packet(PacketType.OPEN, json.dumps(handshake, separators=(",", ":")))


class ServerError(enum.IntEnum):
    """Why the server refuses an HTTP request, with the code and message engine.io answers.

    The answer is ``http_status`` with the JSON body `body`, e.g. HTTP 400 and
    ``{"code":0,"message":"Transport unknown"}`` (the codes of the reference server,
    engine.io's ``Server.errors``).
    """

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    @property
    def message(self) -> str:
        """The error's message as engine.io words it."""
        return _SERVER_ERROR_MESSAGES[self]

    @property
    def http_status(self) -> HTTPStatus:
        """403 for `FORBIDDEN`, 400 for every other error."""
        if self is ServerError.FORBIDDEN:
            return HTTPStatus.FORBIDDEN
        return HTTPStatus.BAD_REQUEST

    @property
    def body(self) -> bytes:
        """The JSON response body: ``{"code":N,"message":"..."}``."""
        payload = {"code": int(self), "message": self.message}
        return json.dumps(payload, separators=(",", ":")).encode()


_SERVER_ERROR_MESSAGES = {
    ServerError.UNKNOWN_TRANSPORT: "Transport unknown",
    ServerError.UNKNOWN_SID: "Session ID unknown",
    ServerError.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ServerError.BAD_REQUEST: "Bad request",
    ServerError.FORBIDDEN: "Forbidden",
    ServerError.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}
