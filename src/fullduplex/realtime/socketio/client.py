"""`AsyncClient`: a Socket.IO v5 client for asyncio, with reconnection and recovery.

Theory of operation: one task (`AsyncClient._run`) owns the connection. It opens Engine.IO v4
over WebSocket (``?EIO=4&transport=websocket``; Engine.IO's own WebSocket framing is one
packet per message: ``2`` ping, ``3`` pong, ``4`` message, ``1`` close, binary attachments
as binary messages), answers the server's pings, and sends a CONNECT for each namespace
(with ``pid`` and ``offset`` when the server gave a session id, so that it recovers the
session). When the connection drops without `disconnect` having been called, it waits
``reconnection_delay_s`` (doubling up to ``reconnection_delay_max_s``) and starts again. A
missing ping for ``pingInterval + pingTimeout`` counts as a drop, as in engine.io-client.

Handlers run in the order the events arrive, each in its own task; what one returns is the
ack when the server asked for one. As in socket.io-client, when the namespace recovers
sessions, an event's last argument is the server's offset (a string) and handlers see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ...exceptions import ConnectionClosed, ConnectionClosedError, FullDuplexError
from ...io.asyncio.client import ClientConnection, connect
from .codec import Decoder, InvalidPacket, Packet, PacketType, encode
from .namespace import ConnectRefused
from .socket import AckTimeout

__all__ = ["AsyncClient"]

logger = logging.getLogger("fullduplex.realtime.socketio.client")

_F = Callable[..., Any]


@dataclass(slots=True)
class _Namespace:
    name: str
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    error: ConnectRefused | None = None
    sid: str | None = None
    pid: str | None = None
    offset: str | None = None
    recovered: bool = False
    acks: dict[int, asyncio.Future[Any]] = field(default_factory=dict)


class AsyncClient:
    """A Socket.IO client: namespaces over one connection, events, acks, reconnection.

    Args:
        url: the server, ``http://host:port`` (or ``ws://``, ``https://``, ``wss://``).
        namespaces: the namespaces to connect to.
        auth: the CONNECT payload (a dict), sent to every namespace.
        path: where the server serves Socket.IO.
        reconnection: reconnect after a drop.
        reconnection_delay_s, reconnection_delay_max_s: first and longest wait between tries.
        open_timeout_s: bound on opening the connection and connecting the namespaces.

    Example::

        async with AsyncClient("http://127.0.0.1:9700", auth={"token": "t"}) as client:
            client.on("message-back", print)
            await client.emit("message", "hello")
            print(await client.call("message-with-ack", 1, 2))
    """

    def __init__(
        self,
        url: str,
        *,
        namespaces: tuple[str, ...] = ("/",),
        auth: dict[str, Any] | None = None,
        path: str = "/socket.io/",
        reconnection: bool = True,
        reconnection_delay_s: float = 0.5,
        reconnection_delay_max_s: float = 5.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        query = urlencode({"EIO": "4", "transport": "websocket"})
        self._url = urlunsplit((scheme, parts.netloc, path, query, ""))
        self.auth = auth or {}
        self.reconnection = reconnection
        self.reconnection_delay_s = reconnection_delay_s
        self.reconnection_delay_max_s = reconnection_delay_max_s
        self.open_timeout_s = open_timeout_s
        self._namespaces = {name: _Namespace(name) for name in namespaces}
        self._handlers: dict[tuple[str, str], _F] = {}
        self._ws: ClientConnection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next_ack_id = 0
        self.engine_id: str | None = None
        """The Engine.IO session id of the current connection."""

    # --- API ---

    def on(self, event: str, handler: _F | None = None, *, namespace: str = "/") -> Any:
        """Register ``handler(*args)`` for ``event``; usable as ``@client.on("event")``.

        ``connect`` and ``disconnect`` (``handler(reason)``) are called on each connection and
        drop of the namespace.
        """

        def register(function: _F) -> _F:
            self._handlers[namespace, event] = function
            return function

        return register(handler) if handler is not None else register

    async def connect(self) -> None:
        """Connect, and wait until every namespace is connected.

        Raises:
            ConnectRefused: a namespace refused the connection (``message``, ``data``).
            TimeoutError: not connected within ``open_timeout_s``.
            OSError, InvalidHandshake: the server could not be reached.
        """
        self._closing = False
        self._runner = asyncio.get_running_loop().create_task(self._run())
        try:
            async with asyncio.timeout(self.open_timeout_s):
                for name in self._namespaces:
                    await self.wait_connected(name)
        except BaseException:
            await self.disconnect()
            raise

    async def wait_connected(self, namespace: str = "/") -> None:
        """Wait until ``namespace`` is connected (again, after a drop).

        Raises:
            ConnectRefused: the server refused it.
            ConnectionClosedError: the client is closed, or gave up.
        """
        state = self._namespaces[namespace]
        wait = asyncio.ensure_future(state.connected.wait())
        runner = self._runner
        waiting: set[asyncio.Future[Any]] = {wait}
        if runner is not None:
            waiting.add(runner)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not wait.done():
            wait.cancel()
        if state.error is not None:
            raise state.error
        if not state.connected.is_set():
            finished = runner is not None and runner.done() and not runner.cancelled()
            failure = runner.exception() if runner is not None and finished else None
            if failure is not None:
                raise failure
            raise ConnectionClosedError(1006, "client is closed", False)

    def is_connected(self, namespace: str = "/") -> bool:
        """Whether ``namespace`` is connected now."""
        return self._namespaces[namespace].connected.is_set()

    def sid(self, namespace: str = "/") -> str | None:
        """The socket id the server gave ``namespace``."""
        return self._namespaces[namespace].sid

    def recovered(self, namespace: str = "/") -> bool:
        """Whether the last connection of ``namespace`` recovered the previous session."""
        return self._namespaces[namespace].recovered

    async def emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Send ``event`` with ``args`` (JSON values and bytes).

        Raises:
            ConnectionClosedError: ``namespace`` is not connected.
        """
        await self._send(Packet(PacketType.EVENT, namespace, [event, *args]), namespace)

    async def call(
        self, event: str, *args: Any, namespace: str = "/", timeout: float | None = 30.0
    ) -> Any:
        """Send ``event`` and wait for the server's ack.

        Returns:
            The ack's argument (None for none, a tuple for several).

        Raises:
            AckTimeout: no ack within ``timeout`` seconds.
            ConnectionClosedError: not connected, or the connection dropped first.
        """
        state = self._namespaces[namespace]
        ack_id = self._next_ack_id
        self._next_ack_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        state.acks[ack_id] = future
        try:
            await self._send(Packet(PacketType.EVENT, namespace, [event, *args], ack_id), namespace)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise AckTimeout(f"no ack for {event!r} within {timeout} s") from None
        finally:
            state.acks.pop(ack_id, None)

    async def disconnect(self) -> None:
        """Leave every namespace and close the connection; no reconnection follows."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                for state in self._namespaces.values():
                    if state.connected.is_set():
                        await ws.send(_engine_message(Packet(PacketType.DISCONNECT, state.name)))
                await ws.send("1")
                await ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    async def drop(self) -> None:
        """Close the transport as a network failure would (reconnection follows if enabled)."""
        if self._ws is not None:
            _abort(self._ws)

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    # --- the connection ---

    async def _send(self, packet: Packet, namespace: str) -> None:
        ws = self._ws
        if ws is None or not self._namespaces[namespace].connected.is_set():
            raise ConnectionClosedError(1006, f"namespace {namespace} is not connected", False)
        head, *attachments = encode(packet)
        await ws.send("4" + str(head))
        for attachment in attachments:
            await ws.send(attachment)

    async def _run(self) -> None:
        delay = self.reconnection_delay_s
        while not self._closing:
            try:
                await self._session()
                delay = self.reconnection_delay_s
            except (OSError, FullDuplexError, TimeoutError) as exc:
                if not self.reconnection or self._closing:
                    raise
                logger.info("connection failed (%s); retrying in %.1f s", exc, delay)
            finally:
                self._dropped()
            if not self.reconnection or self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnection_delay_max_s)

    async def _session(self) -> None:
        async with asyncio.timeout(self.open_timeout_s):
            self._ws = ws = await connect(self._url, ping_interval=None)
            opening = await ws.recv()
        if not isinstance(opening, str) or not opening.startswith("0"):
            raise InvalidPacket(f"expected an Engine.IO OPEN packet, got {opening!r}")
        handshake = json.loads(opening[1:])
        self.engine_id = handshake["sid"]
        heartbeat_s = (handshake["pingInterval"] + handshake["pingTimeout"]) / 1000
        for state in self._namespaces.values():
            auth = dict(self.auth)
            if state.pid is not None and state.offset is not None:
                auth.update(pid=state.pid, offset=state.offset)
            await ws.send(_engine_message(Packet(PacketType.CONNECT, state.name, auth)))
        decoder = Decoder()
        while True:
            try:
                async with asyncio.timeout(heartbeat_s):
                    message = await ws.recv()
            except TimeoutError:
                logger.info("no ping from the server in %.1f s: dropping", heartbeat_s)
                _abort(ws)
                return
            except ConnectionClosed:
                return
            if isinstance(message, str):
                kind, body = message[:1], message[1:]
                if kind == "2":
                    await ws.send("3" + body)
                    continue
                if kind == "1":
                    return
                if kind != "4":
                    continue  # noop, or an upgrade packet not meant for a WebSocket-only client
                packet = decoder.receive(body)
            else:
                packet = decoder.receive(message)
            if packet is not None:
                self._on_packet(packet)

    def _dropped(self) -> None:
        self._ws = None
        for state in self._namespaces.values():
            if state.connected.is_set():
                state.connected.clear()
                self._run_handler(state.name, "disconnect", ["transport close"])
            closed = ConnectionClosedError(1006, "connection dropped", False)
            for future in state.acks.values():
                if not future.done():
                    future.set_exception(closed)

    def _on_packet(self, packet: Packet) -> None:
        state = self._namespaces.get(packet.namespace)
        if state is None:
            return
        if packet.type == PacketType.CONNECT:
            data = packet.data or {}
            pid = data.get("pid")
            state.recovered = pid is not None and pid == state.pid
            state.sid, state.pid, state.error = data.get("sid"), pid, None
            state.connected.set()
            self._run_handler(state.name, "connect", [])
        elif packet.type == PacketType.CONNECT_ERROR:
            data = packet.data if isinstance(packet.data, dict) else {"message": packet.data}
            state.error = ConnectRefused(str(data.get("message")), data.get("data"))
            self._closing = True
            state.connected.set()
        elif packet.type == PacketType.EVENT:
            event, *args = packet.data
            if state.pid is not None and args and isinstance(args[-1], str):
                state.offset = args[-1]
            self._run_handler(state.name, str(event), args, packet.id)
        elif packet.type == PacketType.ACK:
            future = state.acks.get(packet.id) if packet.id is not None else None
            if future is not None and not future.done():
                args = packet.data
                future.set_result(None if not args else args[0] if len(args) == 1 else tuple(args))
        elif packet.type == PacketType.DISCONNECT:
            state.connected.clear()
            self._run_handler(state.name, "disconnect", ["io server disconnect"])

    def _run_handler(
        self, namespace: str, event: str, args: list[Any], ack_id: int | None = None
    ) -> None:
        handler = self._handlers.get((namespace, event))
        if handler is None:
            return
        task = asyncio.get_running_loop().create_task(self._call(handler, namespace, args, ack_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, handler: _F, namespace: str, args: list[Any], ack_id: int | None) -> None:
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            logger.exception("client handler failed")
            return
        if ack_id is not None:
            ack = [] if result is None else list(result) if isinstance(result, tuple) else [result]
            with contextlib.suppress(ConnectionClosed):
                await self._send(Packet(PacketType.ACK, namespace, ack, ack_id), namespace)


def _engine_message(packet: Packet) -> str:
    (head,) = encode(packet)
    return "4" + str(head)


def _abort(ws: ClientConnection) -> None:
    if ws.transport is not None:
        ws.transport.abort()
