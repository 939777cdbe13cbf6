"""`Server`: Socket.IO v5 over any `Session` an Engine.IO endpoint delivers.

Theory of operation: `Server.serve` takes one Engine.IO session (its messages are Socket.IO
packets: text, and binary attachments) and runs a `Connection` until it ends. The connection
decodes packets (`codec.Decoder`), multiplexes them to one `Socket` per connected namespace,
and writes everything through one bounded `Outbox` (the slow-consumer policy is there). It
never sees frames or a transport: the same code serves polling, WebSocket, and an ASGI mount.

- CONNECT: unknown namespace -> ``CONNECT_ERROR {"message":"Invalid namespace"}``; otherwise
  recovery is tried (``pid`` + ``offset`` in the auth payload), middleware runs (a
  `ConnectRefused` becomes CONNECT_ERROR), the socket joins the hub and is told ``{"sid"}``
  (``"pid"`` too with recovery), missed events are replayed, then ``connect`` handlers run.
- No CONNECT within ``connect_timeout_s``: the connection is closed.
- Packets come from `Session.consume`: over Engine.IO, inside the read that brought them.
- EVENT: the handler starts at once, inside that read, and its return value is the ack; one
  that has to wait (an ``await`` that suspends) goes on in a task of its own (at most
  ``max_pending_handlers`` per connection, beyond which reading pauses). A handler that never
  waits, sync or async, costs no task.
- ACK: resolves a pending `Socket.call`; unknown ids are ignored.
- DISCONNECT: that namespace only; the connection stays.
- Anything invalid (`codec.InvalidPacket`, a packet for a namespace not connected, a client
  CONNECT_ERROR): the connection is closed, as the reference server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from ...exceptions import ConnectionClosed
from ...transports.base import Session
from ..backends.base import Backend, Broadcast
from ..backends.memory import MemoryBackend
from ..hub import Hub, new_member_id
from ..outbox import Outbox
from .codec import Decoder, InvalidPacket, Packet, PacketType, encode
from .namespace import (
    BroadcastOperator,
    ConnectRefused,
    EventHandler,
    Middleware,
    Namespace,
    Recovery,
)
from .socket import Handshake, Socket, session_key

__all__ = ["Server", "Connection"]

logger = logging.getLogger("fullduplex.realtime.socketio")

# Packet types as module constants: ``PacketType.EVENT`` costs about 0.3 µs on Python 3.11
# (the enum metaclass's attribute lookup), a global 0.02 µs, and every packet is dispatched.
_CONNECT = PacketType.CONNECT
_EVENT = PacketType.EVENT
_ACK = PacketType.ACK
_CONNECT_ERROR = PacketType.CONNECT_ERROR

# Close codes handed to the Session (Engine.IO closes its transport whatever the code).
_NORMAL = 1000
_PROTOCOL_ERROR = 1002
_POLICY_VIOLATION = 1008


class Server:
    """A Socket.IO v5 server: namespaces, events, acks, rooms, recovery.

    Args:
        backend: shared state of the namespaces' hubs; a `MemoryBackend` by default.
        recovery: connection-state recovery for namespaces created without their own setting;
            None (the default) disables it.
        connect_timeout_s: close a connection that connects to no namespace in this time.
        max_attachments: most binary attachments a client packet may announce.
        max_queue_messages: per-connection send queue bound, in messages (see `Outbox`).
        max_queue_bytes: per-connection send queue bound, in bytes.
        max_pending_handlers: per-connection async handlers running at once.

    Example::

        sio = Server()

        @sio.on("chat")
        async def chat(socket, text):
            await sio.to("lobby").emit("chat", socket.id, text)
            return "ok"                       # the ack
    """

    __slots__ = (
        "backend",
        "recovery",
        "connect_timeout_s",
        "max_attachments",
        "max_queue_messages",
        "max_queue_bytes",
        "max_pending_handlers",
        "_namespaces",
        "_connections",
    )

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        recovery: Recovery | None = None,
        connect_timeout_s: float = 45.0,
        max_attachments: int = 10,
        max_queue_messages: int = 1024,
        max_queue_bytes: int = 4 * 1024 * 1024,
        max_pending_handlers: int = 16,
    ) -> None:
        self.backend = backend if backend is not None else MemoryBackend()
        self.recovery = recovery
        self.connect_timeout_s = connect_timeout_s
        self.max_attachments = max_attachments
        self.max_queue_messages = max_queue_messages
        self.max_queue_bytes = max_queue_bytes
        self.max_pending_handlers = max_pending_handlers
        self._namespaces: dict[str, Namespace] = {}
        self._connections: set[Connection] = set()
        self.of("/")

    def of(
        self, name: str, *, hub: Hub | None = None, recovery: Recovery | None = None
    ) -> Namespace:
        """The namespace ``name``, created on first use.

        Args:
            hub: share an existing hub (and its rooms, presence, history) at creation.
            recovery: this namespace's recovery setting at creation (default: the server's).

        Raises:
            ValueError: ``hub`` or ``recovery`` given for a namespace that already exists.
        """
        namespace = self._namespaces.get(name)
        if namespace is None:
            if hub is None:
                hub = Hub(f"socket.io:{name}", self.backend)
            namespace = Namespace(name, hub, recovery if recovery is not None else self.recovery)
            self._namespaces[name] = namespace
        elif hub is not None or recovery is not None:
            raise ValueError(f"namespace {name!r} exists already; configure it on first use")
        return namespace

    @property
    def namespaces(self) -> dict[str, Namespace]:
        """The namespaces, by name (a copy)."""
        return dict(self._namespaces)

    # The main namespace's API, at the top level as in Socket.IO.

    def on(self, event: str, handler: EventHandler | None = None) -> Any:
        """``@sio.on("event")``: `Namespace.on` for ``/``."""
        return self._namespaces["/"].on(event, handler)

    def use(self, middleware: Middleware) -> Middleware:
        """`Namespace.use` for ``/``."""
        return self._namespaces["/"].use(middleware)

    def to(self, *rooms: str) -> BroadcastOperator:
        """A broadcast to ``rooms`` of ``/``."""
        return self._namespaces["/"].to(*rooms)

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        """A broadcast to every socket of ``/`` but those in ``rooms``."""
        return self._namespaces["/"].except_(*rooms)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every socket of ``/``."""
        await self._namespaces["/"].emit(event, *args)

    async def serve(self, session: Session) -> None:
        """Run one Engine.IO session as a Socket.IO connection until it closes.

        This is the handler to give the Engine.IO endpoint.
        """
        connection = Connection(self, session)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    __call__ = serve

    async def close(self) -> None:
        """Close every connection and stop the hubs."""
        for connection in tuple(self._connections):
            await connection.close(_NORMAL, "server shutting down")
        for namespace in self._namespaces.values():
            await namespace.hub.close()


class Connection:
    """One Engine.IO session speaking Socket.IO: its namespaces, decoder and send queue."""

    __slots__ = (
        "server",
        "session",
        "sockets",
        "outbox",
        "_decoder",
        "_pending_handlers",
        "_handler_done_signal",
        "_tasks",
        "_closing",
        "_timer",
        "_end_reason",
    )

    def __init__(self, server: Server, session: Session) -> None:
        self.server = server
        self.session = session
        self.sockets: dict[str, Socket] = {}
        """The connected namespaces' sockets, by namespace name."""
        self.outbox = Outbox(
            session,
            self._on_overflow,
            max_messages=server.max_queue_messages,
            max_bytes=server.max_queue_bytes,
        )
        self._decoder = Decoder(server.max_attachments)
        # Handlers that had to wait and run on in tasks; reading pauses at the maximum.
        self._pending_handlers = 0
        self._handler_done_signal: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Set when a packet ends the connection; later packets are ignored.
        self._end_reason: str | None = None

    async def run(self) -> None:
        """Read packets until the session ends, then disconnect every namespace."""
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self.outbox.run())
        timer = self._timer = loop.call_later(
            self.server.connect_timeout_s, self._on_connect_timeout
        )
        reason = "transport close"
        try:
            await self.session.consume(self._on_message)
            if self._end_reason is not None:
                reason = self._end_reason
            elif self.outbox.is_overflowed:
                reason = "slow consumer"
        except ConnectionClosed:
            pass
        finally:
            timer.cancel()
            for socket in tuple(self.sockets.values()):
                await socket._close(reason)
            self.outbox.close()
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                async with asyncio.timeout(1.0):
                    await writer
            writer.cancel()

    async def close(self, code: int, reason: str) -> None:
        """Close the session; `run` then disconnects every namespace."""
        self.outbox.close()
        with contextlib.suppress(ConnectionClosed):
            await self.session.close(code, reason)

    def _close_soon(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self.close(code, reason))

    def _on_connect_timeout(self) -> None:
        if not self.sockets:
            self._close_soon(_POLICY_VIOLATION, "no namespace CONNECT in time")

    def _on_overflow(self) -> None:
        self._close_soon(_POLICY_VIOLATION, "slow consumer: send queue full")

    def _on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """Take one message of the session (see `Session.consume`): None once it is handled,
        else what finishes it."""
        if self._end_reason is not None:
            return None
        try:
            packet = self._decoder.receive(message)
            if packet is None:
                return None
            if packet.type == _CONNECT:
                return self._connect(packet)
            return self._dispatch(packet)
        except InvalidPacket as exc:
            self._end_reason = "parse error"
            return self.close(_PROTOCOL_ERROR, str(exc))

    def _dispatch(self, packet: Packet) -> Awaitable[None] | None:
        socket = self.sockets.get(packet.namespace)
        if socket is None or packet.type == _CONNECT_ERROR:
            raise InvalidPacket(f"{packet.type.name} packet for a namespace not connected")
        if packet.type == _EVENT:
            return socket._on_event(packet)
        if packet.type == _ACK:
            socket._on_ack(packet)
            return None
        return socket._close("client namespace disconnect")  # DISCONNECT

    def _run_handler(self, rest: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
        """Run ``rest`` (what is left of an event's handler once it suspended) in a task.

        Returns:
            None, or while ``max_pending_handlers`` run already, what starts it once one
            ends: reading waits for it.
        """
        if self._pending_handlers < self.server.max_pending_handlers:
            self._start_handler(rest)
            return None
        return self._start_handler_when_free(rest)

    def _start_handler(self, rest: Coroutine[Any, Any, None]) -> None:
        self._pending_handlers += 1
        task = asyncio.get_running_loop().create_task(rest)
        self._tasks.add(task)
        task.add_done_callback(self._handler_done)

    async def _start_handler_when_free(self, rest: Coroutine[Any, Any, None]) -> None:
        # Reading waits here until a handler task ends (the bound on pending handlers).
        try:
            while self._pending_handlers >= self.server.max_pending_handlers:
                done = self._handler_done_signal
                if done is None:
                    done = self._handler_done_signal = asyncio.get_running_loop().create_future()
                await done
        except BaseException:
            rest.close()
            raise
        self._start_handler(rest)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._pending_handlers -= 1
        done, self._handler_done_signal = self._handler_done_signal, None
        if done is not None and not done.done():
            done.set_result(None)

    async def _connect(self, packet: Packet) -> None:
        await self._connect_namespace(packet)
        if self.sockets and self._timer is not None:
            self._timer.cancel()

    async def _connect_namespace(self, packet: Packet) -> None:
        name = packet.namespace
        namespace = self.server._namespaces.get(name)
        if namespace is None:
            self._send_error(name, {"message": "Invalid namespace"})
            return
        if name in self.sockets:
            return  # a second CONNECT to a connected namespace changes nothing
        auth: dict[str, Any] = packet.data if packet.data is not None else {}
        sid = pid = None
        data: dict[str, Any] | None = None
        missed: list[Broadcast] | None = None
        rooms: list[str] = []
        presence: dict[str, Any] = {}
        if namespace.recovery is not None:
            claimed_pid, offset = auth.pop("pid", None), auth.pop("offset", None)
            if isinstance(claimed_pid, str) and isinstance(offset, str):
                state = await namespace.hub.backend.session_take(
                    session_key(namespace, claimed_pid)
                )
                if state is not None:
                    missed = await namespace.hub.history.missed(state["rooms"], offset)
                    if missed is not None:
                        sid, pid, data = state["sid"], claimed_pid, state["data"]
                        rooms, presence = state["rooms"], state["presence"]
            if pid is None:
                pid = new_member_id()
        request = self.session.request
        socket = Socket(
            namespace,
            self,
            Handshake(
                auth=auth,
                headers=request.headers,
                query=urlsplit(request.path).query,
                address=self.session.remote_address,
            ),
            sid=sid,
            pid=pid,
            data=data,
            recovered=missed is not None,
        )
        recovery = namespace.recovery
        if missed is None or recovery is None or not recovery.skip_middlewares:
            try:
                for middleware in namespace._middlewares:
                    result = middleware(socket, auth)
                    if inspect.isawaitable(result):
                        await result
            except ConnectRefused as exc:
                error: dict[str, Any] = {"message": exc.message}
                if exc.data is not None:
                    error["data"] = exc.data
                self._send_error(name, error)
                return
            except Exception:
                # A broken middleware refuses this connection, not every namespace of it.
                logger.exception("middleware of %s failed", name)
                self._send_error(name, {"message": "server error"})
                return
        if self.outbox.is_closed or self.session.close_code is not None:
            return
        socket.connected = True
        self.sockets[name] = socket
        namespace.sockets[socket.id] = socket
        await namespace.hub.add(socket.id, socket._deliver, socket.data)
        for room in rooms:
            if room != socket.id:
                await namespace.hub.join(socket.id, room, presence.get(room))
        answer: dict[str, Any] = {"sid": socket.id}
        if socket.pid is not None:
            answer["pid"] = socket.pid
        socket._send(Packet(PacketType.CONNECT, name, answer))
        socket._release(missed or [])
        # In a task, like any handler: a connect handler that waits for the client's ack
        # (`socket.call`) needs this loop to go on reading. It starts before any later event.
        self._spawn(socket._run_hook("connect"))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send_error(self, name: str, error: dict[str, Any]) -> None:
        self.outbox.put(encode(Packet(PacketType.CONNECT_ERROR, name, error)))
