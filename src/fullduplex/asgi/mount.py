"""`mount`: any `Endpoint` (a `Router`, SockJS, Engine.IO) as an ASGI 3 application.

::

    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount("/realtime", app=fullduplex.asgi.mount(router))])

An ASGI ``http`` scope becomes an `HTTPExchange` (the body read from ``receive``, the response
sent as ``http.response.start`` and ``http.response.body`` with ``more_body`` for streaming,
``http.disconnect`` for `HTTPExchange.wait_disconnected`); a ``websocket`` scope becomes a
`Session`. The endpoint sees what it sees on `fullduplex.serve`: the request target with its
query, and the raw path below the mount (``root_path``), so one endpoint answers the same
under uvicorn as on fullduplex's own server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http import HTTPStatus
from typing import Any

from ..exceptions import (
    BodyTooLarge,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HTTPDisconnect,
    HTTPError,
    InvalidState,
)
from ..protocol.http11 import Headers, Request
from ..transports.base import Endpoint, HTTPExchange, Session

__all__ = ["mount", "ASGIMount", "ASGIExchange", "ASGISession"]

logger = logging.getLogger("fullduplex")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_NO_CONTENT_STATUSES = frozenset({204, 304})


def mount(endpoint: Endpoint) -> ASGIMount:
    """Return an ASGI 3 application serving ``endpoint`` (HTTP and WebSocket scopes).

    Mount it anywhere (Starlette's ``Mount``, FastAPI's ``app.mount``) or run it under
    uvicorn directly; the endpoint sees paths below the mount point.
    """
    return ASGIMount(endpoint)


class ASGIMount:
    """An ASGI 3 application serving one `Endpoint`; made by `mount`."""

    __slots__ = ("endpoint",)

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._serve_http(scope, receive, send)
        elif kind == "websocket":
            await self._serve_websocket(scope, receive, send)
        elif kind == "lifespan":
            await _run_lifespan(receive, send)

    async def _serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = ASGIExchange(scope, receive, send)
        try:
            await self.endpoint.handle_http(exchange, _relative_path(scope))
        except HTTPDisconnect:
            pass
        except HTTPError as error:
            logger.info("HTTP request refused: %s", error)
            await exchange._fail(int(error.http_status))
        except Exception:
            logger.exception("HTTP handler failed")
            await exchange._fail(500)
        else:
            if exchange._state == "new":
                logger.error("HTTP handler returned without responding to %s", exchange.request)
                await exchange._fail(500)
            elif exchange._state == "streaming":
                await exchange.end()

    async def _serve_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return  # the client left before the handshake
        request = _request(scope)
        path = _relative_path(scope)
        refusal = self.endpoint.refuse_websocket(request, path)
        if refusal is not None:
            if "websocket.http.response" in scope.get("extensions", {}):
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": refusal.status,
                        "headers": _encode_headers(refusal.headers),
                    }
                )
                await send({"type": "websocket.http.response.body", "body": refusal.body})
            else:
                # ASGI: a close before the accept is answered with 403.
                await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        session = ASGISession(scope, request, receive, send)
        try:
            await self.endpoint.handle_websocket(session, path)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("WebSocket handler failed")
            await session._close_quietly(1011, "")
            return
        await session._close_quietly(1000, "")


class ASGIExchange(HTTPExchange):
    """An `HTTPExchange` over one ASGI ``http`` scope; made by `mount`."""

    __slots__ = ("_scope", "_receive", "_send", "_request", "_state", "_body", "_is_disconnected")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send
        self._request = _request(scope)
        self._state = "new"  # new, streaming, done
        self._body: bytes | None = None
        self._is_disconnected = False

    @property
    def request(self) -> Request:
        """The request: method, target (path and query) and headers."""
        return self._request

    @property
    def remote_address(self) -> Any:
        """The client's ``(host, port)`` as the ASGI server gives it, or None."""
        return _client_address(self._scope)

    @property
    def is_disconnected(self) -> bool:
        """Whether the client went away before the response ended."""
        return self._is_disconnected

    async def read_body(self, max_bytes: int) -> bytes:
        """Return the whole request body; a second call returns it again.

        Raises:
            BodyTooLarge: the body exceeds ``max_bytes``.
            HTTPDisconnect: the client went away.
        """
        if self._body is not None:
            if len(self._body) > max_bytes:
                raise BodyTooLarge(f"request body exceeds {max_bytes} bytes")
            return self._body
        length = self._request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise BodyTooLarge(f"request body of {length} bytes exceeds {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._mark_disconnected()
                raise HTTPDisconnect("the client went away while sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge(f"request body exceeds {max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = self._body = b"".join(chunks)
        return body

    async def respond(
        self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b""
    ) -> None:
        """Send a whole response; ``Content-Length`` is added unless given.

        Raises:
            InvalidState: a response was already started.
        """
        self._check_state("new")
        self._state = "done"
        fields = Headers(headers)
        if status >= 200 and status not in _NO_CONTENT_STATUSES and "Content-Length" not in fields:
            fields.add("Content-Length", str(len(body)))
        if self._request.method == "HEAD":
            body = b""
        try:
            await self._send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": _encode_headers(fields),
                }
            )
            await self._send({"type": "http.response.body", "body": body})
        except OSError:
            self._mark_disconnected()

    async def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """Start a streamed response (the server frames it: chunked or by length).

        Raises:
            InvalidState: a response was already started.
        """
        self._check_state("new")
        self._state = "streaming"
        message = {
            "type": "http.response.start",
            "status": status,
            "headers": _encode_headers(Headers(headers)),
        }
        try:
            await self._send(message)
        except OSError:
            self._mark_disconnected()

    async def write(self, chunk: bytes) -> None:
        """Send part of a streamed response; the ASGI server waits while the client is slow.

        Raises:
            HTTPDisconnect: the client went away.
            InvalidState: no streamed response is in progress.
        """
        self._check_state("streaming")
        if self._is_disconnected:
            raise HTTPDisconnect("the client went away")
        if not chunk:
            return
        if self._request.method == "HEAD":
            return
        try:
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError as exc:
            self._mark_disconnected()
            raise HTTPDisconnect("the client went away") from exc

    async def end(self) -> None:
        """Finish a streamed response.

        Raises:
            InvalidState: no streamed response is in progress.
        """
        self._check_state("streaming")
        self._state = "done"
        try:
            await self._send({"type": "http.response.body", "body": b""})
        except OSError:
            self._mark_disconnected()

    async def wait_disconnected(self) -> None:
        """Return once the ASGI server reports ``http.disconnect``.

        An unread request body is read and dropped on the way.
        """
        while not self._is_disconnected:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._mark_disconnected()

    def _mark_disconnected(self) -> None:
        if self._state != "done":
            self._is_disconnected = True

    async def _fail(self, status: int) -> None:
        if self._state == "new":
            body = f"{status} {HTTPStatus(status).phrase}\n".encode()
            await self.respond(status, [("Content-Type", "text/plain; charset=utf-8")], body)
        elif self._state == "streaming":
            # The body is cut short: raising makes the ASGI server drop the connection, so the
            # client cannot take a partial body for complete.
            raise RuntimeError("the HTTP handler failed in the middle of its response")

    def _check_state(self, expected: str) -> None:
        if self._state != expected:
            raise InvalidState(f"the response is {self._state}; expected it {expected}")


class ASGISession(Session):
    """A `Session` over one accepted ASGI ``websocket`` scope (transport ``"websocket"``)."""

    __slots__ = ("_scope", "_request", "_receive", "_send", "_close_code", "_close_reason")

    def __init__(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        self._scope = scope
        self._request = request
        self._receive = receive
        self._send = send
        self._close_code: int | None = None
        self._close_reason = ""

    @property
    def transport(self) -> str:
        """Always ``"websocket"``."""
        return "websocket"

    @property
    def request(self) -> Request:
        """The upgrade request, rebuilt from the scope."""
        return self._request

    @property
    def remote_address(self) -> Any:
        """The peer's ``(host, port)`` as the ASGI server gives it, or None."""
        return _client_address(self._scope)

    @property
    def close_code(self) -> int | None:
        """The close code once closed; None while open."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        """The close reason once closed."""
        return self._close_reason

    async def recv(self) -> str | bytes:
        """Return the next message.

        Raises:
            ConnectionClosed: the session is closed.
        """
        if self._close_code is not None:
            raise self._closed_error()
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                return str(text)
            return bytes(message.get("bytes") or b"")
        if kind == "websocket.disconnect":
            self._close_code = int(message.get("code", 1005))
            self._close_reason = str(message.get("reason") or "")
        else:
            self._close_code = 1006
        raise self._closed_error()

    async def send(self, message: str | bytes) -> None:
        """Send one message; the ASGI server waits while the peer reads too slowly.

        Raises:
            ConnectionClosed: the session is closed.
            TypeError: ``message`` is neither ``str`` nor bytes.
        """
        if self._close_code is not None:
            raise self._closed_error()
        if isinstance(message, str):
            event: Message = {"type": "websocket.send", "text": message}
        elif isinstance(message, bytes | bytearray | memoryview):
            event = {"type": "websocket.send", "bytes": bytes(message)}
        else:
            raise TypeError(f"cannot send {type(message).__name__}; use str or bytes")
        try:
            await self._send(event)
        except (OSError, RuntimeError) as exc:
            # The ASGI server refuses sends once the connection is gone (uvicorn raises
            # ClientDisconnected, an OSError, or RuntimeError after a close).
            if self._close_code is None:
                self._close_code = 1006
            raise self._closed_error() from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the session with ``code`` and ``reason`` (the ASGI server runs the closing
        handshake)."""
        await self._close_quietly(code, reason)

    async def _close_quietly(self, code: int, reason: str) -> None:
        if self._close_code is not None:
            return
        self._close_code = code
        self._close_reason = reason
        with contextlib.suppress(OSError, RuntimeError):  # already gone
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def _closed_error(self) -> ConnectionClosed:
        code = self._close_code if self._close_code is not None else 1006
        error = ConnectionClosedOK if code in (1000, 1001) else ConnectionClosedError
        return error(code, self._close_reason, code != 1006)


def _request(scope: Scope) -> Request:
    """The request as fullduplex's server would see it: raw target with query, headers."""
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    query = scope.get("query_string", b"")
    if query:
        path = f"{path}?{query.decode('latin-1')}"
    headers = Headers(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
    )
    return Request(path, headers, scope.get("method", "GET"))


def _client_address(scope: Scope) -> Any:
    """The client's ``(host, port)`` as the ASGI server gives it, or None."""
    client = scope.get("client")
    return tuple(client) if client is not None else None


def _relative_path(scope: Scope) -> str:
    """The raw path below the mount point (``root_path``), without the query."""
    root_path: str = scope.get("root_path", "")
    raw_path = scope.get("raw_path")
    path: str = raw_path.decode("latin-1") if raw_path else scope["path"]
    if root_path and path.startswith(root_path):
        return path[len(root_path) :]
    decoded: str = scope["path"]
    if root_path and decoded.startswith(root_path):
        # The mount point has percent-escapes: fall back to the decoded path.
        return decoded[len(root_path) :]
    return path


def _encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def _run_lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown: an endpoint has nothing to set up."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
