"""`NativeExchange`: fullduplex's own `HTTPExchange`, one request on an `HTTPConnection`.

The exchange turns the endpoint's calls into the sans-I/O protocol's response bytes and the
connection's writes; the connection tells it when the client went away. It adds what the
`HTTPExchange` interface cannot promise under every server: `NativeExchange.take_over`, the
raw byte stream after a response head, and the synchronous `body_nowait` and
`respond_nowait` that `Endpoint.handle_http_nowait` answers with, without a coroutine.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from ...exceptions import BodyTooLarge, HTTPDisconnect, HTTPError, InvalidState
from ...protocol.http11 import Request
from ...protocol.http_server import BodyEnded, BodyReceived, HTTPRequestReceived, RequestFailed
from .exchange import HTTPExchange

if TYPE_CHECKING:
    from .http import HTTPConnection

__all__ = ["NativeExchange"]


class NativeExchange(HTTPExchange):
    """One request on an `HTTPConnection` and its response: fullduplex's own `HTTPExchange`."""

    __slots__ = (
        "_connection",
        "_event",
        "_state",
        "_body",
        "_is_disconnected",
        "_gone",
        "_disconnect_callbacks",
        "_taken_writer",
        "_is_held",
    )

    def __init__(self, connection: HTTPConnection, event: HTTPRequestReceived) -> None:
        self._connection = connection
        self._event = event
        self._state = "new"  # new, streaming, done
        self._body: bytes | None = None
        self._is_disconnected = False
        self._gone: asyncio.Future[None] | None = None
        self._disconnect_callbacks: list[Callable[[], object]] | None = None
        # Kept so that the writer outlives the handler: the server closes it after.
        self._taken_writer: asyncio.StreamWriter | None = None
        # True once `handle_http_nowait` returned without answering: the connection takes
        # its next request when the answer comes.
        self._is_held = False

    @property
    def request(self) -> Request:
        """The request: method, target (path and query) and headers."""
        return self._event.request

    @property
    def http_version(self) -> str:
        """``"1.1"`` or ``"1.0"``."""
        return self._event.http_version

    @property
    def remote_address(self) -> Any:
        """The client's address as the socket gives it, or None."""
        transport = self._connection.transport
        return transport.get_extra_info("peername") if transport is not None else None

    @property
    def is_disconnected(self) -> bool:
        """Whether the client went away before the response ended."""
        return self._is_disconnected

    async def read_body(self, max_bytes: int) -> bytes:
        """Return the whole request body (``Content-Length`` or chunked).

        A second call returns the same body.

        Raises:
            BodyTooLarge: the body exceeds ``max_bytes``; answer 413 (or let it propagate:
                the server answers 413 and closes the connection).
            HTTPDisconnect: the client went away.
            HTTPError: the chunked framing is malformed (the server answers 400).
        """
        body = self.body_nowait(max_bytes)
        if body is not None:
            return body
        connection = self._connection
        parser = connection.parser
        connection._write(parser.continue_response())
        chunks: list[bytes] = []
        size = 0
        while True:
            event = parser.next_event()
            if isinstance(event, BodyReceived):
                size += len(event.data)
                if size > max_bytes:
                    raise BodyTooLarge(f"request body exceeds {max_bytes} bytes")
                chunks.append(event.data)
            elif isinstance(event, BodyEnded):
                break
            elif isinstance(event, RequestFailed):
                if connection._eof_received or connection._is_closed:
                    raise HTTPDisconnect("the client went away while sending the body")
                raise HTTPError(f"malformed request body: {event.error}")
            elif connection._is_closed:
                raise HTTPDisconnect("the client went away while sending the body")
            else:
                await connection._wait_data()
        body = self._body = b"".join(chunks)
        return body

    def body_nowait(self, max_bytes: int) -> bytes | None:
        """Return the whole request body if all of it has arrived, else None (`read_body`
        waits for it). A later `read_body` returns the same body.

        Raises:
            BodyTooLarge: the body exceeds ``max_bytes``.
        """
        body = self._body
        if body is None:
            length = self._event.body_length
            if length is not None and length > max_bytes:
                raise BodyTooLarge(f"request body of {length} bytes exceeds {max_bytes}")
            body = self._body = self._connection.parser.take_body()
            if body is None:
                return None
        if len(body) > max_bytes:
            raise BodyTooLarge(f"request body exceeds {max_bytes} bytes")
        return body

    async def respond(
        self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b""
    ) -> None:
        """Send a whole response; ``Content-Length`` is added unless given.

        A HEAD request gets the head only. Writing to a client that went away does nothing.

        Raises:
            InvalidState: a response was already started.
        """
        self.respond_nowait(status, headers, body)
        await self._connection._drain()

    def respond_nowait(
        self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b""
    ) -> None:
        """`respond` without waiting while the client reads slowly: what
        `Endpoint.handle_http_nowait` answers with, then or later. The connection reads no
        further request until the client has taken most of it.

        Raises:
            InvalidState: a response was already started.
        """
        self._check_state("new")
        connection = self._connection
        data = connection.parser.respond(status, headers, body)
        connection._write(data)
        self._finish()

    async def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """Start a streamed response: chunked (HTTP/1.1) unless ``Content-Length`` is given.

        Raises:
            InvalidState: a response was already started.
        """
        self._check_state("new")
        connection = self._connection
        data = connection.parser.start_response(status, headers)
        self._state = "streaming"
        connection._write(data)

    async def write(self, chunk: bytes) -> None:
        """Send part of a streamed response; waits while the client reads too slowly.

        Raises:
            HTTPDisconnect: the client went away.
            InvalidState: no streamed response is in progress.
        """
        self._check_state("streaming")
        if self._is_disconnected:
            raise HTTPDisconnect("the client went away")
        connection = self._connection
        connection._write(connection.parser.send_body(chunk))
        if connection._writing_paused:
            await connection._drain()
            if connection._is_closed:
                raise HTTPDisconnect("the client went away")

    async def end(self) -> None:
        """Finish a streamed response.

        Raises:
            InvalidState: no streamed response is in progress.
        """
        self._check_state("streaming")
        connection = self._connection
        connection._write(connection.parser.end_response())
        self._finish()

    async def wait_disconnected(self) -> None:
        """Return once the client has gone away (connection closed, or its end of the stream).

        While more than 64 KiB of pipelined requests wait, reading pauses and a departure
        is noticed only once they are read.
        """
        if self._is_disconnected:
            return
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._gone)

    def call_on_disconnect(self, callback: Callable[[], object]) -> Callable[[], object]:
        """Call ``callback()`` on the event loop once the client has gone away (as
        `wait_disconnected` would return), with no task: the connection calls it.

        Returns:
            A function that cancels the call.
        """
        if self._is_disconnected:
            return self._connection._loop.call_soon(callback).cancel
        if self._disconnect_callbacks is None:
            self._disconnect_callbacks = [callback]
        else:
            self._disconnect_callbacks.append(callback)
        return functools.partial(self._forget_disconnect_callback, callback)

    def _forget_disconnect_callback(self, callback: Callable[[], object]) -> None:
        callbacks = self._disconnect_callbacks
        if callbacks is not None and callback in callbacks:
            callbacks.remove(callback)

    async def take_over(
        self, status: int, headers: Iterable[tuple[str, str]]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Send a response head, then take the connection's byte stream over.

        For protocols that leave HTTP after a head: the hixie-76 WebSocket draft that SockJS
        still answers, other ``Upgrade`` schemes. The head goes out as given, with no
        ``Content-Length`` and no body framing (status 101, typically). The reader starts
        with any bytes the client sent after its request. The connection serves no more HTTP
        requests and closes when the handler returns (or the writer is closed).

        fullduplex's own server only: an ASGI server owns its connections, so
        `fullduplex.asgi` offers no such thing.

        Raises:
            InvalidState: a response was already started.
        """
        self._check_state("new")
        connection = self._connection
        head = connection.parser.leave_http(status, headers)
        self._state = "done"
        connection._write(head)
        reader, writer = connection._take_over()
        self._taken_writer = writer
        return reader, writer

    def _mark_disconnected(self) -> None:
        if self._state == "done":
            return
        self._is_disconnected = True
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        callbacks, self._disconnect_callbacks = self._disconnect_callbacks, None
        if callbacks:
            # Soon rather than now: the connection calls this from inside its own callbacks.
            loop = self._connection._loop
            for callback in callbacks:
                loop.call_soon(callback)

    def _finish(self) -> None:
        self._state = "done"
        if self._is_held:
            self._connection._held_exchange_answered(self)

    def _fail(self, status: int) -> None:
        """Answer for a handler that failed: the status, or drop a response it had started."""
        if self._state == "new":
            body = f"{status} {_phrase(status)}\n".encode()
            self.respond_nowait(status, [("Content-Type", "text/plain; charset=utf-8")], body)
        elif self._state == "streaming":
            # The body is cut short; the client must not take it for complete.
            self._state = "done"
            self._connection._abort()

    def _check_state(self, expected: str) -> None:
        if self._state != expected:
            raise InvalidState(f"the response is {self._state}; expected it {expected}")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
