"""The server's side of a connection: the opening handshake, then the shared state machine."""

from __future__ import annotations

from collections.abc import Iterable

from ..exceptions import InvalidRequest, InvalidState
from .connection import (
    DEFAULT_MAX_FRAGMENTS,
    DEFAULT_MAX_MESSAGE_SIZE,
    Buffer,
    Connection,
    State,
    _Input,
)
from .events import RequestReceived
from .handshake import (
    ServerNegotiation,
    build_accept_response,
    build_error_response,
    check_request,
    negotiate,
)
from .http11 import (
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADERS,
    Headers,
    Request,
    Response,
    parse_request,
    serialize_response,
)

__all__ = ["ServerProtocol"]


class ServerProtocol(Connection):
    """A server-side WebSocket connection, sans-I/O.

    Feed the client's bytes to `receive_data`. Once the upgrade request is complete, a
    `RequestReceived` event appears: then call `accept` to upgrade (or answer with an error
    status if the request is invalid) or `respond` to answer with a plain HTTP response.

    Args:
        negotiation: the origins, subprotocols and extensions this server accepts.
        max_header_bytes: largest request head accepted (431 beyond).
        max_headers: largest number of header fields accepted (431 beyond).
        max_message_size, max_frame_size, max_fragments: see `Connection`.
    """

    __slots__ = ("negotiation", "max_header_bytes", "max_headers", "request", "_head", "_leftover")

    def __init__(
        self,
        negotiation: ServerNegotiation | None = None,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    ) -> None:
        super().__init__(
            is_client=False,
            max_message_size=max_message_size,
            max_frame_size=max_frame_size,
            max_fragments=max_fragments,
        )
        self.negotiation = negotiation or ServerNegotiation()
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.request: Request | None = None
        """The upgrade request, once received."""
        # The request head received so far: created when it comes in pieces, dropped once
        # parsed (a server holds many connections; an open one keeps no empty buffer).
        self._head: bytearray | None = None
        self._leftover = b""

    def _receive_handshake_data(self, data: Buffer) -> None:
        if self.request is not None:
            # The client sent bytes before our answer: keep them for after `accept`.
            self._leftover += bytes(data)
            return
        head: bytes | bytearray
        if self._head is not None:
            self._head += data
            head = self._head
        else:  # the usual case: the whole request in one read
            head = bytes(data) if isinstance(data, memoryview) else data
        try:
            parsed = parse_request(
                head, max_header_bytes=self.max_header_bytes, max_headers=self.max_headers
            )
        except InvalidRequest as exc:
            self._head = None
            self._refuse(exc)
            return
        if parsed is None:
            if self._head is None:
                self._head = bytearray(data)
            return
        self.request, consumed = parsed
        self._leftover = bytes(head[consumed:])
        self._head = None
        self._events.append(RequestReceived(self.request))

    def _receive_handshake_eof(self) -> None:
        """A client that hangs up mid-request simply goes away; there is no one to answer."""

    def accept(self, extra_headers: Iterable[tuple[str, str]] = ()) -> Response:
        """Validate the request, negotiate, and queue the response.

        Returns:
            The 101 response, after which the connection is OPEN; or, when the request is
            invalid (see `check_request`), the error response, after which the transport
            should close and `failure` tells why.

        Raises:
            InvalidState: no complete request has arrived, or it was already answered.
        """
        request = self._pending_request()
        try:
            key = check_request(request, self.negotiation)
            self.subprotocol, extensions, negotiated = negotiate(request, self.negotiation)
        except InvalidRequest as exc:
            return self._refuse(exc)
        # A tuple: no list kept per connection, and none at all without extensions.
        self.extensions = tuple(extensions)
        response = build_accept_response(key, negotiated, extra_headers)
        self._output.append(serialize_response(response))
        leftover, self._leftover = self._leftover, b""
        self._start_frames(leftover)
        return response

    def respond(self, response: Response) -> None:
        """Answer the request with a plain HTTP response (a refusal, a health check, a page);
        the transport should close afterwards.

        Raises:
            InvalidState: no complete request has arrived, or it was already answered.
        """
        self._pending_request()
        if "Connection" not in response.headers:
            headers = Headers([*response.headers, ("Connection", "close")])
            response = Response(response.status, headers, response.body, response.reason)
        self._output.append(serialize_response(response))
        self._enter(_Input.ANSWERED_WITHOUT_UPGRADE)

    def _pending_request(self) -> Request:
        if self.request is None or self.state is not State.CONNECTING:
            raise InvalidState("there is no upgrade request waiting for an answer")
        return self.request

    def _refuse(self, error: InvalidRequest) -> Response:
        response = build_error_response(error)
        self._output.append(serialize_response(response))
        self.fail(error)
        return response
