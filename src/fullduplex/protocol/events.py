"""What a `Connection` reports after it received bytes: small immutable events.

Each event is named for what happened on the wire. The I/O layer reads them from
`Connection.events_received()` and acts: delivers a message, resolves a ping, logs a failure.

Every event is a `typing.NamedTuple`, not a dataclass, so that the compiled receive path
(`fullduplex.protocol._speedups.parse_messages`) can build a `TextReceived` or
`BinaryReceived` the way `tuple.__new__` does, without running a Python ``__init__`` for every
message. Events still
compare like dataclasses: equal only to an event of the same class with equal fields, so a
`PingReceived` never equals a `PongReceived` or a bare tuple with the same data.
"""

from __future__ import annotations

from typing import Any, NamedTuple, get_args

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


class RequestReceived(NamedTuple):
    """Server side: a complete upgrade request arrived; call `accept` or `reject` next."""

    request: Request


class HandshakeCompleted(NamedTuple):
    """Client side: the server accepted the upgrade; the connection is open."""

    response: Response


class TextReceived(NamedTuple):
    """A complete text message, decoded from UTF-8."""

    data: str


class BinaryReceived(NamedTuple):
    """A complete binary message."""

    data: bytes


class PingReceived(NamedTuple):
    """A ping; the connection has already queued the pong (RFC 6455 §5.5.2)."""

    data: bytes


class PongReceived(NamedTuple):
    """A pong, solicited or not."""

    data: bytes


class CloseReceived(NamedTuple):
    """The peer's close frame; code 1005 when it carried no code.

    If this side had not sent a close frame yet, the connection has queued the echo
    (RFC 6455 §5.5.1).
    """

    code: int
    reason: str = ""


class ConnectionFailed(NamedTuple):
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


def _event_eq(self: tuple[Any, ...], other: object) -> bool:
    return other.__class__ is self.__class__ and tuple.__eq__(self, other)


def _event_ne(self: tuple[Any, ...], other: object) -> bool:
    return not _event_eq(self, other)


def _event_hash(self: tuple[Any, ...]) -> int:
    return hash((self.__class__, tuple.__hash__(self)))


# A tuple equals any tuple with the same items; an event equals only an event of its own class,
# as dataclasses do. (mypy refuses methods assigned in the body of
# a NamedTuple class, hence this loop.)
for _event_class in get_args(Event):
    _event_class.__eq__ = _event_eq
    _event_class.__ne__ = _event_ne
    _event_class.__hash__ = _event_hash
del _event_class
