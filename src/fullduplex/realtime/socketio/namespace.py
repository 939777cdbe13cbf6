"""`Namespace`: one Socket.IO namespace, its handlers, middleware, rooms and broadcasts.

A namespace owns a `Hub` (its own by default, or one shared with other adapters, e.g. a SockJS
chat), so its rooms, presence and history are the hub's. Broadcasts go through the hub and
reach the namespace's sockets in every process that shares the backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..backends.base import Broadcast
from ..hub import Hub
from .codec import Packet, PacketType, encode

if TYPE_CHECKING:
    from .socket import Socket

__all__ = [
    "Namespace",
    "BroadcastOperator",
    "Recovery",
    "ConnectRefused",
    "EventHandler",
    "Middleware",
]

EventHandler = Callable[..., Any]
"""``handler(socket, *args)``, plain or async; what it returns is the ack (a tuple: several
arguments; None: none)."""
Middleware = Callable[["Socket", dict[str, Any]], Awaitable[None] | None]
"""``middleware(socket, auth)``, plain or async; raise `ConnectRefused` to refuse."""

_F = TypeVar("_F", bound=Callable[..., Any])


class ConnectRefused(Exception):
    """Raise in a middleware to refuse a connection; the client gets ``connect_error``.

    Args:
        message: shown to the client as ``err.message``.
        data: JSON-able details, shown as ``err.data``.
    """

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


@dataclass(frozen=True, slots=True)
class Recovery:
    """Connection-state recovery settings of a namespace.

    A client that comes back within ``max_disconnection_s`` with the session id and the offset
    of the last event it got is given its old socket id, rooms and ``data`` back, and is sent
    the events it missed, in order, once each (``socket.recovered`` is then true).

    Args:
        max_disconnection_s: how long a disconnected session is kept.
        skip_middlewares: do not run middleware again for a recovered session.
    """

    max_disconnection_s: float = 120.0
    skip_middlewares: bool = True


class BroadcastOperator:
    """Who a broadcast goes to: ``namespace.to("room").except_("other").volatile.emit(...)``.

    Each method returns a new operator; `emit` sends.
    """

    __slots__ = ("_namespace", "_rooms", "_except", "_volatile")

    def __init__(
        self,
        namespace: Namespace,
        rooms: frozenset[str] = frozenset(),
        except_rooms: frozenset[str] = frozenset(),
        volatile: bool = False,
    ) -> None:
        self._namespace = namespace
        self._rooms = rooms
        self._except = except_rooms
        self._volatile = volatile

    def to(self, *rooms: str) -> BroadcastOperator:
        """Also reach the members of ``rooms`` (a socket id names that socket alone)."""
        return BroadcastOperator(
            self._namespace, self._rooms | frozenset(rooms), self._except, self._volatile
        )

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        """Skip the members of ``rooms``."""
        return BroadcastOperator(
            self._namespace, self._rooms, self._except | frozenset(rooms), self._volatile
        )

    @property
    def volatile(self) -> BroadcastOperator:
        """May be dropped for a client that is behind; never recorded for recovery."""
        return BroadcastOperator(self._namespace, self._rooms, self._except, True)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` with ``args`` (JSON values and bytes) to every socket addressed."""
        namespace = self._namespace
        await namespace.hub.broadcast(
            event,
            *args,
            to=self._rooms,
            except_rooms=self._except,
            volatile=self._volatile,
            record=namespace.recovery is not None,
        )


class Namespace:
    """One namespace of a `fullduplex.realtime.socketio.Server` (get it with ``server.of``).

    Args:
        name: ``/`` or ``/something``.
        hub: rooms, presence and history; share one to put other protocols in the same rooms.
        recovery: connection-state recovery, or None (the default) for none.
    """

    __slots__ = (
        "name",
        "hub",
        "recovery",
        "sockets",
        "_handlers",
        "_middlewares",
        "_encoded_for",
        "_encoded",
    )

    def __init__(self, name: str, hub: Hub | None = None, recovery: Recovery | None = None) -> None:
        if not name.startswith("/") or "," in name:
            raise ValueError(f"a namespace starts with '/' and has no ',': {name!r}")
        self.name = name
        self.hub = hub if hub is not None else Hub(f"socket.io:{name}")
        self.recovery = recovery
        self.sockets: dict[str, Socket] = {}
        """The connected sockets of this process, by id."""
        self._handlers: dict[str, EventHandler] = {}
        self._middlewares: list[Middleware] = []
        # A broadcast reaches many sockets in a row: encode it once for all of them.
        self._encoded_for: Broadcast | None = None
        self._encoded: list[str | bytes] = []

    def on(self, event: str, handler: EventHandler | None = None) -> Any:
        """Register ``handler`` for ``event``; usable as ``@namespace.on("event")``.

        Special events: ``connect`` (``handler(socket)``, after the client is told it is
        connected), ``disconnecting`` (``handler(socket, reason)``, rooms still readable) and
        ``disconnect`` (``handler(socket, reason)``). Any other event's handler gets
        ``(socket, *args)`` and its return value is the ack.
        """

        def register(function: _F) -> _F:
            self._handlers[event] = function
            return function

        if handler is not None:
            return register(handler)
        return register

    def use(self, middleware: Middleware) -> Middleware:
        """Run ``middleware(socket, auth)`` before each connection; usable as a decorator.

        Raise `ConnectRefused` in it to refuse; ``socket.data`` set in it is kept.
        """
        self._middlewares.append(middleware)
        return middleware

    def to(self, *rooms: str) -> BroadcastOperator:
        """A broadcast to the sockets in ``rooms``."""
        return BroadcastOperator(self, frozenset(rooms))

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        """A broadcast to every socket but those in ``rooms``."""
        return BroadcastOperator(self, except_rooms=frozenset(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """A volatile broadcast to every socket."""
        return BroadcastOperator(self, volatile=True)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every socket of the namespace, in every process."""
        await BroadcastOperator(self).emit(event, *args)

    async def presence(self, room: str) -> dict[str, Any]:
        """The sockets in ``room`` across processes, with the info they joined with."""
        return await self.hub.presence(room)

    def _handler(self, event: str) -> EventHandler | None:
        return self._handlers.get(event)

    async def _call(self, event: str, socket: Socket, *args: Any) -> Any:
        handler = self._handlers.get(event)
        if handler is None:
            return None
        result = handler(socket, *args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _encode(self, message: Broadcast) -> list[str | bytes]:
        if message is not self._encoded_for:
            data = [message.event, *message.args]
            if message.offset is not None:
                # Socket.IO v5 connection-state recovery: the offset rides as the last argument.
                data.append(message.offset)
            self._encoded = encode(Packet(PacketType.EVENT, self.name, data))
            self._encoded_for = message
        return self._encoded
