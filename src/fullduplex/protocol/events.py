"""What a `Connection` reports after it received bytes: small immutable events.

Each event is named for what happened on the wire. The I/O layer reads them from
`Connection.events_received()` and acts: delivers a message, resolves a ping, logs a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import FullDuplexError
from .http11 import Request, Response

__all__ = [
    "Event",
    "RequestReceived",
    "HandshakeCompleted",
    "TextReceived",
    "BinaryReceived",
    "PingReceived",
    "PongReceived",
    "CloseReceived",
    "ConnectionFailed",
]


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """Server side: a complete upgrade request arrived; call `accept` or `reject` next."""

    request: Request


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """Client side: the server accepted the upgrade; the connection is open."""

    response: Response


@dataclass(frozen=True, slots=True)
class TextReceived:
    """A complete text message, decoded from UTF-8."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryReceived:
    """A complete binary message."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PingReceived:
    """A ping; the connection has already queued the pong (RFC 6455 §5.5.2)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    """A pong, solicited or not."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame; code 1005 when it carried no code.

    If this side had not sent a close frame yet, the connection has queued the echo
    (RFC 6455 §5.5.1).
    """

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The connection failed ("_Fail the WebSocket Connection_", RFC 6455 §7.1.7).

    ``error`` says why: an `InvalidHandshake` during the opening handshake, a
    `ProtocolViolation` or `MessageTooBig` afterwards. The connection has queued what
    the peer should be told (an HTTP error response or a close frame with the error's code).
    """

    error: FullDuplexError


Event = (
    RequestReceived
    | HandshakeCompleted
    | TextReceived
    | BinaryReceived
    | PingReceived
    | PongReceived
    | CloseReceived
    | ConnectionFailed
)
