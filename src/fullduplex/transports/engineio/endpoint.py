"""`EngineIOEndpoint`: an Engine.IO v4 server, mounted at a path prefix like any `Endpoint`.

Mount it at ``/engine.io`` (or ``/socket.io`` under the Socket.IO server) with a handler::

    async def echo(session: EngineIOSession) -> None:
        async for message in session:
            await session.send(message)

    endpoint = EngineIOEndpoint(echo, ping_interval_ms=300, ping_timeout_ms=200, cors="*")

Every request is checked the way the reference server (engine.io 6) checks it, in this order,
and refused with its status and JSON body (`ServerError`):

1. ``transport`` is not one of ``transports``: 400 ``{"code":0,"message":"Transport
   unknown"}``; ``websocket`` in a plain HTTP request, or ``polling`` in an upgrade: 400 code 3;
2. an ``Origin`` outside a ``cors`` list: 403 ``{"code":4,"message":"Forbidden"}``;
3. with a ``sid``: unknown (never issued, or ended): 400 code 1; a poll or POST on a session
   that upgraded to WebSocket: 400 code 3 (``Bad request``);
4. without one (a handshake): a method other than GET: 400 code 2 (``Bad handshake method``);
   ``EIO`` other than ``4``: 400 code 5 (``Unsupported protocol version``); ``allow_request``
   says no: 403 code 4.

Beyond those: a path below the mount point gets 404; with ``cors`` set, OPTIONS gets the
preflight's 204; a POST body above ``max_payload_bytes`` gets 413 and ends the session; an
invalid payload, a second concurrent poll or POST get 400 code 3 and end it.

Its WebSockets run without permessage-deflate by default, as engine.io's
(``perMessageDeflate: false``): the endpoint declares ``compression=None``
(`websocket_options`), which `fullduplex.serve` applies to its mount whatever the server's
default; ``per_message_deflate=True`` turns it back on. Node's ``ws`` client compresses and
decompresses on a thread pool, so with deflate its frames can reach the server after an HTTP
request it made later, and it can see a close on one connection before a message that arrived
first on another: the engine.io suite's test "ignores WebSocket connection with same sid after
upgrade" then fails now and then. Under uvicorn the server negotiates compression itself: run
it with ``ws_per_message_deflate=False`` (its default is True).

A WebSocket naming the sid of a session that is upgrading or has upgraded already is accepted
and closed at once, as engine.io does (a refused handshake would be an error event in the
client, a close is what its suite waits for).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import MappingProxyType
from urllib.parse import unquote

from ...exceptions import ConnectionClosed
from ...io.asyncio.native_exchange import NativeExchange
from ...io.options import OptionOverrides
from ...protocol.http11 import Request, Response
from ..base import Endpoint, HTTPExchange, Session
from .codec import Packet, ServerError, encode_packet, encode_payload, open_packet
from .session import (
    POLLING,
    TEXT_HEADERS,
    WEBSOCKET,
    EngineIOSession,
    Fields,
    SessionOptions,
    _Answer,
    _refusal,
)

__all__ = ["EngineIOEndpoint", "SessionHandler", "AllowRequest"]

SessionHandler = Callable[[EngineIOSession], Awaitable[None]]
"""``async def handler(session)``: serves one session; it is closed when this returns."""

AllowRequest = Callable[[Request], bool]
"""``allow_request(request) -> bool``: False refuses a handshake with 403 (code 4)."""

logger = logging.getLogger(__name__)

# 15 random bytes, like engine.io's base64id: 20 URL-safe characters, 120 bits nobody guesses.
SID_BYTES = 15


class EngineIOEndpoint(Endpoint):
    """Engine.IO v4 over HTTP long-polling and WebSocket, with the upgrade between them.

    Args:
        handler: ``async def handler(session)``, run once per session (an `EngineIOSession`);
            the session is closed when it returns, or with 1011 when it raises.
        ping_interval_ms: how often the server pings, advertised as ``pingInterval``. Any
            value, sub-second ones included, is advertised exactly.
        ping_timeout_ms: how long a PONG may take before the session ends.
        max_payload_bytes: the largest POST body or WebSocket message accepted, advertised as
            ``maxPayload`` (engine.io's ``maxHttpBufferSize``); above it the session ends.
        upgrade_timeout_ms: how long an upgrade may take from the WebSocket's opening to the
            UPGRADE packet.
        max_queue_messages: per session and direction, how many messages wait at most; `send`
            waits (the sender is slower than the client), or the client's next packets wait.
        transports: the transports allowed, ``"polling"`` and/or ``"websocket"``.
        cors: ``"*"``, or a collection of allowed origins (``"https://example.com"``), or
            None (no CORS headers, every origin accepted). With a collection, a request from
            another origin is refused with 403.
        cors_credentials: send ``Access-Control-Allow-Credentials: true`` (the origin is then
            echoed back, even for ``"*"``, since browsers refuse ``*`` with credentials).
        allow_request: called at each handshake with the request; False refuses it (403).
        per_message_deflate: negotiate permessage-deflate on this endpoint's WebSockets
            (engine.io's ``perMessageDeflate``); off by default, see above.
    """

    __slots__ = (
        "_handler",
        "_options",
        "_transports",
        "_cors",
        "_cors_credentials",
        "_allow_request",
        "_per_message_deflate",
        "_sessions",
        "_handler_tasks",
    )

    def __init__(
        self,
        handler: SessionHandler,
        *,
        ping_interval_ms: int = 25_000,
        ping_timeout_ms: int = 20_000,
        max_payload_bytes: int = 1_000_000,
        upgrade_timeout_ms: int = 10_000,
        max_queue_messages: int = 1024,
        transports: Collection[str] = (POLLING, WEBSOCKET),
        cors: str | Collection[str] | None = None,
        cors_credentials: bool = False,
        allow_request: AllowRequest | None = None,
        per_message_deflate: bool = False,
    ) -> None:
        unknown = set(transports) - {POLLING, WEBSOCKET}
        if unknown or not transports:
            raise ValueError(f"transports must be 'polling' and/or 'websocket', not {transports}")
        if min(ping_interval_ms, ping_timeout_ms, max_payload_bytes, max_queue_messages) <= 0:
            raise ValueError("intervals, timeouts and limits must be positive")
        self._handler = handler
        self._options = SessionOptions(
            ping_interval_ms=ping_interval_ms,
            ping_timeout_ms=ping_timeout_ms,
            max_payload_bytes=max_payload_bytes,
            upgrade_timeout_ms=upgrade_timeout_ms,
            max_queue_messages=max_queue_messages,
        )
        self._transports = frozenset(transports)
        self._cors: str | frozenset[str] | None = (
            cors if cors is None or cors == "*" else frozenset(cors)
        )
        self._cors_credentials = cors_credentials
        self._allow_request = allow_request
        self._per_message_deflate = per_message_deflate
        self._sessions: dict[str, EngineIOSession] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()

    @property
    def sessions(self) -> Mapping[str, EngineIOSession]:
        """The open sessions by sid (a read-only view)."""
        return MappingProxyType(self._sessions)

    @property
    def options(self) -> SessionOptions:
        """The settings every session of this endpoint uses."""
        return self._options

    async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
        """Answer a handshake, a poll (GET), a POST, or a CORS preflight (OPTIONS)."""
        routed = self._route(exchange, path)
        if isinstance(routed, _Answer):
            await exchange.respond(*routed)
            return
        session, headers = routed
        if exchange.request.method == "GET":
            await session._serve_poll(exchange, headers)
        else:
            await session._serve_post(exchange, headers)

    def handle_http_nowait(self, exchange: NativeExchange, path: str) -> bool:
        """`handle_http` with no coroutine: all but a POST whose body is still arriving or
        whose messages may have to wait for room in the inbox (False: `handle_http` then)."""
        routed = self._route(exchange, path)
        if isinstance(routed, _Answer):
            exchange.respond_nowait(*routed)
            return True
        session, headers = routed
        if exchange.request.method == "GET":
            session._serve_poll_nowait(exchange, headers)
            return True
        return session._serve_post_nowait(exchange, headers)

    def refuse_websocket(self, request: Request, path: str) -> Response | None:
        """Refuse an upgrade request that `handle_http` would refuse, with the same answer."""
        headers = self._cors_headers(request)
        if path not in ("", "/"):
            return Response(404, TEXT_HEADERS, b"not found")
        error = self._check(request, _query(request), WEBSOCKET)
        if error is None:
            return None
        return Response(
            error.http_status, [("Content-Type", "application/json"), *headers], error.body
        )

    def websocket_options(self, request: Request, path: str) -> OptionOverrides:
        """No permessage-deflate, unless ``per_message_deflate`` is set."""
        return {} if self._per_message_deflate else {"compression": None}

    async def handle_websocket(self, session: Session, path: str) -> None:
        """Run a session over this WebSocket: a new one, or the upgrade of a polling one."""
        sid = _query(session.request).get("sid")
        if sid is None:
            await self._open_websocket(session)
            return
        existing = self._sessions.get(sid)
        if existing is None:
            # It ended between the handshake's check and now.
            await session.close(1008, "Session ID unknown")
            return
        await existing._serve_upgrade(session)

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """End every session now (1001, ``server shutting down``) and wait for the handlers.

        Held polls get CLOSE and WebSockets are closed; nothing queued is sent any more.
        Handlers see `ConnectionClosed`; those still running after ``timeout_s`` are cancelled.
        """
        for session in list(self._sessions.values()):
            session._end(1001, "server shutting down")
        tasks = list(self._handler_tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # --- inside ---

    def _check(self, request: Request, query: dict[str, str], transport: str) -> ServerError | None:
        """Return why ``request`` is refused (the reference server's order), or None."""
        requested = query.get("transport")
        if requested not in self._transports:
            return ServerError.UNKNOWN_TRANSPORT
        if requested != transport:
            # A WebSocket is only reached by an upgrade, polling only by plain HTTP.
            return ServerError.BAD_REQUEST
        if isinstance(self._cors, frozenset):
            origin = request.headers.get("Origin")
            if origin is not None and origin not in self._cors:
                return ServerError.FORBIDDEN
        sid = query.get("sid")
        if sid is not None:
            session = self._sessions.get(sid)
            if session is None or session._has_timed_out():
                return ServerError.UNKNOWN_SID
            if transport == POLLING and session.transport == WEBSOCKET:
                return ServerError.BAD_REQUEST
            return None
        if request.method != "GET":
            return ServerError.BAD_HANDSHAKE_METHOD
        if query.get("EIO") != "4":
            return ServerError.UNSUPPORTED_PROTOCOL_VERSION
        if self._allow_request is not None and not self._allow_request(request):
            return ServerError.FORBIDDEN
        return None

    def _cors_headers(self, request: Request) -> Fields:
        cors = self._cors
        if cors is None:
            return ()
        origin = request.headers.get("Origin")
        if cors == "*" and not self._cors_credentials:
            return (("Access-Control-Allow-Origin", "*"),)
        if origin is None or (isinstance(cors, frozenset) and origin not in cors):
            return ()
        headers: Fields = (("Access-Control-Allow-Origin", origin), ("Vary", "Origin"))
        if self._cors_credentials:
            headers += (("Access-Control-Allow-Credentials", "true"),)
        return headers

    def _preflight_headers(self, request: Request) -> list[tuple[str, str]]:
        headers = [("Access-Control-Allow-Methods", "GET, POST, OPTIONS")]
        asked = request.headers.get("Access-Control-Request-Headers")
        if asked:
            headers.append(("Access-Control-Allow-Headers", asked))
        return headers

    def _new_session(
        self, request: Request, remote_address: object, transport: str
    ) -> EngineIOSession:
        sid = secrets.token_urlsafe(SID_BYTES)
        session = EngineIOSession(
            sid, request, remote_address, transport, self._options, self._forget
        )
        self._sessions[sid] = session
        return session

    def _open_packet(self, session: EngineIOSession, upgrades: list[str]) -> Packet:
        options = self._options
        return open_packet(
            session.sid,
            upgrades,
            options.ping_interval_ms,
            options.ping_timeout_ms,
            options.max_payload_bytes,
        )

    def _route(self, exchange: HTTPExchange, path: str) -> _Answer | tuple[EngineIOSession, Fields]:
        """The answer to a request that no session takes (a handshake opens one), or the
        session whose poll or POST it is, with the CORS fields for its answer."""
        request = exchange.request
        headers = self._cors_headers(request)
        if path not in ("", "/"):
            return _Answer(404, TEXT_HEADERS, b"not found")
        method = request.method
        if method == "OPTIONS" and self._cors is not None:
            return _Answer(204, [*headers, *self._preflight_headers(request)])
        query = _query(request)
        error = self._check(request, query, POLLING)
        if error is not None:
            return _refusal(headers, error)
        sid = query.get("sid")
        if sid is None:
            return self._open_polling(exchange, headers)
        if method != "GET" and method != "POST":
            return _refusal(headers, ServerError.BAD_REQUEST)
        return self._sessions[sid], headers

    def _open_polling(self, exchange: HTTPExchange, headers: Fields) -> _Answer:
        session = self._new_session(exchange.request, exchange.remote_address, POLLING)
        upgrades = [WEBSOCKET] if WEBSOCKET in self._transports else []
        opening = encode_payload((self._open_packet(session, upgrades),))
        session._start()
        self._run_handler(session)
        return _Answer(200, TEXT_HEADERS + headers, opening)

    async def _open_websocket(self, websocket: Session) -> None:
        session = self._new_session(websocket.request, websocket.remote_address, WEBSOCKET)
        try:
            await websocket.send(encode_packet(self._open_packet(session, [])))
        except ConnectionClosed:
            session._end(1006, "transport close")
            return
        session._start()
        self._run_handler(session)
        await session._serve_websocket(websocket)

    def _run_handler(self, session: EngineIOSession) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(session))
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    async def _serve(self, session: EngineIOSession) -> None:
        try:
            await self._handler(session)
        except Exception:
            logger.exception("Engine.IO handler failed (sid %s)", session.sid)
            await session.close(1011, "handler error")
        else:
            await session.close()

    def _forget(self, session: EngineIOSession) -> None:
        if self._sessions.get(session.sid) is session:
            del self._sessions[session.sid]


def _query(request: Request) -> dict[str, str]:
    """The request target's query parameters, the first value of each.

    What ``parse_qsl(urlsplit(target).query, keep_blank_values=True)`` gives, in a quarter of
    its time (every poll and POST parses one): ``&``-separated, ``+`` is a space, percent-
    escapes are decoded as UTF-8, a name without ``=`` has an empty value.
    """
    target = request.path
    start = target.find("?")
    if start < 0:
        return {}
    end = target.find("#", start)
    query: dict[str, str] = {}
    for field in target[start + 1 : end if end >= 0 else None].split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "%" in field or "+" in field:
            name = unquote(name.replace("+", " "))
            value = unquote(value.replace("+", " "))
        if name not in query:
            query[name] = value
    return query
