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

    __slots__ = ("_websocket_routes", "_http_routes", "_mounts")

    def __init__(self) -> None:
        self._websocket_routes: dict[str, SessionHandler] = {}
        self._http_routes: dict[str, tuple[HTTPHandler, frozenset[str]]] = {}
        # Longest prefix first, so that the most specific mount wins.
        self._mounts: list[tuple[str, Endpoint]] = []

    # --- registering ---------------------------------------------------------------------

    @overload
    def websocket(self, path: str) -> Callable[[SessionHandler], SessionHandler]: ...
    @overload
    def websocket(self, path: str, handler: SessionHandler) -> SessionHandler: ...

    def websocket(
        self, path: str, handler: SessionHandler | None = None
    ) -> SessionHandler | Callable[[SessionHandler], SessionHandler]:
        """Serve WebSocket connections to exactly ``path`` with ``handler(session)``.

        Without ``handler``, return a decorator.

        Raises:
            ValueError: ``path`` does not start with ``/``.
        """
        path = _check_path(path)

        def register(handler: SessionHandler) -> SessionHandler:
            self._websocket_routes[path] = handler
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

    def mount(self, prefix: str, endpoint: Endpoint) -> None:
        """Serve every request and WebSocket upgrade under ``prefix`` with ``endpoint``.

        The endpoint sees the path below the prefix (``""`` for the prefix itself). ``"/"``
        or ``""`` mounts at the root, behind every other route.

        Raises:
            ValueError: ``prefix`` does not start with ``/``.
        """
        prefix = _normalize_prefix(prefix)
        self._mounts = [(p, e) for p, e in self._mounts if p != prefix]
        self._mounts.append((prefix, endpoint))
        self._mounts.sort(key=lambda mount: len(mount[0]), reverse=True)

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

    def refuse_websocket(self, request: Request, path: str) -> Response | None:
        """Accept an upgrade for a WebSocket route, ask the mounted endpoint, or refuse 404."""
        if path in self._websocket_routes:
            return None
        mounted = self._find_mount(path)
        if mounted is not None:
            endpoint, below = mounted
            return endpoint.refuse_websocket(request, below)
        return Response(404, [_PLAIN], b"Not Found\n")

    async def handle_websocket(self, session: Session, path: str) -> None:
        """Serve an accepted WebSocket session with its route or mounted endpoint."""
        await self._session_handler(session, path)

    # --- the io.asyncio.http.HTTPApplication interface: what `serve` calls -------------------

    def refuse_upgrade(self, request: Request) -> Response | None:
        """`refuse_websocket` for the request's whole path."""
        return self.refuse_websocket(request, request_path(request.path))

    def serve_websocket(self, connection: ServerConnection) -> Awaitable[None]:
        """Serve an accepted WebSocket connection as a `WebSocketSession`."""
        # The handler's coroutine itself: no frame of ours for the life of the connection.
        path = request_path(connection.request.path)
        return self._session_handler(WebSocketSession(connection), path)

    def serve_http(self, exchange: HTTPExchange) -> Awaitable[None]:
        """`handle_http` for the request's whole path."""
        return self.handle_http(exchange, request_path(exchange.request.path))

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
        for prefix, endpoint in self._mounts:
            if not prefix:
                return endpoint, path
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return endpoint, path[len(prefix) :]
        return None
