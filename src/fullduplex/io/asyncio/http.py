"""Plain HTTP/1.1 on the WebSocket server's port: keep-alive, bodies, streamed responses.

When `serve` runs an `HTTPApplication` (a router, `fullduplex.transports.Router`), every
connection starts as an `HTTPConnection`. It parses requests with the sans-I/O
`HTTPServerProtocol` and runs the application's `serve_http` for each one, one at a time, over
an `HTTPExchange`. A WebSocket upgrade request, first on the connection or after any number of
keep-alive requests, is handed over: the transport gets a new `ServerConnection`
(``transport.set_protocol``), which answers the handshake and runs the application's
`serve_websocket`. From then on the WebSocket connection is exactly the one a plain WebSocket
server has: same object, same hot path, same memory.

Without an application, `serve` never creates an `HTTPConnection`: nothing here runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from ...exceptions import HTTPDisconnect, HTTPError
from ...protocol.http11 import Headers, Request, Response, serialize_request
from ...protocol.http_server import (
    HTTPRequestReceived,
    HTTPServerProtocol,
    RequestFailed,
)
from .exchange import HTTPExchange
from .native_exchange import NativeExchange
from .plumbing import _read_buffer

if TYPE_CHECKING:
    from ..options import OptionOverrides
    from .server import Server, ServerConnection

__all__ = ["HTTPApplication", "HTTPConnection"]

logger = logging.getLogger("fullduplex")

# While a request is being answered, pipelined bytes beyond this wait in the kernel: reading
# pauses. This bounds the memory a client can make a connection hold by pipelining.
_MAX_BUFFERED_BYTES = 64 * 1024


@runtime_checkable
class HTTPApplication(Protocol):
    """What `serve` needs to serve plain HTTP next to WebSocket on one port.

    `fullduplex.transports.Router` implements it; pass one to `serve` in place of a handler.

    An application may also define ``upgrade_options(request) -> OptionOverrides``: the
    options (`Options` fields) an accepted upgrade request's connection runs with instead of
    the server's, e.g. ``{"compression": None}``. `serve` calls it after `refuse_upgrade`,
    before the handshake (and its permessage-deflate negotiation) is answered. It is not part
    of this protocol, so that an application without it still passes ``isinstance`` (which
    `serve` uses to tell an application from a handler); without it, every connection runs
    with the server's options.

    Likewise optional: ``serve_http_nowait(exchange: NativeExchange) -> bool``, which answers
    a request synchronously when it can (`NativeExchange.body_nowait`, `respond_nowait`, now
    or later from a callback) and returns True, or returns False having done nothing, and the
    server runs `serve_http` in a task as for any request. It costs no coroutine and no task:
    Engine.IO's polls and POSTs take this way. Without it, every request runs in a task.
    """

    def refuse_upgrade(self, request: Request) -> Response | None:
        """Return a response refusing this WebSocket upgrade request (404...), or None to
        accept it; called before the handshake is answered."""

    def serve_websocket(self, connection: ServerConnection) -> Awaitable[None]:
        """Serve one accepted WebSocket connection; it closes when the awaitable is done."""

    def serve_http(self, exchange: HTTPExchange) -> Awaitable[None]:
        """Answer one plain HTTP request."""


class HTTPConnection(asyncio.BufferedProtocol):
    """One client's connection while it speaks plain HTTP; created by `serve`.

    Requests are answered one at a time, in order. Between requests the connection waits at
    most the server's ``http_keepalive_timeout`` (``open_timeout`` for the first request).
    While a request is being answered the client's further bytes are kept up to 64 KiB, then
    reading pauses; a client that goes away meanwhile is noticed as long as reading is on.
    """

    __slots__ = (
        "server",
        "parser",
        "transport",
        "_read_view",
        "_loop",
        "_exchange",
        "_idle_handle",
        "_idle_deadline",
        "_abort_handle",
        "_reading_paused",
        "_data_waiter",
        "_writing_paused",
        "_drain_waiter",
        "_is_closed",
        "_eof_received",
        "_is_lingering",
        "_lost",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        options = server.options
        self.parser = HTTPServerProtocol(
            max_header_bytes=options.max_header_bytes, max_headers=options.max_headers
        )
        self.transport: asyncio.Transport | None = None
        self._read_view = _read_buffer()
        self._loop = asyncio.get_running_loop()
        self._exchange: NativeExchange | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._idle_deadline = 0.0
        self._abort_handle: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._is_closed = False
        self._eof_received = False
        self._is_lingering = False
        # Created when the server shuts down, to wait for this connection's end.
        self._lost: asyncio.Future[None] | None = None

    # --- asyncio.BufferedProtocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports don't subclass asyncio's.
        self.transport = cast(asyncio.Transport, transport)
        server = self.server
        if server._closing is not None:
            transport.close()
            return
        write_limit = server.options.write_limit
        self.transport.set_write_buffer_limits(write_limit, write_limit // 4)
        server._http_connections.add(self)
        self._arm_idle_timer(server.options.open_timeout)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        if self._is_lingering:
            return  # closing: what the client still sends is dropped
        self.parser.receive_data(self._read_view[:nbytes])
        if self._data_waiter is not None:
            self._wake_reader()
        self._advance()

    def eof_received(self) -> bool:
        if self._is_lingering:
            return False  # the client closed its side too: asyncio closes the transport
        self._eof_received = True
        self.parser.receive_eof()
        self._wake_reader()
        exchange = self._exchange
        if exchange is None:
            return False  # idle: asyncio closes the transport
        # The client will send nothing more. A held request takes that for the client going
        # away; a response already being written still goes out on the half-open stream,
        # except over TLS, which has no half-open state (asyncio closes it and warns).
        exchange._mark_disconnected()
        if exchange._is_held:
            return False  # nothing will be answered: asyncio closes the transport
        assert self.transport is not None
        return self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._is_closed = True
        self._cancel_idle_timer()
        if self._abort_handle is not None:
            # Dropped, so that the loop does not keep this object until the timer's end.
            self._abort_handle.cancel()
            self._abort_handle = None
        self.server._http_connections.discard(self)
        if self._exchange is not None:
            self._exchange._mark_disconnected()
        self._wake_reader()
        self._wake_writer()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_writer()
        if self._exchange is None:
            self._advance()  # a response answered without waiting was taken by the client

    # --- requests ------------------------------------------------------------------------

    def _advance(self) -> None:
        """Start answering the next request, if one has arrived, none is being answered and
        the client reads what it was sent."""
        if self._exchange is not None or self._writing_paused:
            self._limit_reading()
            return
        if self._is_closed:
            return
        event = self.parser.next_event()
        if event is None:
            return
        if isinstance(event, RequestFailed):
            logger.info("%s: bad HTTP request: %s", self._describe_peer(), event.error)
            self._write(self.parser.refuse(event.error))
            self._close(has_unread_bytes=True)
        elif isinstance(event, HTTPRequestReceived):
            if event.is_websocket_upgrade:
                self._upgrade(event)
            else:
                self._start_exchange(event)

    def _start_exchange(self, event: HTTPRequestReceived) -> None:
        """Answer a request: synchronously when the application can (``serve_http_nowait``),
        else in a task.

        Either way it starts from the loop, not inside this read, and the next request is
        parsed once it has been answered: pipelined requests never nest.
        """
        exchange = self._exchange = NativeExchange(self, event)
        app = self.server.app
        assert app is not None
        if hasattr(app, "serve_http_nowait"):
            # From the loop rather than inside this read: the requests read in one turn of the
            # loop are answered one after the other in the next (measured: answering inside
            # each read costs the benchmark's long-polling a quarter more CPU per event).
            self._loop.call_soon(self._serve_nowait, app, exchange)
        else:
            self._run_in_task(self._serve_rest(self._serve(app, exchange)))

    def _serve_nowait(self, app: Any, exchange: NativeExchange) -> None:
        """Let the application answer a request synchronously; in a task if it declines."""
        if self._is_closed:
            return
        try:
            is_taken = app.serve_http_nowait(exchange)
        except HTTPError as error:
            logger.info("%s: %s", self._describe_peer(), error)
            exchange._fail(int(error.http_status))
            is_taken = True
        except Exception:
            logger.exception("HTTP handler failed")
            exchange._fail(500)
            is_taken = True
        if not is_taken:
            self._run_in_task(self._serve_rest(self._serve(app, exchange)))
        elif exchange._state != "done":
            exchange._is_held = True  # answered later, from a callback
        elif self._exchange_done(exchange):
            self._advance()

    def _held_exchange_answered(self, exchange: NativeExchange) -> None:
        """A request held by ``serve_http_nowait`` has been answered: go on to the next."""
        if self._exchange is exchange and self._exchange_done(exchange):
            self._advance()

    def _run_in_task(self, serving: Coroutine[Any, Any, None]) -> None:
        """Run (the rest of) a request in a task that the server cancels when it closes."""
        handlers = self.server._handlers
        task = self._loop.create_task(serving)
        handlers.add(task)
        task.add_done_callback(handlers.discard)

    async def _serve_rest(self, rest: Awaitable[bool]) -> None:
        """Serve a request (or the rest of one) in a task, then go on to the next request."""
        if await rest:
            self._advance()

    async def _serve(self, app: HTTPApplication, exchange: NativeExchange) -> bool:
        """Run the application on one request; answer for it when it did not.

        Returns:
            Whether the connection takes the next request now.
        """
        try:
            await app.serve_http(exchange)
        except HTTPDisconnect:
            pass
        except HTTPError as error:
            # BodyTooLarge (413), a malformed body (400): the peer's fault, answered.
            logger.info("%s: %s", self._describe_peer(), error)
            exchange._fail(int(error.http_status))
        except asyncio.CancelledError:
            self._abort()
            if exchange._taken_writer is not None:
                exchange._taken_writer.transport.abort()
            raise
        except Exception:
            logger.exception("HTTP handler failed")
            exchange._fail(500)
        else:
            if exchange._state == "new":
                logger.error("HTTP handler returned without responding to %s", exchange.request)
                exchange._fail(500)
            elif exchange._state == "streaming":
                await exchange.end()
        if exchange._taken_writer is not None:
            # The handler took the stream over; the connection ends with it.
            exchange._taken_writer.close()
            return False
        return self._exchange_done(exchange)

    def _exchange_done(self, exchange: NativeExchange) -> bool:
        """Close the connection or ready it for the next request; return whether it is ready."""
        self._exchange = None
        parser = self.parser
        transport = self.transport
        if self._is_closed or transport is None or transport.is_closing():
            return False
        if (
            exchange._state != "done"
            or parser.must_close
            or self._eof_received
            or self.server._closing is not None
        ):
            self._close()
            return False
        parser.start_next_request()
        self._arm_idle_timer(self.server.http_keepalive_timeout)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        return True

    def _upgrade(self, event: HTTPRequestReceived) -> None:
        """Hand the transport to a `ServerConnection` for a WebSocket upgrade request."""
        request = event.request
        server = self.server
        assert server.app is not None and self.transport is not None
        overrides: OptionOverrides = {}
        if event.http_version != "1.1":
            # RFC 6455 §4.1: the handshake is an HTTP/1.1 (or later) request.
            refusal: Response | None = Response(505, [("Content-Type", "text/plain")], b"")
        else:
            try:
                refusal = server.app.refuse_upgrade(request)
                upgrade_options = getattr(server.app, "upgrade_options", None)
                if refusal is None and upgrade_options is not None:
                    overrides = upgrade_options(request)
            except Exception:
                logger.exception("refuse_upgrade or upgrade_options failed")
                refusal = Response(500, [("Content-Type", "text/plain")], b"")
        if refusal is not None:
            headers = Headers([*refusal.headers, ("Connection", "close")])
            self._write(self.parser.respond(refusal.status, headers, refusal.body))
            self._close()
            return
        transport = self.transport
        # The WebSocket side parses the request again from its bytes: a handshake costs one
        # parse more, and the WebSocket connection stays exactly what it is without HTTP.
        data = serialize_request(request) + self.parser.take_buffered()
        self._cancel_idle_timer()
        server._http_connections.discard(self)
        self.transport = None
        self._is_closed = True
        connection = server._new_connection(overrides)
        transport.set_protocol(connection)
        connection.connection_made(transport)
        if self._reading_paused:
            transport.resume_reading()
        connection.protocol.receive_data(data)
        connection._process_events()

    def _take_over(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Give the transport to an asyncio stream pair; this object lets go of it."""
        transport = self.transport
        assert transport is not None
        reader = asyncio.StreamReader(loop=self._loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=self._loop)
        buffered = self.parser.take_buffered()
        self.server._http_connections.discard(self)
        self.transport = None
        self._is_closed = True
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if buffered:
            reader.feed_data(buffered)
        if self._eof_received:
            reader.feed_eof()
        if self._reading_paused:
            transport.resume_reading()
        if self._writing_paused:
            protocol.pause_writing()
        writer = asyncio.StreamWriter(transport, protocol, reader, self._loop)
        return reader, writer

    # --- internals -----------------------------------------------------------------------

    def _limit_reading(self) -> None:
        """Stop reading while a request is being answered and pipelined bytes pile up."""
        if (
            not self._reading_paused
            and self.parser.buffered_bytes > _MAX_BUFFERED_BYTES
            and self.transport is not None
        ):
            self._reading_paused = True
            self.transport.pause_reading()

    async def _wait_data(self) -> None:
        """Wait for more bytes from the client (reading a body).

        Raises:
            HTTPError: nothing came for ``open_timeout`` seconds (answered with 408).
        """
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        waiter = self._data_waiter = self._loop.create_future()
        # A client trickling its body (slowloris) holds the request at most this long per
        # wait. A timer rather than asyncio.timeout: a handler's first step runs outside any
        # task (see `_start_exchange`), and asyncio.timeout needs one.
        timeout_s = self.server.options.open_timeout
        timer = None if timeout_s is None else self._loop.call_later(timeout_s, _time_out, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._data_waiter = None

    def _wake_reader(self) -> None:
        waiter = self._data_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _drain(self) -> None:
        """Wait while the transport's write buffer is above its limit (or until closed)."""
        while self._writing_paused and not self._is_closed:
            waiter = self._drain_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._drain_waiter = None

    def _wake_writer(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    def _close(self, has_unread_bytes: bool | None = None) -> None:
        """Close once what was written has gone out; bounded like the WebSocket side.

        Args:
            has_unread_bytes: whether the client may have sent bytes nobody read; by default,
                whether part of a request is still waiting.
        """
        transport = self.transport
        if transport is None or transport.is_closing() or self._is_lingering:
            return
        if has_unread_bytes is None:
            parser = self.parser
            has_unread_bytes = (
                parser.buffered_bytes > 0 or not parser.body_done or self._reading_paused
            )
        if not has_unread_bytes or self._eof_received or not transport.can_write_eof():
            transport.close()
        else:
            # RFC 9112 §9.6: closing with the client's bytes unread (a refused body, pipelined
            # requests) makes the kernel send a reset, which can destroy the answer before
            # the client reads it. Half-close instead, drop what comes, and close when the
            # client does.
            self._is_lingering = True
            transport.write_eof()
            if self._reading_paused:
                self._reading_paused = False
                transport.resume_reading()
        # A client that stops reading (or never closes) is cut off after close_timeout.
        self._cancel_idle_timer()
        self._abort_handle = self._loop.call_later(self.server.options.close_timeout, self._abort)

    def _abort(self) -> None:
        if self.transport is not None and not self._is_closed:
            self.transport.abort()

    def _shut_down(self) -> asyncio.Future[None]:
        """The server is closing: close an idle connection; end a busy one after its response,
        and wake a request waiting in `HTTPExchange.wait_disconnected`.

        Returns:
            A future done once the connection is closed.
        """
        lost = self._lost = self._loop.create_future()
        if self._is_closed:
            lost.set_result(None)
        elif self._exchange is None:
            self._close()
        else:
            self.parser.close_after_response()
            # A held request (a long-poll, a stream) ends as if the client had left.
            self._exchange._mark_disconnected()
            if self._exchange._is_held:
                # Nothing will answer it. Its body, if any, was read: only pipelined bytes
                # would make the close linger.
                self.parser.discard_body()
                self._close()
        return lost

    def _arm_idle_timer(self, delay: float | None) -> None:
        """Close the connection if no request comes within ``delay`` seconds from now (None:
        no limit).

        One timer serves many requests: it is moved only when it fires early, rather than
        cancelled and created again for each request of a busy keep-alive connection.
        """
        if delay is None:
            self._cancel_idle_timer()
            return
        deadline = self._idle_deadline = self._loop.time() + delay
        handle = self._idle_handle
        if handle is not None and handle.when() > deadline:
            handle.cancel()  # the first request's timeout was longer
            handle = None
        if handle is None:
            self._idle_handle = self._loop.call_at(deadline, self._idle_timed_out)

    def _cancel_idle_timer(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _idle_timed_out(self) -> None:
        self._idle_handle = None
        if self._exchange is not None:
            return  # busy: the timer starts again once the response is done
        if self._loop.time() < self._idle_deadline:
            self._idle_handle = self._loop.call_at(self._idle_deadline, self._idle_timed_out)
            return
        logger.debug("%s: idle HTTP connection timed out", self._describe_peer())
        self._close()

    def _describe_peer(self) -> str:
        address = self.transport.get_extra_info("peername") if self.transport else None
        if isinstance(address, tuple) and len(address) >= 2:
            return f"{address[0]}:{address[1]}"
        return str(address or "peer")


def _time_out(waiter: asyncio.Future[None]) -> None:
    """End a wait for body bytes that lasted ``open_timeout``: the handler gets 408."""
    if not waiter.done():
        error = HTTPError("the request body stopped arriving")
        error.http_status = HTTPStatus.REQUEST_TIMEOUT
        waiter.set_exception(error)
