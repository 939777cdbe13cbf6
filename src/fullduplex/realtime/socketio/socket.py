"""`Socket`: one client's connection to one namespace."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import types
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...exceptions import ConnectionClosedError
from ...io.asyncio.eager import rest_of
from ...protocol.http11 import Headers
from ..backends.base import Broadcast
from ..hub import new_member_id
from .codec import Packet, PacketType, encode, encode_ack
from .namespace import BroadcastOperator, Namespace

if TYPE_CHECKING:
    from .server import Connection

__all__ = ["Socket", "Handshake", "AckTimeout", "session_key"]

logger = logging.getLogger("fullduplex.realtime.socketio")


class AckTimeout(TimeoutError):
    """The client did not acknowledge an event in time."""


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the client connected with: ``auth`` payload, HTTP request details, time."""

    auth: dict[str, Any]
    headers: Headers
    query: str
    address: Any
    issued: float = field(default_factory=time.time)


class Socket:
    """A client in a namespace: emit to it, put it in rooms, read what it connected with.

    Created by the server for each accepted namespace CONNECT; handlers receive it first.
    """

    __slots__ = (
        "id",
        "pid",
        "namespace",
        "handshake",
        "data",
        "recovered",
        "connected",
        "_connection",
        "_acks",
        "_next_ack_id",
        "_held",
    )

    def __init__(
        self,
        namespace: Namespace,
        connection: Connection,
        handshake: Handshake,
        *,
        sid: str | None = None,
        pid: str | None = None,
        data: dict[str, Any] | None = None,
        recovered: bool = False,
    ) -> None:
        self.id = sid or new_member_id()
        """The socket id; also the name of a room holding only this socket."""
        self.pid = pid
        """The private session id a client sends back to recover, when recovery is on."""
        self.namespace = namespace
        self.handshake = handshake
        self.data: dict[str, Any] = data if data is not None else {}
        """Per-connection data for the application (kept across a recovery)."""
        self.recovered = recovered
        """Whether this connection resumed an earlier one (missed events were replayed)."""
        self.connected = False
        self._connection = connection
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_ack_id = 0
        # Broadcasts that arrive before the CONNECT answer and the replay went out.
        self._held: list[Broadcast] | None = []

    def __repr__(self) -> str:
        return f"<Socket {self.id} {self.namespace.name} connected={self.connected}>"

    @property
    def transport(self) -> str:
        """What carries the connection now (``polling``, ``websocket``…)."""
        return self._connection.session.transport

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this socket is in, its own id included."""
        return self.namespace.hub.rooms_of(self.id)

    # --- sending ---

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` with ``args`` (JSON values and bytes) to this client.

        Does not wait for the client: the event is queued (see the slow-consumer policy in
        `fullduplex.realtime.outbox`). With recovery on, it is recorded so that it is
        replayed if the client misses it.
        """
        if self.namespace.recovery is not None:
            await self.namespace.hub.broadcast(event, *args, to=(self.id,))
        else:
            self._send(Packet(PacketType.EVENT, self.namespace.name, [event, *args]))

    async def call(self, event: str, *args: Any, timeout: float | None = 30.0) -> Any:
        """Send ``event`` and wait for the client's acknowledgement.

        Returns:
            The ack's argument (None for none, a tuple for several).

        Raises:
            AckTimeout: no ack within ``timeout`` seconds.
            ConnectionClosedError: the socket disconnected first.
        """
        if not self.connected:
            raise ConnectionClosedError(1006, "socket is disconnected", False)
        ack_id = self._next_ack_id
        self._next_ack_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        self._send(Packet(PacketType.EVENT, self.namespace.name, [event, *args], ack_id))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise AckTimeout(f"no ack for {event!r} within {timeout} s") from None
        finally:
            self._acks.pop(ack_id, None)

    def to(self, *rooms: str) -> BroadcastOperator:
        """A broadcast to ``rooms`` that skips this socket."""
        return self.namespace.to(*rooms).except_(self.id)

    in_ = to

    @property
    def volatile(self) -> BroadcastOperator:
        """A volatile emit to this client alone: dropped if it is behind, never recorded."""
        return BroadcastOperator(self.namespace, frozenset({self.id}), volatile=True)

    @property
    def broadcast(self) -> BroadcastOperator:
        """A broadcast to every socket of the namespace but this one."""
        return self.namespace.except_(self.id)

    # --- rooms ---

    async def join(self, *rooms: str, info: Any = None) -> None:
        """Enter ``rooms``; ``info`` is what `Namespace.presence` shows for this socket."""
        for room in rooms:
            await self.namespace.hub.join(self.id, room, info)

    async def leave(self, *rooms: str) -> None:
        """Leave ``rooms`` (its own room cannot be left)."""
        for room in rooms:
            await self.namespace.hub.leave(self.id, room)

    async def disconnect(self) -> None:
        """Disconnect the client from this namespace (the connection itself stays open)."""
        if self.connected:
            self._send(Packet(PacketType.DISCONNECT, self.namespace.name))
            await self._close("server namespace disconnect")

    # --- what the connection calls ---

    def _send(self, packet: Packet, volatile: bool = False) -> None:
        self._connection.outbox.put(encode(packet), volatile=volatile)

    def _deliver(self, message: Broadcast) -> None:
        if self._held is not None:
            self._held.append(message)
            return
        self._connection.outbox.put(self.namespace._encode(message), volatile=message.volatile)

    def _release(self, replayed: list[Broadcast]) -> None:
        """Send the replayed broadcasts, then those held meanwhile that were not among them."""
        outbox = self._connection.outbox
        seen = set()
        for message in replayed:
            seen.add(message.offset)
            outbox.put(self.namespace._encode(message))
        held, self._held = self._held or [], None
        for message in held:
            if message.offset is None or message.offset not in seen:
                self._deliver(message)

    def _on_ack(self, packet: Packet) -> None:
        future = self._acks.get(packet.id) if packet.id is not None else None
        # An ack for an id that was never asked for, or that timed out, is ignored.
        if future is not None and not future.done():
            args = packet.data
            future.set_result(None if not args else args[0] if len(args) == 1 else tuple(args))

    def _on_event(self, packet: Packet) -> Awaitable[None] | None:
        """Run the handler of an EVENT from the client, inside the read that brought it.

        Returns:
            None once the handler has returned and its ack went out; else what finishes it:
            the rest of a handler that suspended (for the connection to run in a task), or
            the ack waiting for room in the send queue.
        """
        data = packet.data
        event = data[0]
        handler = self.namespace._handlers.get(event if type(event) is str else str(event))
        if handler is None:
            return None  # nobody listens: no ack either, as the reference server does
        try:
            result = handler(self, *data[1:])
            if type(result) is _COROUTINE:
                # A coroutine's first step runs here; only one that suspends needs a task.
                try:
                    suspended_on = result.send(None)
                except StopIteration as done:
                    result = done.value
                else:
                    rest = rest_of(result, suspended_on)
                    return self._connection._run_handler(self._finish_event(event, packet.id, rest))
            elif inspect.isawaitable(result):
                return self._connection._run_handler(self._finish_event(event, packet.id, result))
        except Exception:
            logger.exception("handler for %r in %s failed", event, self.namespace.name)
            return None
        if packet.id is None or not self.connected:
            return None
        messages = self._ack_messages(packet.id, result)
        outbox = self._connection.outbox
        if outbox.try_write(messages):
            return None
        # The client reads slowly: its next events wait until the ack has room.
        return self._send_ack_later(messages)

    async def _finish_event(self, event: Any, ack_id: int | None, rest: Awaitable[Any]) -> None:
        """Await the rest of an event's handler, then send its ack."""
        try:
            result = await rest
        except Exception:
            logger.exception("handler for %r in %s failed", event, self.namespace.name)
            return
        if ack_id is not None and self.connected:
            # The reply goes out from the task of the client's own event: waiting for the
            # client here slows only that client's handlers.
            await self._connection.outbox.send(self._ack_messages(ack_id, result))

    async def _send_ack_later(self, messages: list[str | bytes]) -> None:
        await self._connection.outbox.send(messages)

    def _ack_messages(self, ack_id: int, result: Any) -> list[str | bytes]:
        """The ack of a handler's return value: a tuple is several arguments, None none."""
        if result is None:
            args: tuple[Any, ...] | list[Any] = ()
        elif isinstance(result, tuple):
            args = result
        else:
            args = [result]
        return encode_ack(self.namespace.name, ack_id, args)

    async def _close(self, reason: str) -> None:
        """Leave the namespace: ``disconnecting``, keep the session, leave rooms, ``disconnect``."""
        if not self.connected:
            return
        self.connected = False
        namespace = self.namespace
        await self._run_hook("disconnecting", reason)
        recovery = namespace.recovery
        if recovery is not None and self.pid is not None and reason not in _NOT_RECOVERABLE:
            hub = namespace.hub
            state = {
                "sid": self.id,
                "rooms": sorted(self.rooms),
                "presence": {room: hub.presence_info(self.id, room) for room in self.rooms},
                "data": self.data,
            }
            await namespace.hub.backend.session_save(
                session_key(namespace, self.pid), state, recovery.max_disconnection_s
            )
        await namespace.hub.remove(self.id)
        namespace.sockets.pop(self.id, None)
        self._connection.sockets.pop(namespace.name, None)
        closed = ConnectionClosedError(1006, f"socket disconnected: {reason}", False)
        for future in self._acks.values():
            if not future.done():
                future.set_exception(closed)
        await self._run_hook("disconnect", reason)

    async def _run_hook(self, event: str, *args: Any) -> None:
        try:
            await self.namespace._call(event, self, *args)
        except Exception:
            logger.exception("%r handler in %s failed", event, self.namespace.name)


_COROUTINE = types.CoroutineType


# A client that said goodbye, or that the server sent away, has nothing to recover.
_NOT_RECOVERABLE = frozenset({"client namespace disconnect", "server namespace disconnect"})


def session_key(namespace: Namespace, pid: str) -> str:
    """Where a namespace keeps a disconnected session in the backend."""
    return f"socket.io:{namespace.name}:session:{pid}"
