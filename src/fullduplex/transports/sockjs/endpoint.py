"""`SockJSEndpoint`: every SockJS 0.3.3 URL under one mount prefix, served to one handler.

The URLs below the prefix (sockjs-protocol 0.3.3):

- ``/`` greeting; ``/info`` (GET, OPTIONS); ``/iframe.html`` and ``/iframe-<version>.html``;
  ``/sockjs.min.js`` (the sockjs-client script the iframe page loads, when one is given);
- ``/<server>/<session>/<transport>``: ``xhr``, ``xhr_send``, ``xhr_streaming``,
  ``eventsource``, ``htmlfile``, ``jsonp``, ``jsonp_send`` (HTTP) and ``websocket``;
- ``/websocket``: a raw WebSocket, no SockJS framing; the handler gets the connection itself.

Every response follows the protocol's rules, which the suite checks: CORS (the request's
``Origin`` echoed with credentials allowed, ``*`` without one; preflights cached for a year),
caching (session responses never cached, ``iframe.html`` cached for a year with an ETag), and
the ``JSESSIONID`` cookie on session responses when ``cookie_needed`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from ...exceptions import BodyTooLarge, ConnectionClosed, HTTPDisconnect
from ...protocol.http11 import Request, Response
from ..base import Endpoint, HTTPExchange, Session
from ..router import SessionHandler
from . import codec, hixie76
from .hixie76 import Hixie76Connection, is_hixie76_request
from .session import Overflow, SessionState, SockJSSession, another_connection_frame
from .websocket import SockJSWebSocketSession

__all__ = ["SockJSEndpoint", "default_client_script"]

logger = logging.getLogger(__name__)

_YEAR_S = 365 * 24 * 3600
_NOT_CACHED = ("Cache-Control", "no-store, no-cache, no-transform, must-revalidate, max-age=0")
_TEXT = ("Content-Type", "text/plain; charset=UTF-8")
_JAVASCRIPT = ("Content-Type", "application/javascript; charset=UTF-8")
_HTML = ("Content-Type", "text/html; charset=UTF-8")
_GREETING = b"Welcome to SockJS!\n"

# sockjs-protocol: server and session ids are any non-empty text without "/" or ".".
_SESSION_URL = re.compile(r"/([^/.]+)/([^/.]+)/([a-z_]+)")
_IFRAME_URL = re.compile(r"/iframe[0-9a-z._-]*\.html")
_CLIENT_SCRIPT_URL = "/sockjs.min.js"

_CLIENT_DIR = Path(__file__).parent / "client"


def default_client_script() -> Path | None:
    """Return sockjs-client's script as ``make`` installs it from npm, or None when absent.

    ``make`` runs ``npm ci`` in ``src/fullduplex/transports/sockjs/client/`` (its
    ``package.json`` pins sockjs-client 1.6); ``FULLDUPLEX_SOCKJS_CLIENT`` names another file.
    """
    named = os.environ.get("FULLDUPLEX_SOCKJS_CLIENT")
    path = Path(named) if named else _CLIENT_DIR / "node_modules/sockjs-client/dist/sockjs.min.js"
    return path if path.is_file() else None


@dataclass(frozen=True, slots=True)
class _Receiver:
    """How one receiving transport answers: its name, framing and response head."""

    name: str
    is_streaming: bool
    content_type: str
    wrap: Callable[[str], bytes]
    prelude: bytes = b""


_XHR = _Receiver("xhr-polling", False, _JAVASCRIPT[1], codec.xhr_chunk)
_XHR_STREAMING = _Receiver(
    "xhr-streaming", True, _JAVASCRIPT[1], codec.xhr_chunk, codec.XHR_STREAMING_PRELUDE
)
_EVENTSOURCE = _Receiver(
    "eventsource", True, "text/event-stream", codec.eventsource_chunk, codec.EVENTSOURCE_PRELUDE
)


class SockJSEndpoint(Endpoint):
    """Serve SockJS sessions to ``handler``; mount it at a prefix of a fullduplex server.

    ``handler`` gets each session (`SockJSSession` for polling and streaming transports, a
    WebSocket-backed `Session` otherwise) and serves it; the session closes when it returns.

    Args:
        handler: ``async def handler(session)``; the same function can serve raw WebSocket
            connections.
        websocket: offer the ``websocket`` transports (``/info`` says so).
        cookie_needed: set ``JSESSIONID`` on session responses, for sticky load balancers.
        response_limit_bytes: a streaming response ends after this many bytes of frames; the
            client opens the next one (frees the browser's memory of the old one).
        heartbeat_s: seconds of silence before a heartbeat frame.
        disconnect_delay_s: seconds a session waits for its client's next request before it
            is closed and forgotten.
        max_queue_bytes: bound of each session's outgoing and incoming queue.
        overflow: what a send to a full outgoing queue does: ``"block"`` (wait) or
            ``"close"`` (close the session with code 4009); see `fullduplex.transports.sockjs.
            session`.
        max_sessions: sessions open at once; a new one beyond that gets 503.
        max_body_bytes: largest ``xhr_send`` / ``jsonp_send`` body; a larger one gets 413.
        sockjs_url: the client script URL written in ``iframe.html``; by default the one this
            endpoint serves (``<prefix>/sockjs.min.js``).
        client_script: the sockjs-client file served at ``<prefix>/sockjs.min.js``; by
            default `default_client_script`.
    """

    def __init__(
        self,
        handler: SessionHandler,
        *,
        websocket: bool = True,
        cookie_needed: bool = False,
        response_limit_bytes: int = 128 * 1024,
        heartbeat_s: float = 25.0,
        disconnect_delay_s: float = 5.0,
        max_queue_bytes: int = 1024 * 1024,
        overflow: Overflow = "block",
        max_sessions: int = 10_000,
        max_body_bytes: int = 1024 * 1024,
        sockjs_url: str | None = None,
        client_script: str | os.PathLike[str] | None = None,
    ) -> None:
        if overflow not in ("block", "close"):
            raise ValueError(f"overflow must be 'block' or 'close', not {overflow!r}")
        self.handler = handler
        self.websocket = websocket
        self.cookie_needed = cookie_needed
        self.response_limit_bytes = response_limit_bytes
        self.heartbeat_s = heartbeat_s
        self.disconnect_delay_s = disconnect_delay_s
        self.max_queue_bytes = max_queue_bytes
        self.overflow: Overflow = overflow
        self.max_sessions = max_sessions
        self.max_body_bytes = max_body_bytes
        self.sockjs_url = sockjs_url
        script = Path(client_script) if client_script is not None else default_client_script()
        self._client_script = script.read_bytes() if script is not None else None
        self._sessions: dict[str, SockJSSession] = {}
        # The exchange attached to each session, to see whether its client is still there.
        self._receiving: dict[SockJSSession, HTTPExchange] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def session_count(self) -> int:
        """How many sessions the endpoint holds now (open, or closed but not forgotten)."""
        return len(self._sessions)

    # -- HTTP -----------------------------------------------------------------------------

    async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
        """Answer one request under the prefix (see the module docstring for the URLs)."""
        method = exchange.request.method
        if path in ("", "/"):
            if method != "GET":
                await _method_not_allowed(exchange, "GET")
            else:
                await exchange.respond(200, [_TEXT], _GREETING)
        elif path == "/info":
            await self._info(exchange, method)
        elif _IFRAME_URL.fullmatch(path):
            await self._iframe(exchange, path)
        elif path == _CLIENT_SCRIPT_URL and self._client_script is not None:
            await self._static(exchange, self._client_script, _JAVASCRIPT[1])
        elif path == "/websocket":
            await self._not_upgraded(exchange, method, is_raw=True)
        elif (match := _SESSION_URL.fullmatch(path)) is not None:
            await self._session_request(exchange, method, match.group(2), match.group(3))
        else:
            await exchange.respond(404, [], b"")

    async def _info(self, exchange: HTTPExchange, method: str) -> None:
        if method == "OPTIONS":
            await _preflight(exchange, "OPTIONS, GET")
        elif method == "GET":
            body = {
                "websocket": self.websocket,
                "cookie_needed": self.cookie_needed,
                "origins": ["*:*"],
                # The browser has no good entropy source; sockjs-client seeds from this.
                "entropy": secrets.randbits(32),
            }
            headers = [("Content-Type", "application/json; charset=UTF-8"), _NOT_CACHED]
            headers += _cors(exchange.request)
            await exchange.respond(200, headers, json.dumps(body).encode())
        else:
            await _method_not_allowed(exchange, "OPTIONS, GET")

    async def _iframe(self, exchange: HTTPExchange, path: str) -> None:
        url = self.sockjs_url
        if url is None:
            url = _prefix(exchange.request, path) + _CLIENT_SCRIPT_URL
        await self._static(exchange, codec.iframe_page(url), _HTML[1])

    async def _static(self, exchange: HTTPExchange, body: bytes, content_type: str) -> None:
        if exchange.request.method != "GET":
            await _method_not_allowed(exchange, "GET")
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = [*_cached(), ("ETag", etag)]
        if exchange.request.headers.get("If-None-Match") == etag:
            await exchange.respond(304, headers, b"")
        else:
            await exchange.respond(200, [("Content-Type", content_type), *headers], body)

    async def _not_upgraded(self, exchange: HTTPExchange, method: str, *, is_raw: bool) -> None:
        """A WebSocket URL asked without an RFC 6455 upgrade: draft 76, or a mistake."""
        take_over = getattr(exchange, "take_over", None)
        if method != "GET":
            await _method_not_allowed(exchange, "GET")
        elif self.websocket and take_over is not None and is_hixie76_request(exchange.request):
            request = exchange.request
            location = f"ws://{request.headers.get('Host', '')}{request.path}"
            reader, writer = await take_over(101, hixie76.response_headers(request, location))
            await self._serve_hixie76(Hixie76Connection(request, reader, writer), is_raw)
        elif _has_token(exchange.request, "Upgrade", "websocket") and not _has_token(
            exchange.request, "Connection", "upgrade"
        ):
            # A proxy rewrote the Connection header (sockjs-protocol: refuse, 400).
            await exchange.respond(400, [_TEXT], b'"Connection" must be "Upgrade".')
        else:
            await exchange.respond(400, [_TEXT], b'Can "Upgrade" only to "WebSocket".')

    async def _serve_hixie76(self, connection: Hixie76Connection, is_raw: bool) -> None:
        try:
            await connection.answer_nonce()
        except (ValueError, asyncio.IncompleteReadError, ConnectionError):
            await connection.close()
            return
        try:
            await self._serve_websocket(connection, is_raw)
        finally:
            await connection.close()

    async def _session_request(
        self, exchange: HTTPExchange, method: str, session_id: str, transport: str
    ) -> None:
        if transport in ("xhr", "xhr_streaming", "xhr_send", "jsonp_send"):
            if method == "OPTIONS":
                await _preflight(exchange, "OPTIONS, POST")
                return
            if method != "POST":
                await _method_not_allowed(exchange, "OPTIONS, POST")
                return
        elif transport in ("eventsource", "htmlfile", "jsonp", "websocket"):
            if method != "GET":
                await _method_not_allowed(exchange, "GET")
                return
        else:
            await exchange.respond(404, [], b"")
            return
        try:
            if transport == "xhr":
                await self._receive(exchange, session_id, _XHR)
            elif transport == "xhr_streaming":
                await self._receive(exchange, session_id, _XHR_STREAMING)
            elif transport == "eventsource":
                await self._receive(exchange, session_id, _EVENTSOURCE)
            elif transport == "htmlfile":
                callback = codec.callback_from_query(_query(exchange.request))
                receiver = _Receiver(
                    "htmlfile",
                    True,
                    _HTML[1],
                    codec.htmlfile_chunk,
                    codec.htmlfile_prelude(callback),
                )
                await self._receive(exchange, session_id, receiver)
            elif transport == "jsonp":
                callback = codec.callback_from_query(_query(exchange.request))
                receiver = _Receiver(
                    "jsonp-polling", False, _JAVASCRIPT[1], lambda f: codec.jsonp_body(callback, f)
                )
                await self._receive(exchange, session_id, receiver)
            elif transport == "websocket":
                await self._not_upgraded(exchange, method, is_raw=False)
            else:
                await self._send(exchange, session_id, is_jsonp=transport == "jsonp_send")
        except codec.BadRequest as error:
            headers = [_TEXT, _NOT_CACHED, *_cors(exchange.request)]
            await exchange.respond(int(error.http_status), headers, str(error).encode())

    def _session_headers(self, request: Request, content_type: str) -> list[tuple[str, str]]:
        headers = [("Content-Type", content_type), _NOT_CACHED, *_cors(request)]
        if self.cookie_needed:
            value = _cookie(request, "JSESSIONID") or "dummy"
            headers.append(("Set-Cookie", f"JSESSIONID={value}; path=/"))
        return headers

    async def _send(self, exchange: HTTPExchange, session_id: str, *, is_jsonp: bool) -> None:
        request = exchange.request
        session = self._sessions.get(session_id)
        if session is None or session.state is not SessionState.OPEN:
            await exchange.respond(404, [*_cors(request)], b"")
            return
        try:
            body = await exchange.read_body(self.max_body_bytes)
        except BodyTooLarge:
            await exchange.respond(413, [_TEXT, *_cors(request)], b"Payload too large.")
            return
        if is_jsonp:
            messages = codec.decode_jsonp_send(body, request.headers.get("Content-Type"))
        else:
            messages = codec.decode_xhr_send(body)
        try:
            await session.deliver(messages)
        except ConnectionClosed:
            await exchange.respond(404, [*_cors(request)], b"")
            return
        if is_jsonp:
            await exchange.respond(200, self._session_headers(request, _TEXT[1]), b"ok")
        else:
            await exchange.respond(204, self._session_headers(request, _TEXT[1]), b"")

    async def _receive(self, exchange: HTTPExchange, session_id: str, receiver: _Receiver) -> None:
        request = exchange.request
        session = self._sessions.get(session_id)
        if session is None:
            if len(self._sessions) >= self.max_sessions:
                headers = [_TEXT, *_cors(request), ("Retry-After", "5")]
                await exchange.respond(503, headers, b"Too many sessions.")
                return
            session = self._open(exchange, session_id, receiver.name)
        headers = self._session_headers(request, receiver.content_type)
        if not session.attach(receiver.name):
            attached = self._receiving.get(session)
            if attached is None or not attached.is_disconnected:
                await _answer_once(exchange, receiver, headers, another_connection_frame())
                return
            # Its client went away and we have not noticed yet: this one takes over.
            session.interrupt()
            await _answer_once(exchange, receiver, headers, _close_frame(session))
            return
        self._receiving[session] = exchange
        # Done once the client has gone away: settled by the exchange itself, no watcher task.
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        forget = exchange.call_on_disconnect(functools.partial(_settle, gone))
        try:
            if receiver.is_streaming:
                await self._stream(exchange, session, receiver, headers, gone)
            else:
                frame = await _pull(session, gone)
                # After an interruption the client is gone; the answer is only for the books.
                frame = frame if frame is not None else _close_frame(session)
                await exchange.respond(200, headers, receiver.wrap(frame))
        except HTTPDisconnect:
            session.interrupt()
        finally:
            forget()
            del self._receiving[session]
            session.detach()

    async def _stream(
        self,
        exchange: HTTPExchange,
        session: SockJSSession,
        receiver: _Receiver,
        headers: list[tuple[str, str]],
        gone: asyncio.Future[None],
    ) -> None:
        await exchange.start(200, headers)
        await exchange.write(receiver.prelude)
        sent = 0
        while sent < self.response_limit_bytes:
            frame = await _pull(session, gone)
            if frame is None:
                return
            chunk = receiver.wrap(frame)
            await exchange.write(chunk)
            sent += len(chunk)
            if frame.startswith("c"):
                break
        await exchange.end()

    def _open(self, exchange: HTTPExchange, session_id: str, transport: str) -> SockJSSession:
        session = SockJSSession(
            exchange.request,
            exchange.remote_address,
            transport=transport,
            heartbeat_s=self.heartbeat_s,
            disconnect_delay_s=self.disconnect_delay_s,
            max_queue_bytes=self.max_queue_bytes,
            overflow=self.overflow,
            on_expired=functools.partial(self._forget, session_id),
        )
        self._sessions[session_id] = session
        self._start(self._serve(session))
        return session

    def _forget(self, session_id: str, session: SockJSSession) -> None:
        if self._sessions.get(session_id) is session:
            del self._sessions[session_id]

    def _start(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, session: Session) -> None:
        try:
            await self.handler(session)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("SockJS handler failed")
            await session.close(1011, "Internal error")
            return
        await session.close(1000, "")

    # -- WebSocket ------------------------------------------------------------------------

    def refuse_websocket(self, request: Request, path: str) -> Response | None:
        """Refuse upgrades outside ``/websocket`` and ``/<server>/<session>/websocket``, and
        all of them when the endpoint was made with ``websocket=False``."""
        match = _SESSION_URL.fullmatch(path)
        is_websocket_url = path == "/websocket" or (
            match is not None and match.group(3) == "websocket"
        )
        if not is_websocket_url or not self.websocket:
            return Response(404)
        # sockjs-protocol answers these itself: 405 without a body, and 400 when a proxy
        # rewrote the Connection header.
        if request.method != "GET":
            return Response(405, [("Allow", "GET")])
        if not _has_token(request, "Connection", "upgrade"):
            return Response(400, [_TEXT], b'"Connection" must be "Upgrade".')
        return None

    async def handle_websocket(self, session: Session, path: str) -> None:
        """Serve a raw WebSocket (``/websocket``) or a SockJS one (``.../websocket``)."""
        await self._serve_websocket(session, path == "/websocket")

    async def _serve_websocket(self, session: Session, is_raw: bool) -> None:
        if is_raw:
            await self._serve(session)
            return
        sockjs = SockJSWebSocketSession(session, heartbeat_s=self.heartbeat_s)
        await sockjs.open()
        try:
            await self._serve(sockjs)
        finally:
            await sockjs.stop()


def _settle(gone: asyncio.Future[None]) -> None:
    if not gone.done():
        gone.set_result(None)


async def _pull(session: SockJSSession, gone: asyncio.Future[None]) -> str | None:
    """The session's next frame, or None (and the session interrupted) if the client left."""
    pull = asyncio.ensure_future(session.pull())
    waited: set[asyncio.Future[Any]] = {pull, gone}
    await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    if pull.done():
        return pull.result()
    pull.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pull
    session.interrupt()
    return None


async def _answer_once(
    exchange: HTTPExchange, receiver: _Receiver, headers: list[tuple[str, str]], frame: str
) -> None:
    if receiver.is_streaming:
        await exchange.start(200, headers)
        await exchange.write(receiver.prelude)
        await exchange.write(receiver.wrap(frame))
        await exchange.end()
    else:
        await exchange.respond(200, headers, receiver.wrap(frame))


def _close_frame(session: SockJSSession) -> str:
    return codec.close_frame(session.close_code or 1000, session.close_reason)


async def _preflight(exchange: HTTPExchange, methods: str) -> None:
    headers = [
        *_cached(),
        ("Access-Control-Max-Age", str(_YEAR_S)),
        ("Access-Control-Allow-Methods", methods),
        *_cors(exchange.request),
    ]
    await exchange.respond(204, headers, b"")


async def _method_not_allowed(exchange: HTTPExchange, methods: str) -> None:
    await exchange.respond(405, [("Allow", methods)], b"")


def _cached() -> list[tuple[str, str]]:
    expires = formatdate(time.time() + _YEAR_S, usegmt=True)
    return [("Cache-Control", f"public, max-age={_YEAR_S}"), ("Expires", expires)]


def _cors(request: Request) -> Iterable[tuple[str, str]]:
    origin = request.headers.get("Origin")
    # With credentials (JSESSIONID) a browser accepts only its own origin echoed, never "*".
    if origin:
        yield ("Access-Control-Allow-Origin", origin)
        yield ("Access-Control-Allow-Credentials", "true")
    else:
        yield ("Access-Control-Allow-Origin", "*")
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested:
        yield ("Access-Control-Allow-Headers", requested)


def _cookie(request: Request, name: str) -> str | None:
    for header in request.headers.get_all("Cookie"):
        for pair in header.split(";"):
            key, _, value = pair.strip().partition("=")
            if key == name and value:
                return value
    return None


def _has_token(request: Request, name: str, token: str) -> bool:
    values = ",".join(request.headers.get_all(name)).lower()
    return token in (item.strip() for item in values.split(","))


def _query(request: Request) -> str:
    return request.path.partition("?")[2]


def _prefix(request: Request, path: str) -> str:
    target = request.path.partition("?")[0]
    return target[: len(target) - len(path)] if path else target.rstrip("/")
