"""uvicorn's WebSocket implementation on fullduplex's sans-I/O core.

Run any ASGI application (FastAPI, Starlette...) with it::

    uvicorn app:app --ws fullduplex.asgi:WebSocketProtocol

Theory of operation
-------------------
uvicorn's HTTP protocol (h11 or httptools) parses a request, sees ``Upgrade: websocket``,
creates this class with ``config``, ``server_state`` and ``app_state``, hands it the
transport (``connection_made``, ``transport.set_protocol``) and feeds it the request head
again as bytes (``data_received``). From then on, bytes go into `ServerProtocol` and its
events come out; this class only translates them to ASGI messages and back, and owns the
timers (keepalive, closing handshake). The ASGI side moves through these states::

    HANDSHAKE --websocket.accept--------------------> OPEN --websocket.close--> APP_CLOSED
        |  \\--websocket.http.response.start--> RESPONDING --last body--------------^
        \\--websocket.close (403), app error (500)----------------------------------^
    OPEN --client's close frame, protocol error, keepalive timeout, shutdown--> PEER_CLOSED

After APP_CLOSED, any message from the app is an error; after PEER_CLOSED, ``websocket.send``
raises `ClientDisconnected` and ``websocket.close`` does nothing.

Received messages wait in a queue for ``receive()``; the first goes straight to an app
that is already waiting. Reading pauses as soon as a message waits that the app was not
ready for (an app busy elsewhere), or when ``ws_max_queue`` messages wait, and resumes when
the app has taken them all: the peer's TCP window then pushes back, as in uvicorn's other
implementations. ``send()`` waits while the transport's write buffer is full.

Sends are written as the core's connections write them (`fullduplex.io.asyncio.writes`),
with the same per-loop turn counter: the app's first send of a loop turn is written at once
when it has no received message left to handle; later sends of the turn, and the replies to a
burst of pipelined messages, are gathered and written together at the turn's end (or once
``_WRITE_THRESHOLD`` bytes wait), in one system call instead of one each.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, cast
from urllib.parse import unquote

from ..exceptions import FullDuplexError, InvalidRequest, InvalidState
from ..io.asyncio.writes import LoopTurns
from ..protocol.events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    PongReceived,
    RequestReceived,
    TextReceived,
)
from ..protocol.extensions.permessage_deflate import ServerPerMessageDeflate
from ..protocol.frames import CloseCode
from ..protocol.handshake import ServerNegotiation, build_error_response, check_request
from ..protocol.http11 import Request, Response
from ..protocol.server import ServerProtocol

__all__ = ["WebSocketProtocol", "ClientDisconnected"]

logger = logging.getLogger("uvicorn.error")

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[ASGIMessage]], Callable[[ASGIMessage], Awaitable[None]]],
    Awaitable[Any],
]


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the client is gone (ASGI spec: a subclass of `OSError`)."""


# The ASGI side's states (see the module docstring).
_HANDSHAKE, _OPEN, _RESPONDING, _APP_CLOSED, _PEER_CLOSED = range(5)

# One negotiation per setting, shared by every connection: it holds no per-connection state.
# The extension's defaults accept every offer a client may make (Autobahn's 13.* try them all)
# and compress with a 12-bit window whatever the offer allows, as uvicorn's websockets
# implementation does, so that a compressing connection keeps a small compressor.
_NEGOTIATION_DEFLATE = ServerNegotiation(extensions=[ServerPerMessageDeflate()])
_NEGOTIATION_PLAIN = ServerNegotiation()

_INTERNAL_ERROR_BODY = b"Internal Server Error"
_WRITE_THRESHOLD = 64 * 1024  # gathered replies beyond this are written without waiting


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection under uvicorn, speaking ASGI's WebSocket protocol.

    uvicorn creates it for each upgrade request when started with
    ``--ws fullduplex.asgi:WebSocketProtocol`` (or ``uvicorn.run(..., ws=WebSocketProtocol)``);
    applications never create it. It honours ``ws_max_size`` (largest message, 1009 beyond),
    ``ws_max_queue``, ``ws_ping_interval``, ``ws_ping_timeout`` and
    ``ws_per_message_deflate`` from uvicorn's config, and supports the
    ``websocket.http.response`` extension (denial responses).

    Args:
        config: uvicorn's ``Config`` (loaded).
        server_state: uvicorn's ``ServerState``: the connections and tasks it tracks, and
            its default response headers.
        app_state: the lifespan state, copied into each scope's ``state``.
    """

    __slots__ = (
        "app",
        "loop",
        "root_path",
        "app_state",
        "connections",
        "tasks",
        "default_headers",
        "max_queue",
        "ping_interval",
        "ping_timeout",
        "close_timeout",
        "transport",
        "conn",
        "scope",
        "server",
        "client",
        "scheme",
        "close_timer",
        "ping_timer",
        "pong_timer",
        "ping_sent_at",
        "_ping_payload",
        "_state",
        "_accepted",
        "_disconnected",
        "_messages",
        "_waiter",
        "_read_paused",
        "_write_paused",
        "_write_waiter",
        "_flush_scheduled",
        "_unflushed",
        "_turns",
        "_direct_write_turn",
        "_is_replying",
        "_response",
        "_response_chunked",
    )

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.app: ASGIApp = config.loaded_app
        self.loop = _loop or asyncio.get_running_loop()
        self.root_path: str = config.root_path
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers
        self.max_queue: int = config.ws_max_queue
        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout
        self.close_timeout = 10.0
        """Seconds to wait for the client's close frame after sending ours."""
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)
        self.conn = ServerProtocol(
            _NEGOTIATION_DEFLATE if config.ws_per_message_deflate else _NEGOTIATION_PLAIN,
            max_message_size=config.ws_max_size,
        )
        self.scope: Scope = {}
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "ws"
        self.close_timer: asyncio.TimerHandle | None = None
        """Armed while waiting for the client's answer to our close frame."""
        self.ping_timer: asyncio.TimerHandle | None = None
        """The next keepalive ping; None when keepalive is off."""
        self.pong_timer: asyncio.TimerHandle | None = None
        self.ping_sent_at = 0.0
        """Event-loop time of the last keepalive ping (0.0: none yet)."""
        self._ping_payload: bytes | None = None
        self._state = _HANDSHAKE
        self._accepted = False
        self._disconnected = False
        # Created with the first message that must wait: most connections never need one.
        self._messages: collections.deque[ASGIMessage] | None = None
        self._waiter: asyncio.Future[ASGIMessage] | None = None
        self._read_paused = False
        self._write_paused = False
        self._write_waiter: asyncio.Future[None] | None = None
        # Whether a write at the turn's end is scheduled, the bytes it will write, the loop's
        # turn counter, the turn of this connection's last direct write, and whether the app
        # took a message and has not waited for the next since (see the module docstring).
        self._flush_scheduled = False
        self._unflushed = 0
        self._turns = LoopTurns.of(self.loop)
        self._direct_write_turn = -1
        self._is_replying = False
        # A denial response: (status, headers) until its head is written, then None.
        self._response: tuple[int, list[tuple[str, str]]] | None = None
        self._response_chunked = False

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Take the transport uvicorn hands over after the upgrade request."""
        # A cast, not an isinstance check: uvloop's transports don't subclass asyncio's.
        self.transport = transport = cast(asyncio.Transport, transport)
        self.connections.add(self)
        self.server = _local_address(transport)
        self.client = _remote_address(transport)
        self.scheme = "wss" if transport.get_extra_info("sslcontext") else "ws"

    def data_received(self, data: bytes) -> None:
        """Feed bytes to the protocol and act on its events."""
        conn = self.conn
        conn.receive_data(data)
        delivered = False
        # Data messages make the protocol queue nothing; any other event may (a pong, the
        # close frame's echo, an error response), and then the output is written below.
        acted = False
        for event in conn.events_received():
            kind = type(event)
            if kind is TextReceived or kind is BinaryReceived:
                if self._state == _OPEN:
                    key = "text" if kind is TextReceived else "bytes"
                    # event[0]: the message's data (`typing.cast` would cost a call).
                    delivered |= self._deliver({"type": "websocket.receive", key: event[0]})
                continue
            acted = True
            if kind is PongReceived:
                self._pong_received(cast(PongReceived, event).data)
            elif kind is CloseReceived:
                self._close_received(cast(CloseReceived, event))
            elif kind is RequestReceived:
                self._request_received(cast(RequestReceived, event).request)
            elif kind is ConnectionFailed:
                self._failed(cast(ConnectionFailed, event).error)
            # PingReceived: the protocol has queued the pong already.
        if acted or conn.should_close_transport:
            self._flush()
        messages = self._messages
        if (
            messages
            and not self._read_paused
            and self._state == _OPEN
            and (not delivered or len(messages) >= self.max_queue)
        ):
            # The app is busy elsewhere, or far behind: let TCP push back on the client.
            self._read_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        """Let the transport close; `connection_lost` reports it."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Report the disconnection to the app and release everything waiting."""
        self._stop_keepalive()
        # 1005: no close code was received; 1006: the connection never became a WebSocket.
        code = 1005 if self._accepted else 1006
        self._deliver({"type": "websocket.disconnect", "code": code})
        self.connections.discard(self)
        self._disconnected = True
        if self._state != _APP_CLOSED:
            self._state = _PEER_CLOSED
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if exc is None:
            self.transport.close()

    def pause_writing(self) -> None:
        """The transport's write buffer is full: make ``send()`` wait."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The write buffer drained: let ``send()`` go on."""
        self._write_paused = False
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- uvicorn's server ------------------------------------------------------------------

    def shutdown(self) -> None:
        """The server stops: close open connections with 1012 (Service Restart)."""
        self._stop_keepalive()
        if self._state == _OPEN:
            self._state = _PEER_CLOSED
            self._deliver({"type": "websocket.disconnect", "code": CloseCode.SERVICE_RESTART})
            self.conn.send_close(CloseCode.SERVICE_RESTART)
        elif self._state == _HANDSHAKE:
            self._send_500_response()
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        self._close_transport()

    # --- the ASGI application --------------------------------------------------------------

    async def receive(self) -> ASGIMessage:
        """ASGI ``receive``: the next message for the app."""
        messages = self._messages
        if not messages:
            # Only a later loop turn can bring the next message: this turn's sends are over.
            self._direct_write_turn = -1
            self._is_replying = False
            waiter: asyncio.Future[ASGIMessage] = self.loop.create_future()
            self._waiter = waiter
            try:
                message = await waiter
            finally:
                self._waiter = None
            self._is_replying = True
            return message
        self._is_replying = True
        message = messages.popleft()
        if self._read_paused and not messages:
            self._read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: ASGIMessage) -> None:
        """ASGI ``send``: act on one message from the app.

        Raises:
            ClientDisconnected: the client is gone.
            RuntimeError: the message is not allowed in the connection's state.
        """
        while self._write_paused and not self._disconnected:
            if self._write_waiter is None or self._write_waiter.done():
                self._write_waiter = self.loop.create_future()
            await self._write_waiter
        if self._disconnected:
            raise ClientDisconnected()
        kind = message["type"]
        state = self._state
        if state == _OPEN:
            if kind == "websocket.send":
                # The hot path, inline: one message of the app's.
                data = message.get("bytes")
                try:
                    if data is not None:
                        self.conn.send_binary(data)
                    else:
                        data = message.get("text")
                        if data is None:
                            raise RuntimeError("'websocket.send' needs 'bytes' or 'text'")
                        self.conn.send_text(data)
                except InvalidState:
                    raise ClientDisconnected() from None
                self._queued(len(data))
            elif kind == "websocket.close":
                self._app_close(message.get("code", 1000), message.get("reason") or "")
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.send' or 'websocket.close', "
                    f"but got {kind!r}."
                )
        elif state == _HANDSHAKE:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._deny()
            elif kind == "websocket.http.response.start":
                self._start_response(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start' but got {kind!r}."
                )
        elif state == _RESPONDING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.http.response.body' but got {kind!r}."
                )
            self._send_response_body(message)
        elif state == _PEER_CLOSED:
            if kind == "websocket.send":
                raise ClientDisconnected()
            # websocket.close: the connection is closed or closing already.
        else:
            raise RuntimeError(
                f"Unexpected ASGI message {kind!r}, after sending 'websocket.close'."
            )

    async def run_asgi(self) -> None:
        """Run the application for this connection; answer 500 if it fails before the
        handshake, and close the connection when it returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            logger.exception("Exception in ASGI application\n")
            self._send_500_response()
        else:
            if self._state == _HANDSHAKE:
                logger.error("ASGI callable returned without completing handshake.")
                self._send_500_response()
            elif result is not None:
                logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self._state == _RESPONDING:
            self._finish_response(b"")
        if self.close_timer is None:
            # An app that returns without closing: the connection ends at once (1006).
            self._close_transport()

    # --- handshake -------------------------------------------------------------------------

    def _request_received(self, request: Request) -> None:
        try:
            check_request(request, self.conn.negotiation)
        except InvalidRequest as exc:
            self._state = _PEER_CLOSED
            self.conn.respond(build_error_response(exc))
            self._close_transport()
            return
        self.scope = self._build_scope(request)
        self._deliver({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _build_scope(self, request: Request) -> Scope:
        raw_path, _, query = request.path.partition("?")
        subprotocols = [
            token.strip()
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for token in value.split(",")
            if token.strip()
        ]
        root_path = self.root_path
        return {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": root_path,
            "path": root_path + unquote(raw_path),
            "raw_path": (root_path + raw_path).encode("ascii"),
            "query_string": query.encode("ascii"),
            # ASGI: names lowercased; values as received (latin-1 keeps every byte).
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in request.headers
            ],
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }

    def _accept(self, message: ASGIMessage) -> None:
        self._log_outcome("[accepted]")
        headers = _text_headers([*self.default_headers, *message.get("headers", ())])
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        if self.transport.is_closing():
            return
        response = self.conn.accept(headers)
        if response.status != 101:  # the extension offer could not be parsed
            self._state = _PEER_CLOSED
            self._close_transport()
            return
        self._state = _OPEN
        self._accepted = True
        self._flush()
        if self.ping_interval:
            self._schedule_ping()

    def _deny(self) -> None:
        """``websocket.close`` before ``accept``: 403, as ASGI asks."""
        self._log_outcome("403")
        self._deliver({"type": "websocket.disconnect", "code": 1006})
        self._state = _APP_CLOSED
        self.conn.respond(Response(403, _text_headers(self.default_headers)))
        self._close_transport()

    def _start_response(self, message: ASGIMessage) -> None:
        status = message["status"]
        if not 100 <= status < 600:
            raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
        self._log_outcome(str(status))
        headers = _text_headers([*self.default_headers, *message.get("headers", ())])
        self._response = (status, headers)
        self._state = _RESPONDING

    def _send_response_body(self, message: ASGIMessage) -> None:
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            self._write_response_head(streaming=True)
            if body:
                self._write_body(body)
        else:
            self._finish_response(body)

    def _finish_response(self, body: bytes) -> None:
        if self._response is not None:
            self._write_response_head(streaming=False, body=body)
        elif body:
            self._write_body(body)
        if self._response_chunked:
            self._write_body(b"")  # the last chunk
        self._state = _APP_CLOSED
        self._deliver({"type": "websocket.disconnect", "code": 1006})
        self._close_transport()

    def _write_response_head(self, *, streaming: bool, body: bytes = b"") -> None:
        if self._response is None:
            return
        status, headers = self._response
        self._response = None
        names = {name.lower() for name, _ in headers}
        if streaming and "content-length" not in names:
            # RFC 9112 §7.1: without a length, the body goes in chunks.
            headers.append(("Transfer-Encoding", "chunked"))
            self._response_chunked = True
        self.conn.respond(Response(status, headers, body))
        # Not `_flush`, which would close the transport that the rest of the body needs.
        head = b"".join(self.conn.data_to_send())
        if not self.transport.is_closing():
            self.transport.write(head)

    def _write_body(self, body: bytes) -> None:
        """Write part of a denial response's body; b"" ends a chunked one."""
        if self._response_chunked:
            body = _chunk(body) if body else b"0\r\n\r\n"
        if body and not self.transport.is_closing():
            self.transport.write(body)

    def _send_500_response(self) -> None:
        if self._state != _HANDSHAKE:
            return  # the response, or the upgrade, has begun: too late to answer 500
        self._state = _APP_CLOSED
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")]
        self.conn.respond(Response(500, headers, _INTERNAL_ERROR_BODY))
        self._flush()

    def _log_outcome(self, outcome: str) -> None:
        if logger.isEnabledFor(logging.INFO):
            scope = self.scope
            client = scope.get("client")
            target = scope["raw_path"].decode("latin-1")
            if scope["query_string"]:
                target += "?" + scope["query_string"].decode("ascii")
            peer = f"{client[0]}:{client[1]}" if client else ""
            logger.info('%s - "WebSocket %s" %s', peer, target.replace('"', "%22"), outcome)

    # --- messages --------------------------------------------------------------------------

    def _deliver(self, message: ASGIMessage) -> bool:
        """Hand ``message`` to a waiting app, or queue it; True if the app took it."""
        waiter = self._waiter
        if waiter is not None and not self._messages and not waiter.done():
            waiter.set_result(message)
            self._waiter = None
            return True
        if self._messages is None:
            self._messages = collections.deque()
        self._messages.append(message)
        return False

    def _app_close(self, code: int, reason: str) -> None:
        if self.transport.is_closing():
            return
        self.conn.send_close(code, reason)
        self._state = _APP_CLOSED
        self._stop_keepalive()
        self._deliver({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._flush()
        if self._read_paused:
            # The client's close frame may sit behind messages nobody will read now.
            self._read_paused = False
            self.transport.resume_reading()
        if not self.conn.should_close_transport:
            self.close_timer = self.loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_received(self, event: CloseReceived) -> None:
        if self._state != _OPEN:
            # Our close frame was answered: the closing handshake is complete.
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            return
        self._state = _PEER_CLOSED
        self._stop_keepalive()
        self._deliver({"type": "websocket.disconnect", "code": event.code, "reason": event.reason})

    def _failed(self, error: FullDuplexError) -> None:
        """The client broke the protocol (or sent an invalid upgrade request)."""
        logger.debug("WebSocket connection failed: %s", error)
        if self._state != _OPEN:
            return  # a bad request head: the protocol queued the error response
        self._state = _PEER_CLOSED
        self._stop_keepalive()
        code, reason = self.conn.close_sent or (CloseCode.PROTOCOL_ERROR, "")
        self._deliver({"type": "websocket.disconnect", "code": code, "reason": reason})
        if not self.conn.should_close_transport and self.close_timer is None:
            # Wait for the client's close frame, reading on so that it can arrive.
            self.close_timer = self.loop.call_later(self.close_timeout, self._close_timed_out)
            if self._read_paused:
                self._read_paused = False
                self.transport.resume_reading()

    def _close_timed_out(self) -> None:
        self.close_timer = None
        self.transport.close()

    # --- output ----------------------------------------------------------------------------

    def _queued(self, nbytes: int) -> None:
        """The protocol queued a message of ``nbytes``: write it now or at the turn's end,
        as `WriteBatching._queued` decides for the core's connections."""
        self._unflushed += nbytes
        if self._unflushed >= _WRITE_THRESHOLD:
            self._flush()
        elif self._flush_scheduled:
            return  # goes out with the write already due
        elif self._direct_write_turn != (turns := self._turns).number and not self._messages:
            self._direct_write_turn = turns.number
            # The app's reply between two `receive` calls needs no count: its next `receive`
            # ends this connection's turn.
            if not turns.is_counting and not self._is_replying:
                turns.count()
            self._flush()
        else:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._direct_write_turn = -1
        self._flush()

    def _flush(self) -> None:
        """Write what the protocol queued; close the transport when it asks."""
        conn = self.conn
        output = conn.data_to_send()
        self._unflushed = 0
        transport = self.transport
        if output:
            if transport.is_closing():
                return
            # One buffer: a frame's header and payload come as two, and a copy of a small
            # payload costs less than a scatter write (uvicorn's tests' transport has no
            # writelines either).
            transport.write(output[0] if len(output) == 1 else b"".join(output))
        if conn.should_close_transport and not transport.is_closing():
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            transport.close()

    def _close_transport(self) -> None:
        self._flush()
        self.transport.close()

    # --- keepalive -------------------------------------------------------------------------

    def _schedule_ping(self) -> None:
        assert self.ping_interval is not None
        self.ping_timer = self.loop.call_later(self.ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        self.ping_timer = None
        if self._state != _OPEN or self.transport.is_closing():
            return
        self._ping_payload = payload = os.urandom(4)
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(payload)
        self._flush()
        if self.ping_timeout is not None:
            self.pong_timer = self.loop.call_later(self.ping_timeout, self._keepalive_timed_out)
        else:
            self._schedule_ping()

    def _pong_received(self, payload: bytes) -> None:
        if payload != self._ping_payload:
            return  # unsolicited, or an answer to an older ping
        self._ping_payload = None
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
            self._schedule_ping()

    def _keepalive_timed_out(self) -> None:
        self.pong_timer = None
        self._ping_payload = None
        if self._state != _OPEN or self.transport.is_closing():
            return
        # RFC 6455 §7.4.1: 1011, the server met a condition that prevents it from going on.
        reason = "keepalive ping timeout"
        self._state = _PEER_CLOSED
        self.conn.send_close(CloseCode.INTERNAL_ERROR, reason)
        self._deliver(
            {"type": "websocket.disconnect", "code": CloseCode.INTERNAL_ERROR, "reason": reason}
        )
        self._close_transport()

    def _stop_keepalive(self) -> None:
        for timer in (self.ping_timer, self.pong_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self.pong_timer = None
        self._ping_payload = None


def _text_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI's byte-string headers as text; latin-1 maps every byte to one character."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


def _chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _remote_address(transport: asyncio.BaseTransport) -> tuple[str, int] | None:
    address = transport.get_extra_info("peername")
    if isinstance(address, list | tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


def _local_address(transport: asyncio.BaseTransport) -> tuple[str, int | None] | None:
    address = transport.get_extra_info("sockname")
    if isinstance(address, list | tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    if isinstance(address, str):  # a Unix socket
        return address, None
    return None
