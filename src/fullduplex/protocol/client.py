"""The client's side of a connection: the opening handshake, then the shared state machine."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..exceptions import InvalidHandshake, InvalidResponse, InvalidStatus
from .connection import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, Buffer, Connection
from .events import HandshakeCompleted
from .extensions.base import ClientExtensionFactory
from .handshake import build_request, check_response, generate_key
from .http11 import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADERS,
    Request,
    Response,
    parse_response,
    serialize_request,
)

__all__ = ["ClientProtocol"]


class ClientProtocol(Connection):
    """A client-side WebSocket connection, sans-I/O.

    The upgrade request is queued at once: write `data_to_send()` first. Then feed the
    server's bytes to `receive_data`; a `HandshakeCompleted` event means the connection is
    open, a `ConnectionFailed` event carrying an `InvalidHandshake` that it was refused.

    Args:
        host: the ``Host`` header (``example.com`` or ``example.com:8080``).
        path: the request target, path and query (``/chat?room=1``).
        origin: the ``Origin`` header, if any.
        subprotocols: the subprotocols to offer, in order of preference.
        extensions: the extension factories to offer, in order.
        extra_headers: more request headers.
        key: the ``Sec-WebSocket-Key``; random when None (tests pass a fixed one).
        max_header_bytes, max_headers: limits on the response head.
        max_message_size, max_frame_size, max_fragments: see `Connection`.
    """

    __slots__ = (
        "key",
        "offered_subprotocols",
        "offered_extensions",
        "max_header_bytes",
        "max_headers",
        "request",
        "response",
        "_head",
    )

    def __init__(
        self,
        host: str,
        path: str = "/",
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[ClientExtensionFactory] = (),
        extra_headers: Iterable[tuple[str, str]] = (),
        key: str | None = None,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    ) -> None:
        super().__init__(
            is_client=True,
            max_message_size=max_message_size,
            max_frame_size=max_frame_size,
            max_fragments=max_fragments,
        )
        self.key = key or generate_key()
        self.offered_subprotocols = tuple(subprotocols)
        self.offered_extensions = tuple(extensions)
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.request: Request = build_request(
            host,
            path,
            self.key,
            origin=origin,
            subprotocols=subprotocols,
            extensions=extensions,
            extra_headers=extra_headers,
        )
        """The upgrade request sent to the server."""
        self.response: Response | None = None
        """The server's response, once received."""
        self._head = bytearray()
        self._output.append(serialize_request(self.request))

    def _receive_handshake_data(self, data: Buffer) -> None:
        self._head += data
        self._parse_response(at_eof=False)

    def _receive_handshake_eof(self) -> None:
        self._parse_response(at_eof=True)
        if self.response is None and self.failure is None:
            self.fail(InvalidResponse("connection closed during the opening handshake"))

    def _parse_response(self, *, at_eof: bool) -> None:
        try:
            parsed = parse_response(
                self._head,
                max_header_bytes=self.max_header_bytes,
                max_headers=self.max_headers,
                max_body_bytes=DEFAULT_MAX_BODY_BYTES,
                at_eof=at_eof,
            )
            if parsed is None:
                return
            self.response, consumed = parsed
            if self.response.status != 101:
                raise InvalidStatus(self.response)
            self.subprotocol, self.extensions = check_response(
                self.response,
                self.key,
                subprotocols=self.offered_subprotocols,
                extensions=self.offered_extensions,
            )
        except InvalidHandshake as exc:
            self.fail(exc)
            return
        leftover = bytes(self._head[consumed:])
        self._head = bytearray()
        self._events.append(HandshakeCompleted(self.response))
        self._start_frames(leftover)
