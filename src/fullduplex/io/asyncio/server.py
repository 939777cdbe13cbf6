"""The asyncio WebSocket server: `serve` listens, answers handshakes, runs a handler per client."""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Unpack

from ...exceptions import ConnectionClosed, InvalidHandshake
from ...protocol.connection import State
from ...protocol.events import RequestReceived
from ...protocol.extensions.permessage_deflate import ServerPerMessageDeflate
from ...protocol.frames import CloseCode, serialize_close_payload
from ...protocol.handshake import ServerNegotiation, SubprotocolSelector
from ...protocol.http11 import Request, Response
from ...protocol.server import ServerProtocol
from ..options import DEFAULT_OPTIONS, OptionOverrides, Options
from .connection import WebSocketConnection
from .http import HTTPApplication, HTTPConnection

__all__ = ["serve", "Server", "ServerConnection", "Handler", "RequestHook"]

logger = logging.getLogger("fullduplex")

Handler = Callable[["ServerConnection"], Awaitable[None]]
"""The application: called with each open connection; the connection closes when it returns."""

RequestHook = Callable[
    ["ServerConnection", Request], "Response | Awaitable[Response | None] | None"
]
"""Called with each request before the upgrade: return a `Response` to answer it with plain
HTTP (a health check, a page, a refusal), or None to go on with the WebSocket handshake."""


class ServerConnection(WebSocketConnection):
    """One client's connection, as the server's handler sees it.

    ``request`` is the client's upgrade request (``request.path``, ``request.headers``).
    """

    protocol: ServerProtocol

    __slots__ = ("server", "_task", "_open_handle", "_lingering")

    def __init__(self, server: Server, protocol: ServerProtocol, options: Options) -> None:
        super().__init__(protocol, options)
        self.server = server
        # The `process_request` hook's task, then the handler's.
        self._task: asyncio.Future[None] | None = None
        self._open_handle: asyncio.TimerHandle | None = None
        # Whether a refused handshake's answer is out and the socket waits for the client
        # to close its side (see `_close_transport`).
        self._lingering = False

    @property
    def request(self) -> Request:
        """The client's upgrade request."""
        assert self.protocol.request is not None
        return self.protocol.request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.server._closing is not None:
            # Accepted by the OS just before the server closed: `Server.close` never saw it.
            transport.close()
            return
        self.server._connections.add(self)
        # A client that never completes its request (slowloris) is dropped after open_timeout.
        if self.options.open_timeout is not None:
            self._open_handle = self._loop.call_later(
                self.options.open_timeout, self._open_timed_out
            )

    def connection_lost(self, exc: Exception | None) -> None:
        answering = self.protocol.state is State.CONNECTING
        super().connection_lost(exc)
        self._cancel_open_timer()
        if answering and self._task is not None:
            # Nobody is left to answer: stop a `process_request` hook still running.
            self._task.cancel()
        self.server._connections.discard(self)

    def _cancel_open_timer(self) -> None:
        # Dropped, not only cancelled: a cancelled uvloop timer still holds ~500 bytes.
        if self._open_handle is not None:
            self._open_handle.cancel()
            self._open_handle = None

    def _close_transport(self, transport: asyncio.Transport) -> None:
        if self._lingering:
            return  # closes when the client does, or on the close timer
        if self._open_handle is None or not transport.can_write_eof():
            super()._close_transport(transport)
            return
        # The handshake was refused with an HTTP answer. Closing a socket with request bytes
        # still unread makes the kernel send a reset, which can discard the answer before
        # the client reads it (RFC 9112 §9.6): half-close instead, read and drop what comes,
        # and close when the client does, or after close_timeout.
        self._lingering = True
        self._cancel_open_timer()
        transport.write_eof()
        self._arm_close_timer()

    def _open_timed_out(self) -> None:
        if self.protocol.state is State.CONNECTING and self.transport is not None:
            logger.debug("%s: opening handshake timed out", self._describe_peer())
            self.transport.abort()

    def _handle_event(self, event: object) -> None:
        if isinstance(event, RequestReceived):
            if self.server.process_request is None:
                # Answered at once: no task, and no coroutine frame, for the handshake.
                self._answer(None)
            else:
                task = self._task = self._loop.create_task(self._process_request(event.request))
                self.server._handlers.add(task)
                task.add_done_callback(self.server._handlers.discard)

    def _log_failure(self, error: Exception) -> None:
        if isinstance(error, InvalidHandshake):
            logger.info("%s: bad handshake request: %s", self._describe_peer(), error)
        else:
            super()._log_failure(error)

    def _is_awaiting_answer(self) -> bool:
        """Whether the upgrade request still awaits its answer: the client did not leave, the
        open timeout did not fire, the server is not shutting down."""
        transport = self.transport
        return (
            self.protocol.state is State.CONNECTING
            and transport is not None
            and not transport.is_closing()
        )

    def _shut_down(self, code: int, reason: str) -> None:
        """Start closing (the handler returned, or the server shuts down): the closing
        handshake, or drop an unanswered handshake."""
        protocol = self.protocol
        if protocol.state is State.OPEN and protocol.close_sent is None:
            protocol.send_close(code, reason)
            self._flush()
        elif protocol.state is State.CONNECTING and self.transport is not None:
            self.transport.close()

    async def _process_request(self, request: Request) -> None:
        """Run the `process_request` hook, then answer with its response or the upgrade."""
        server = self.server
        assert server.process_request is not None
        try:
            response = server.process_request(self, request)
            if inspect.isawaitable(response):
                response = await response
        except Exception:
            logger.exception("process_request failed")
            response = Response(500, [("Content-Type", "text/plain")], b"Internal Server Error\n")
        self._answer(response)

    def _answer(self, response: Response | None) -> None:
        """Answer the upgrade request: with ``response``, or with the upgrade when None.
        The one place that answers; once open, it starts the keepalive and the handler."""
        if not self._is_awaiting_answer():
            return
        if response is None:
            status = self.protocol.accept(self.server.extra_headers).status
        else:
            self.protocol.respond(response)
            status = response.status
        # Writes the answer, delivers frames the client sent right behind its request, and
        # logs a refusal.
        self._process_events()
        if status != 101:
            return
        self._cancel_open_timer()
        self._start_keepalive()
        self._start_handler()

    def _start_handler(self) -> None:
        """Run the handler in a task of its own; `_handler_done` closes the connection after.

        The task runs the handler's coroutine itself, with no wrapper: an idle connection
        holds one coroutine frame less.
        """
        server = self.server
        try:
            awaitable = server.handler(self)
            task = self._task = asyncio.ensure_future(awaitable, loop=self._loop)
        except Exception:  # a plain function that raised, or returned no awaitable
            logger.exception("connection handler failed")
            self._shut_down(CloseCode.INTERNAL_ERROR, "")
            return
        # The server holds every handler task: the loop only keeps weak references.
        server._handlers.add(task)
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Future[None]) -> None:
        """Close the connection once the handler returned: 1000, or 1011 if it failed."""
        self.server._handlers.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, ConnectionClosed):
            logger.error("connection handler failed", exc_info=error)
            self._shut_down(CloseCode.INTERNAL_ERROR, "")
        else:
            self._shut_down(CloseCode.NORMAL_CLOSURE, "")


class Server:
    """A listening WebSocket server; returned by `serve`.

    Use it as an async context manager (``async with serve(...) as server``): leaving the
    block closes every connection with 1001 and waits for them.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        negotiation: ServerNegotiation,
        process_request: RequestHook | None,
        extra_headers: Iterable[tuple[str, str]],
        options: Options,
        app: HTTPApplication | None = None,
        http_keepalive_timeout: float = 5,
    ) -> None:
        self.handler = handler
        self.app = app
        self.http_keepalive_timeout = http_keepalive_timeout
        self.negotiation = negotiation
        self.process_request = process_request
        self.extra_headers = tuple(extra_headers)
        self.options = options
        """The settings of every connection (see `Options`), unless the application's
        `HTTPApplication.upgrade_options` changes them for a route."""
        # The options and negotiation of each route's overrides, made once and shared by its
        # connections (an `Options` each would cost memory per idle connection).
        self._route_settings: dict[tuple[Any, ...], tuple[Options, ServerNegotiation]] = {}
        self._connections: set[ServerConnection] = set()
        # Connections speaking plain HTTP (with an `app` only); they become ServerConnections
        # on a WebSocket upgrade.
        self._http_connections: set[HTTPConnection] = set()
        self._handlers: set[asyncio.Future[None]] = set()
        # Handlers that wait for this server's shutdown themselves: it does not wait for them.
        self._waiting_handlers: set[asyncio.Future[None]] = set()
        self._waiting_handlers_changed: asyncio.Future[None] | None = None
        self._server: asyncio.Server | None = None
        self._closing: asyncio.Task[None] | None = None

    def _new_connection(self, overrides: OptionOverrides | None = None) -> ServerConnection:
        """A connection with the server's options, or with ``overrides`` of a route's."""
        options = self.options
        negotiation = self.negotiation
        if overrides:
            key = tuple(overrides.items())
            settings = self._route_settings.get(key)
            if settings is None:
                options = options.updated(overrides)
                # Only the extensions depend on the options: permessage-deflate is negotiated
                # in the handshake, so a route's compression settings need their own.
                negotiation = ServerNegotiation(
                    origins=negotiation.origins,
                    subprotocols=negotiation.subprotocols,
                    select_subprotocol=negotiation.select_subprotocol,
                    extensions=_extensions(options),
                )
                settings = self._route_settings[key] = (options, negotiation)
            options, negotiation = settings
        protocol = ServerProtocol(
            negotiation,
            max_header_bytes=options.max_header_bytes,
            max_headers=options.max_headers,
            max_message_size=options.max_size,
            max_frame_size=options.max_frame_size,
            max_fragments=options.max_fragments,
        )
        return ServerConnection(self, protocol, options)

    def _new_http_connection(self) -> HTTPConnection:
        return HTTPConnection(self)

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets."""
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def connections(self) -> frozenset[ServerConnection]:
        """The connections currently open or opening."""
        return frozenset(self._connections)

    @property
    def port(self) -> int:
        """The TCP port of the first listening socket (handy after binding port 0).

        Raises:
            RuntimeError: the server listens on no TCP socket (a Unix socket, or it closed).
        """
        for sock in self.sockets:
            address = sock.getsockname()
            if isinstance(address, tuple):
                return int(address[1])
        raise RuntimeError("the server listens on no TCP socket, so it has no port")

    def close(self, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        """Stop listening and start closing every connection with ``code`` (1001 by default);
        `wait_closed` waits for the end.

        Handlers get ``close_timeout`` to return after their connection closed; then they are
        cancelled (except those awaiting `wait_closed`). Handshakes in progress are dropped.

        Raises:
            ValueError: the code may not be sent or the reason exceeds 123 UTF-8 bytes.
        """
        serialize_close_payload(code, reason)  # check now, not in the background task
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if self._server is not None:
            self._server.close()
        connections = list(self._connections)
        for connection in connections:
            connection._shut_down(code, reason)
        http_connections = list(self._http_connections)
        http_closed = [http_connection._shut_down() for http_connection in http_connections]
        # Handlers see ConnectionClosed and return. Each connection's own close timer bounds
        # its closing handshake by close_timeout; a handler that ignores the closure is
        # cancelled after close_timeout.
        close_timeout = self.options.close_timeout
        waiting = [*self._handlers, *(c._closed for c in connections), *http_closed]
        await self._wait(waiting, close_timeout)
        for connection in connections:
            if connection.transport is not None and not connection._closed.done():
                connection.transport.abort()
        for http_connection in http_connections:
            http_connection._abort()
        handlers = [task for task in self._handlers if not task.done()]
        handlers = [task for task in handlers if task not in self._waiting_handlers]
        for task in handlers:
            task.cancel()
        stuck = await self._wait(handlers, close_timeout)
        if stuck:
            logger.warning("%d connection handlers ignored cancellation", len(stuck))
        if self._server is not None:
            await self._server.wait_closed()

    async def _wait(
        self, futures: Iterable[asyncio.Future[None]], timeout: float
    ) -> set[asyncio.Future[None]]:
        """Wait up to ``timeout`` for ``futures``, except the handlers that themselves wait
        for this shutdown (`wait_closed`): waiting for them would wait out the timeout.

        Returns:
            The futures still pending.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pending = {future for future in futures if not future.done()}
        while True:
            pending = {f for f in pending if not f.done()} - self._waiting_handlers
            remaining = deadline - loop.time()
            if not pending or remaining <= 0:
                return pending
            # One task waits for them all (not a wake-up per future), and a handler that
            # starts waiting for the shutdown restarts the wait without it.
            changed = self._waiting_handlers_changed = loop.create_future()
            all_done = asyncio.ensure_future(asyncio.wait(pending))
            try:
                await asyncio.wait(
                    {all_done, changed}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                all_done.cancel()
                self._waiting_handlers_changed = None

    async def wait_closed(self) -> None:
        """Wait until `close` has finished.

        A handler may call it for its own server: the shutdown then does not wait for that
        handler (which waits for the shutdown), nor cancel it.
        """
        if self._closing is None:
            return
        task = asyncio.current_task()
        if task in self._handlers:
            assert task is not None
            self._waiting_handlers.add(task)
            changed = self._waiting_handlers_changed
            if changed is not None and not changed.done():
                changed.set_result(None)
        await asyncio.shield(self._closing)

    async def serve_forever(self) -> None:
        """Serve until cancelled (for example by Ctrl-C under `asyncio.run`)."""
        assert self._server is not None
        try:
            await self._server.serve_forever()
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


# Lowercase, as it is used like a function: ``async with serve(...)`` or ``await serve(...)``.
class serve:
    """Start a WebSocket server on ``host:port`` (or a Unix socket) running ``handler``.

    ::

        async def echo(ws):
            async for message in ws:
                await ws.send(message)

        async with serve(echo, "127.0.0.1", 8000) as server:
            await server.serve_forever()

    ``handler`` may also be an `HTTPApplication`, such as a `fullduplex.transports.Router`
    holding WebSocket routes, mounted endpoints (SockJS, Engine.IO), HTTP routes and static
    files: then the port serves HTTP/1.1 with keep-alive as well, and WebSocket upgrades go to
    the application's routes::

        app = Router()
        app.websocket("/echo", echo_session)
        app.static("/", "public")
        async with serve(app, "127.0.0.1", 8000) as server:
            await server.serve_forever()

    Args:
        handler: coroutine function called with each open `ServerConnection`, or an
            `HTTPApplication`.
        host, port: where to listen; port 0 picks a free port (see `Server.port`).
        unix_path: listen on this Unix socket path instead of TCP.
        ssl: an `ssl.SSLContext` to serve ``wss://``.
        origins: allowed ``Origin`` values (403 otherwise); None allows every origin.
        subprotocols: supported subprotocols, by preference.
        select_subprotocol: a function choosing among the client's subprotocols.
        process_request: a hook answering plain HTTP requests on the same port. With an
            `HTTPApplication`, it sees only the WebSocket upgrade requests the application
            accepted; the application answers every other request.
        extra_headers: headers added to every 101 response.
        options: timeouts, keepalive, limits, buffering and compression (see `Options`).
        backlog: the listen backlog.
        http_keepalive_timeout: seconds an HTTP connection may stay idle between requests
            (with an `HTTPApplication` only).
        overrides: any field of `Options` as a keyword argument (``max_size=2**20``,
            ``ping_interval=None``, ``compression=None``), which overrides ``options``.

    Raises:
        TypeError: a keyword argument names no field of `Options`.
        ValueError: an option is invalid.
    """

    def __init__(
        self,
        handler: Handler | HTTPApplication,
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        unix_path: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        origins: Sequence[str | None] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        process_request: RequestHook | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        options: Options = DEFAULT_OPTIONS,
        backlog: int = 1024,
        http_keepalive_timeout: float = 5,
        **overrides: Unpack[OptionOverrides],
    ) -> None:
        options = options.updated(overrides)
        app: HTTPApplication | None = None
        if isinstance(handler, HTTPApplication):
            app = handler
            handler = app.serve_websocket
        negotiation = ServerNegotiation(
            origins=origins,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            extensions=_extensions(options),
        )
        self._server = Server(
            handler,
            app=app,
            http_keepalive_timeout=http_keepalive_timeout,
            negotiation=negotiation,
            process_request=process_request,
            extra_headers=extra_headers,
            options=options,
        )
        self._address = (host, port, unix_path)
        self._listen_options: dict[str, Any] = dict(ssl=ssl, backlog=backlog)
        if ssl is not None and options.open_timeout is not None:
            # A client that stalls in the TLS handshake is dropped like one stalling after it.
            self._listen_options["ssl_handshake_timeout"] = options.open_timeout

    async def _start(self) -> Server:
        loop = asyncio.get_running_loop()
        server = self._server
        factory = server._new_connection if server.app is None else server._new_http_connection
        host, port, unix_path = self._address
        if unix_path is not None:
            listener = await loop.create_unix_server(factory, unix_path, **self._listen_options)
        else:
            listener = await loop.create_server(factory, host, port, **self._listen_options)
        self._server._server = listener
        return self._server

    def __await__(self) -> Any:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self._server.__aexit__(*exc_info)


def _extensions(options: Options) -> list[ServerPerMessageDeflate]:
    """The extensions a server with ``options`` accepts."""
    if options.compression != "deflate":
        return []
    return [ServerPerMessageDeflate(compression_threshold=options.compression_threshold)]
