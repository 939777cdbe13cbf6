"""`JSONEventServer`: the hub's rooms, presence and history for any `Session`, in plain JSON.

Socket.IO is one way to reach a hub; this is the other, for sessions that carry text messages
and nothing more (a SockJS session, a raw WebSocket route): each message is one JSON object.

Client to server::

    {"event": "say", "args": ["lobby", "hi"], "ack": 7}     "ack" optional

Server to client::

    {"event": "said", "args": ["ann", "hi"], "offset": "42"}  "offset" when recorded
    {"ack": 7, "args": ["delivered"]}

``bytes`` travel as ``{"$binary": "<base64>"}``. A message that is not such an object closes
the session (1003 for binary, 1007 for bad JSON or shape). Put a `JSONEventServer` and a
Socket.IO namespace on one `Hub` (``sio.of("/chat", hub=hub)``) and their clients share rooms,
presence and history.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import ConnectionClosed
from ..transports.base import Session
from .backends.base import Broadcast
from .hub import Hub, new_member_id
from .outbox import Outbox

__all__ = ["JSONEventServer", "JSONEventConnection"]

logger = logging.getLogger("fullduplex.realtime")

_F = Callable[..., Any]
_UNSUPPORTED_DATA = 1003
_INVALID_PAYLOAD = 1007
_POLICY_VIOLATION = 1008
_RESERVED = frozenset({"connect", "disconnect"})


def _to_json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$binary": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$binary"), str):
            return base64.b64decode(value["$binary"], validate=True)
        return {key: _from_json(item) for key, item in value.items()}
    return value


_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


class JSONEventConnection:
    """One session in a `JSONEventServer`: emit to it, put it in rooms, keep data on it."""

    __slots__ = ("id", "session", "server", "outbox", "data", "connected")

    def __init__(self, server: JSONEventServer, session: Session, member_id: str) -> None:
        self.id = member_id
        """The member id in the hub (also a room holding only this connection)."""
        self.session = session
        self.server = server
        self.outbox = Outbox(
            session,
            lambda: self._close_soon(_POLICY_VIOLATION, "slow consumer: send queue full"),
            max_messages=server.max_queue_messages,
        )
        self.data: dict[str, Any] = {}
        """Per-connection data for the application (also the hub member's data)."""
        self.connected = True
        """Whether the session is still open."""

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this connection is in, its own id included."""
        return self.server.hub.rooms_of(self.id)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to this client, recorded in history like any broadcast."""
        await self.server.hub.broadcast(event, *args, to=(self.id,))

    async def join(self, *rooms: str, info: Any = None) -> None:
        """Enter ``rooms``, present there with ``info``."""
        for room in rooms:
            await self.server.hub.join(self.id, room, info)

    async def leave(self, *rooms: str) -> None:
        """Leave ``rooms``."""
        for room in rooms:
            await self.server.hub.leave(self.id, room)

    def _deliver(self, message: Broadcast) -> None:
        packet: dict[str, Any] = {"event": message.event, "args": _to_json(message.args)}
        if message.offset is not None:
            packet["offset"] = message.offset
        self.outbox.put([_DUMPS(packet)], volatile=message.volatile)

    def _close_soon(self, code: int, reason: str) -> None:
        self.outbox.close()
        task = asyncio.get_running_loop().create_task(self.session.close(code, reason))
        self.server._tasks.add(task)
        task.add_done_callback(self.server._tasks.discard)


class JSONEventServer:
    """Serves sessions speaking JSON events; members of ``hub`` (a new one by default).

    Args:
        hub: the rooms, presence and history to share (e.g. with a Socket.IO namespace).
        max_queue_messages: per-connection send queue bound (see `Outbox`).

    Example::

        hub = Hub("chat")
        events = JSONEventServer(hub)

        @events.on("join")
        async def join(connection, room):
            await connection.join(room)

        app.mount("/sockjs", SockJSEndpoint(events.serve))
    """

    __slots__ = ("hub", "max_queue_messages", "_handlers", "_tasks", "_counter")

    def __init__(self, hub: Hub | None = None, *, max_queue_messages: int = 1024) -> None:
        self.hub = hub if hub is not None else Hub("json-events")
        self.max_queue_messages = max_queue_messages
        self._handlers: dict[str, _F] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._counter = 0

    def on(self, event: str, handler: _F | None = None) -> Any:
        """Register ``handler(connection, *args)``; its return value is the ack.

        ``connect`` (``handler(connection)``) and ``disconnect`` (``handler(connection)``, rooms
        still readable) are called around each session.
        """

        def register(function: _F) -> _F:
            self._handlers[event] = function
            return function

        return register(handler) if handler is not None else register

    async def serve(self, session: Session) -> None:
        """Serve one session until it closes; give this to a route or an endpoint."""
        connection = JSONEventConnection(self, session, new_member_id())
        await self.hub.add(connection.id, connection._deliver, connection.data)
        writer = asyncio.get_running_loop().create_task(connection.outbox.run())
        try:
            await self._call("connect", connection)
            async for message in session:
                packet = self._parse(message)
                if packet is None:
                    code = _UNSUPPORTED_DATA if isinstance(message, bytes) else _INVALID_PAYLOAD
                    await session.close(code, "expected a JSON event object")
                    break
                event, args, ack = packet
                if event in _RESERVED:
                    continue  # the server's own hooks; a client cannot trigger them
                result = await self._call(event, connection, *args)
                if ack is not None:
                    reply = (
                        []
                        if result is None
                        else list(result)
                        if isinstance(result, tuple)
                        else [result]
                    )
                    connection.outbox.put([_DUMPS({"ack": ack, "args": _to_json(reply)})])
        except ConnectionClosed:
            pass
        finally:
            await self._call("disconnect", connection)
            connection.connected = False
            await self.hub.remove(connection.id)
            connection.outbox.close()
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                async with asyncio.timeout(1.0):
                    await writer
            writer.cancel()

    def _parse(self, message: str | bytes) -> tuple[str, list[Any], int | None] | None:
        if not isinstance(message, str):
            return None
        try:
            packet = json.loads(message)
            if not isinstance(packet, dict):
                return None
            event, args, ack = packet.get("event"), packet.get("args", []), packet.get("ack")
            if not isinstance(event, str) or not isinstance(args, list):
                return None
            if ack is not None and (not isinstance(ack, int) or isinstance(ack, bool)):
                return None
            return event, _from_json(args), ack
        except (ValueError, binascii.Error):
            return None

    async def _call(self, event: str, connection: JSONEventConnection, *args: Any) -> Any:
        handler = self._handlers.get(event)
        if handler is None:
            return None
        try:
            result = handler(connection, *args)
            if inspect.isawaitable(result):
                result = await result
            return result
        except Exception:
            logger.exception("handler for %r failed", event)
            return None
