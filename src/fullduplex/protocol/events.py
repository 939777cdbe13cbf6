"""What a `Connection` reports after it received bytes: small immutable events.

Each event is named for what happened on the wire. The I/O layer reads them from
`Connection.events_received()` and acts: delivers a message, resolves a ping, logs a failure.

Every event is a tuple with named fields (`_EventTuple`), not a dataclass, so that the compiled
receive path (`fullduplex.protocol._speedups.parse_messages`) can build a `TextReceived` or
`BinaryReceived` the way `tuple.__new__` does, without running a Python ``__init__`` for every
message. Events still compare like dataclasses: equal only to an event of the same class with
equal fields, so a `PingReceived` never equals a `PongReceived` or a bare tuple with the same
data; and, unlike tuples, they have no order.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

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


class _EventTuple(tuple[Any, ...]):
    """The base of every event: a tuple whose fields are named by the subclass's annotations.

    A subclass lists its fields as annotations, in order, and builds itself in ``__new__`` with
    ``tuple.__new__(cls, (field, ...))``; this base adds a read-only attribute per field, a
    repr, equality and hashing that tell the classes apart, and refuses ``<`` and its kin.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._fields = tuple(cls.__annotations__)
        for index, name in enumerate(cls._fields):
            # itemgetter runs in C: reading a field costs about what NamedTuple's does.
            setattr(cls, name, property(itemgetter(index), doc=f"Field {index}: {name}."))

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True)
        )
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.__class__, tuple.__hash__(self)))

    # Tuples order item by item; events have no order.
    def __lt__(self, other: object) -> bool:
        return NotImplemented

    __le__ = __gt__ = __ge__ = __lt__

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)


class RequestReceived(_EventTuple):
    """Server side: a complete upgrade request arrived; call `accept` or `reject` next."""

    __slots__ = ()
    request: Request

    def __new__(cls, request: Request) -> RequestReceived:
        return tuple.__new__(cls, (request,))


class HandshakeCompleted(_EventTuple):
    """Client side: the server accepted the upgrade; the connection is open."""

    __slots__ = ()
    response: Response

    def __new__(cls, response: Response) -> HandshakeCompleted:
        return tuple.__new__(cls, (response,))


class TextReceived(_EventTuple):
    """A complete text message, decoded from UTF-8."""

    __slots__ = ()
    data: str

    def __new__(cls, data: str) -> TextReceived:
        return tuple.__new__(cls, (data,))


class BinaryReceived(_EventTuple):
    """A complete binary message."""

    __slots__ = ()
    data: bytes

    def __new__(cls, data: bytes) -> BinaryReceived:
        return tuple.__new__(cls, (data,))


class PingReceived(_EventTuple):
    """A ping; the connection has already queued the pong (RFC 6455 §5.5.2)."""

    __slots__ = ()
    data: bytes

    def __new__(cls, data: bytes) -> PingReceived:
        return tuple.__new__(cls, (data,))


class PongReceived(_EventTuple):
    """A pong, solicited or not."""

    __slots__ = ()
    data: bytes

    def __new__(cls, data: bytes) -> PongReceived:
        return tuple.__new__(cls, (data,))


class CloseReceived(_EventTuple):
    """The peer's close frame; code 1005 when it carried no code.

    If this side had not sent a close frame yet, the connection has queued the echo
    (RFC 6455 §5.5.1).
    """

    __slots__ = ()
    code: int
    reason: str

    def __new__(cls, code: int, reason: str = "") -> CloseReceived:
        return tuple.__new__(cls, (code, reason))


class ConnectionFailed(_EventTuple):
    """The connection failed ("_Fail the WebSocket Connection_", RFC 6455 §7.1.7).

    ``error`` says why: an `InvalidHandshake` during the opening handshake, a
    `ProtocolViolation` or `MessageTooBig` afterwards. The connection has queued what
    the peer should be told (an HTTP error response or a close frame with the error's code).
    """

    __slots__ = ()
    error: FullDuplexError

    def __new__(cls, error: FullDuplexError) -> ConnectionFailed:
        return tuple.__new__(cls, (error,))


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
