"""`Router`: WebSocket routes, mounted endpoints, HTTP routes and static files on one port.

::

    app = Router()
    app.websocket("/chat", chat)                # chat(session: Session)
    app.mount("/sockjs", SockJSEndpoint(chat))  # any transports.base.Endpoint
    app.route("/health", health)                # health(exchange: HTTPExchange)
    app.static("/", "public")                   # files, with ETag and HEAD

    async with fullduplex.serve(app, "127.0.0.1", 8000) as server:
        await server.serve_forever()

The same router runs under uvicorn with ``fullduplex.asgi.mount(app)``.

A WebSocket route or a mount may run its connections with other `Options` than the server's:
``app.mount("/engine.io", endpoint, websocket_options={"compression": None})``. A mounted
endpoint declares what it needs itself (`Endpoint.websocket_options`; Engine.IO turns
permessage-deflate off), and the mount's ``websocket_options`` go over those. They apply under
`fullduplex.serve`; under uvicorn its own settings hold (``ws_per_message_deflate``,
``ws_max_size``...).

Matching is on the raw request path (percent-escapes kept, query left out): an exact WebSocket
or HTTP route first, then the mount with the longest prefix, on a segment boundary (``/sockjs``
matches ``/sockjs`` and ``/sockjs/info``, not ``/sockjsx``). No match answers 404; a route
that exists for other methods answers 405 with ``Allow``; a plain request for a WebSocket-only
path answers 426. A `Router` is itself an `Endpoint`, so routers nest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from os import PathLike
from typing import TYPE_CHECKING, overload

from ..io.asyncio.exchange import HTTPExchange
from ..io.asyncio.native_exchange import NativeExchange
from ..io.options import DEFAULT_OPTIONS, OptionOverrides
from ..protocol.http11 import Request, Response
from .base import Endpoint, Session
from .static import StaticFiles
from .websocket import WebSocketSession

if TYPE_CHECKING:
    from ..io.asyncio.server import ServerConnection

__all__ = ["Router", "SessionHandler", "HTTPHandler", "request_path"]

SessionHandler = Callable[[Session], Awaitable[None]]
"""A WebSocket route's handler: called with each session; the session closes when it returns."""

HTTPHandler = Callable[[HTTPExchange], Awaitable[None]]
"""An HTTP route's handler: answers one request with ``exchange.respond`` (or streams)."""

_PLAIN = ("Content-Type", "text/plain; charset=utf-8")


def request_path(target: str) -> str:
    """Return the path of a request target: no query, and no scheme and authority for the
    absolute form (RFC 9112 §3.2.2)."""
    path = target.partition("?")[0].partition("#")[0]
    if not path.startswith("/") and "://" in path:
        path = "/" + path.partition("://")[2].partition("/")[2]
    return path


def _normalize_prefix(prefix: str) -> str:
    if prefix and not prefix.startswith("/"):
        raise ValueError(f"a mount prefix starts with '/': {prefix!r}")
    return prefix.rstrip("/")


def _check_options(options: OptionOverrides | None) -> OptionOverrides:
    """Check option overrides when they are registered, not at a client's first upgrade."""
    if not options:
        return {}
    DEFAULT_OPTIONS.updated(options)
    return options.copy()


def _set_options(table: dict[str, OptionOverrides], key: str, options: OptionOverrides) -> None:
    if options:
        table[key] = options
    else:
        table.pop(key, None)


def _check_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"a route path starts with '/': {path!r}")
    return path


async def _answer(exchange: HTTPExchange, status: int, text: str, *extra: tuple[str, str]) -> None:
    await exchange.respond(status, [_PLAIN, *extra], f"{text}\n".encode())


class Router(Endpoint):
    """Routes requests and WebSocket upgrades by path; pass it to `fullduplex.serve`.

    Register with `websocket`, `route`, `mount` and `static` (each also works as a decorator
    where it takes a handler). Routes may be added before serving, not while serving.
    """

    __slots__ = ("_websocket_routes", "_http_routes", "_mounts", "_route_options", "_mount_options")

    def __init__(self) -> None:
        self._websocket_routes: dict[str, SessionHandler] = {}
        self._http_routes: dict[str, tuple[HTTPHandler, frozenset[str]]] = {}
        # Longest prefix first, so that the most specific mount wins.
        self._mounts: list[tuple[str, Endpoint]] = []
        # The WebSocket option overrides of routes (by path) and mounts (by prefix).
        self._route_options: dict[str, OptionOverrides] = {}
        self._mount_options: dict[str, OptionOverrides] = {}

    # --- registering ---------------------------------------------------------------------

    @overload
    def websocket(
        self, path: str, *, websocket_options: OptionOverrides | None = ...
    ) -> Callable[[SessionHandler], SessionHandler]: ...
    @overload
    def websocket(
        self,
        path: str,
        handler: SessionHandler,
        *,
        websocket_options: OptionOverrides | None = ...,
    ) -> SessionHandler: ...

    def websocket(
        self,
        path: str,
        handler: SessionHandler | None = None,
        *,
        websocket_options: OptionOverrides | None = None,
    ) -> SessionHandler | Callable[[SessionHandler], SessionHandler]:
        """Serve WebSocket connections to exactly ``path`` with ``handler(session)``.

        Without ``handler``, return a decorator.

        Args:
            websocket_options: `Options` fields these connections run with instead of the
                server's, e.g. ``{"compression": None, "max_size": 2**24}``.

        Raises:
            ValueError: ``path`` does not start with ``/``, or an option's value is invalid.
            TypeError: ``websocket_options`` names no field of `Options`.
        """
        path = _check_path(path)
        options = _check_options(websocket_options)

        def register(handler: SessionHandler) -> SessionHandler:
            self._websocket_routes[path] = handler
            _set_options(self._route_options, path, options)
            return handler

        return register if handler is None else register(handler)

    @overload
    def route(
        self, path: str, *, methods: Iterable[str] = ...
    ) -> Callable[[HTTPHandler], HTTPHandler]: ...
    @overload
    def route(
        self, path: str, handler: HTTPHandler, *, methods: Iterable[str] = ...
    ) -> HTTPHandler: ...

    def route(
        self, path: str, handler: HTTPHandler | None = None, *, methods: Iterable[str] = ("GET",)
    ) -> HTTPHandler | Callable[[HTTPHandler], HTTPHandler]:
        """Answer plain HTTP requests to exactly ``path`` with ``handler(exchange)``.

        A route for GET answers HEAD too (the server leaves the body out). Other methods get
        405 with ``Allow``. Without ``handler``, return a decorator.

        Raises:
            ValueError: ``path`` does not start with ``/``.
        """
        path = _check_path(path)
        allowed = {method.upper() for method in methods}
        if "GET" in allowed:
            allowed.add("HEAD")

        def register(handler: HTTPHandler) -> HTTPHandler:
            self._http_routes[path] = (handler, frozenset(allowed))
            return handler

        return register if handler is None else register(handler)

    def mount(
        self,
        prefix: str,
        endpoint: Endpoint,
        *,
        websocket_options: OptionOverrides | None = None,
    ) -> None:
        """Serve every request and WebSocket upgrade under ``prefix`` with ``endpoint``.

        The endpoint sees the path below the prefix (``""`` for the prefix itself). ``"/"``
        or ``""`` mounts at the root, behind every other route.

        Args:
            websocket_options: `Options` fields the endpoint's WebSocket connections run with
                instead of the server's; they go over what the endpoint declares itself
                (`Endpoint.websocket_options`), e.g. ``{"compression": "deflate"}`` for an
                `EngineIOEndpoint`.

        Raises:
            ValueError: ``prefix`` does not start with ``/``, or an option's value is invalid.
            TypeError: ``websocket_options`` names no field of `Options`.
        """
        prefix = _normalize_prefix(prefix)
        options = _check_options(websocket_options)
        self._mounts = [(p, e) for p, e in self._mounts if p != prefix]
        self._mounts.append((prefix, endpoint))
        self._mounts.sort(key=lambda mount: len(mount[0]), reverse=True)
        _set_options(self._mount_options, prefix, options)

    def static(
        self, prefix: str, directory: str | PathLike[str], *, index: str | None = "index.html"
    ) -> None:
        """Serve the files under ``directory`` at ``prefix`` (see `StaticFiles`); a
        directory's ``index`` file answers for it.

        Raises:
            ValueError: ``prefix`` does not start with ``/``.
            NotADirectoryError: ``directory`` is not a directory.
        """
        self.mount(prefix, StaticFiles(directory, index=index))

    # --- the Endpoint interface: a router mounted in a router, or under ASGI ---------------

    async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
        """Answer one plain HTTP request for ``path`` (relative to where this router is)."""
        route = self._http_routes.get(path)
        if route is not None:
            handler, allowed = route
            if exchange.request.method in allowed:
                await handler(exchange)
            else:
                allow = ", ".join(sorted(allowed))
                await _answer(exchange, 405, "Method Not Allowed", ("Allow", allow))
            return
        mounted = self._find_mount(path)
        if mounted is not None:
            endpoint, below = mounted
            await endpoint.handle_http(exchange, below)
        elif path in self._websocket_routes:
            await _answer(exchange, 426, "Upgrade Required", ("Upgrade", "websocket"))
        else:
            await _answer(exchange, 404, "Not Found")

    def handle_http_nowait(self, exchange: NativeExchange, path: str) -> bool:
        """Let the endpoint mounted at ``path`` answer at once if it can; everything else
        (HTTP routes, static files, 404...) is answered by `handle_http`."""
        if path in self._http_routes:
            return False
        found = self._find_mount_prefix(path)
        return found is not None and found[1].handle_http_nowait(exchange, found[2])

    def refuse_websocket(self, request: Request, path: str) -> Response | None:
        """Accept an upgrade for a WebSocket route, ask the mounted endpoint, or refuse 404."""
        if path in self._websocket_routes:
            return None
        mounted = self._find_mount(path)
        if mounted is not None:
            endpoint, below = mounted
            return endpoint.refuse_websocket(request, below)
        return Response(404, [_PLAIN], b"Not Found\n")

    def websocket_options(self, request: Request, path: str) -> OptionOverrides:
        """The options of the WebSocket route for ``path``, or the mounted endpoint's with
        the mount's over them."""
        if path in self._websocket_routes:
            return self._route_options.get(path, {})
        found = self._find_mount_prefix(path)
        if found is None:
            return {}
        prefix, endpoint, below = found
        declared = endpoint.websocket_options(request, below)
        mounted = self._mount_options.get(prefix)
        if not mounted:
            return declared
        options = declared.copy()
        options.update(mounted)
        return options

    async def handle_websocket(self, session: Session, path: str) -> None:
        """Serve an accepted WebSocket session with its route or mounted endpoint."""
        await self._session_handler(session, path)

    # --- the io.asyncio.http.HTTPApplication interface: what `serve` calls -------------------

    def refuse_upgrade(self, request: Request) -> Response | None:
        """`refuse_websocket` for the request's whole path."""
        return self.refuse_websocket(request, request_path(request.path))

    def upgrade_options(self, request: Request) -> OptionOverrides:
        """`websocket_options` for the request's whole path."""
        return self.websocket_options(request, request_path(request.path))

    def serve_websocket(self, connection: ServerConnection) -> Awaitable[None]:
        """Serve an accepted WebSocket connection as a `WebSocketSession`."""
        # The handler's coroutine itself: no frame of ours for the life of the connection.
        path = request_path(connection.request.path)
        return self._session_handler(WebSocketSession(connection), path)

    def serve_http(self, exchange: HTTPExchange) -> Awaitable[None]:
        """`handle_http` for the request's whole path."""
        return self.handle_http(exchange, request_path(exchange.request.path))

    def serve_http_nowait(self, exchange: NativeExchange) -> bool:
        """`handle_http_nowait` for the request's whole path (see `HTTPApplication`)."""
        return self.handle_http_nowait(exchange, request_path(exchange.request.path))

    # --- internals -----------------------------------------------------------------------

    def _session_handler(self, session: Session, path: str) -> Awaitable[None]:
        handler = self._websocket_routes.get(path)
        if handler is not None:
            return handler(session)
        mounted = self._find_mount(path)
        if mounted is not None:
            endpoint, below = mounted
            return endpoint.handle_websocket(session, below)
        # Only when the router changed between the refusal check and the handshake.
        return session.close(1008, "no route")

    def _find_mount(self, path: str) -> tuple[Endpoint, str] | None:
        found = self._find_mount_prefix(path)
        return None if found is None else found[1:]

    def _find_mount_prefix(self, path: str) -> tuple[str, Endpoint, str] | None:
        for prefix, endpoint in self._mounts:
            if not prefix:
                return prefix, endpoint, path
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return prefix, endpoint, path[len(prefix) :]
        return None
