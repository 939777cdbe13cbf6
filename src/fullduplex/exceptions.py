"""Every error fullduplex raises, in one small tree.

::

    FullDuplexError
    ├── InvalidHandshake              the opening handshake failed
    │   ├── InvalidRequest            a client sent a bad upgrade request (server side)
    │   │   └── HeadersTooLarge       431: too many or too long headers
    │   ├── InvalidResponse           a server sent a bad upgrade response (client side)
    │   │   └── InvalidStatus         the server answered with a status other than 101
    │   │       └── InvalidRedirect   a redirect that may not be followed (wss: to ws:, too many)
    │   └── NegotiationError          subprotocol or extension negotiation failed
    ├── ProtocolViolation             the peer broke RFC 6455 / RFC 7692 (close code 1002)
    │   ├── InvalidPayload            invalid UTF-8 in a text message or close reason (1007)
    │   └── MessageTooBig             a frame or message exceeded a limit (1009)
    ├── PolicyViolation               the peer broke a rule of this endpoint (1008)
    ├── ConnectionClosed              the connection is closed; carries the close code
    │   ├── ConnectionClosedOK        ... after a normal close (1000 / 1001)
    │   └── ConnectionClosedError     ... for any other reason
    ├── ProxyError                    the proxy refused to open a tunnel (its status attached)
    ├── InvalidState                  the caller did something the current state forbids
    └── HTTPError                     a plain HTTP exchange (polling transports) failed
        ├── BodyTooLarge              413: a request body exceeded its limit
        └── HTTPDisconnect            the client went away before the response ended

The peer's faults (``InvalidRequest``, ``InvalidResponse``, ``ProtocolViolation``) are kept
apart from the caller's (``InvalidState``, and ``ValueError``/``TypeError`` for bad arguments).
Each peer fault says how it goes on the wire: ``http_status`` for handshake errors,
``close_code`` for errors on an open connection.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .protocol.http11 import Response

__all__ = [
    "FullDuplexError",
    "InvalidHandshake",
    "InvalidRequest",
    "HeadersTooLarge",
    "InvalidResponse",
    "InvalidStatus",
    "InvalidRedirect",
    "NegotiationError",
    "ProtocolViolation",
    "InvalidPayload",
    "MessageTooBig",
    "PolicyViolation",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "ProxyError",
    "InvalidState",
    "HTTPError",
    "BodyTooLarge",
    "HTTPDisconnect",
]


class FullDuplexError(Exception):
    """Base class of every fullduplex error."""


class InvalidHandshake(FullDuplexError):
    """The opening handshake failed."""

    http_status: HTTPStatus = HTTPStatus.BAD_REQUEST


class InvalidRequest(InvalidHandshake):
    """A client's upgrade request is malformed or unacceptable.

    ``http_status`` is the status the server answers with; ``headers`` are extra response
    headers that status needs (``Sec-WebSocket-Version`` with 426).
    """

    def __init__(
        self,
        message: str,
        http_status: HTTPStatus = HTTPStatus.BAD_REQUEST,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.headers = headers


class HeadersTooLarge(InvalidRequest):
    """The request's header block exceeded ``max_header_bytes`` or ``max_headers``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)


class InvalidResponse(InvalidHandshake):
    """A server's upgrade response is malformed or does not match the request."""


class InvalidStatus(InvalidResponse):
    """The server refused the upgrade: it answered with a status other than 101.

    ``response`` holds the status, headers and (bounded) body the server sent.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {response.status}")
        self.response = response


class InvalidRedirect(InvalidStatus):
    """The server redirected the handshake somewhere the client may not follow: from
    ``wss://`` to ``ws://`` (a downgrade), to a URL that is not HTTP or WebSocket, or once more
    than ``max_redirects`` allows. ``response`` is the redirect; ``location`` its target.
    """

    def __init__(self, response: Response, location: str, message: str) -> None:
        InvalidResponse.__init__(self, message)
        self.response = response
        self.location = location


class NegotiationError(InvalidHandshake):
    """Subprotocol or extension negotiation failed."""


class ProtocolViolation(FullDuplexError):
    """The peer broke the WebSocket protocol; the connection is failed with ``close_code``."""

    close_code: int = 1002


class InvalidPayload(ProtocolViolation):
    """A text message or close reason is not valid UTF-8 (RFC 6455 §8.1)."""

    close_code = 1007


class MessageTooBig(ProtocolViolation):
    """A frame, a message or its decompressed form exceeded a configured limit."""

    close_code = 1009


class PolicyViolation(FullDuplexError):
    """The peer broke a rule of this endpoint (RFC 6455 §7.4.1, code 1008)."""

    close_code: int = 1008


class ConnectionClosed(FullDuplexError):
    """The operation needs an open connection, and this one is closed (or closing).

    ``code`` and ``reason`` are the peer's close frame's (1005 when it carried no code); when
    the peer sent none, those of the close frame this side sent (1011 after a keepalive
    timeout, 1002 after a protocol violation); 1006 when no close frame went either way.
    ``was_clean`` tells whether the closing handshake completed.
    """

    def __init__(self, code: int, reason: str, was_clean: bool) -> None:
        detail = f" {reason!r}" if reason else ""
        super().__init__(f"connection closed: {code}{detail}")
        self.code = code
        self.reason = reason
        self.was_clean = was_clean


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000 or 1001, closing handshake complete)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code or without a closing handshake."""


class ProxyError(FullDuplexError):
    """The proxy would not open a tunnel to the server, or broke its protocol doing so.

    ``proxy`` is the proxy's URL, without its credentials. ``status`` is an HTTP proxy's
    answer to ``CONNECT`` (407: the credentials are missing or wrong; 403: not allowed; 502
    or 504: the proxy could not reach the server); ``socks_reply`` a SOCKS proxy's reply code
    (RFC 1928 §6: 2 not allowed, 4 host unreachable, 5 refused...). Either is None when the
    proxy gave none (it hung up, or refused the credentials of a SOCKS handshake).
    ``is_transient`` tells whether trying again later may succeed (the proxy could not reach
    the server, or hung up); the reconnecting ``async for ws in connect(...)`` retries those.
    """

    def __init__(
        self,
        message: str,
        proxy: str,
        *,
        status: int | None = None,
        socks_reply: int | None = None,
        is_transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.proxy = proxy
        self.status = status
        self.socks_reply = socks_reply
        self.is_transient = is_transient


class InvalidState(FullDuplexError):
    """The caller asked for something the connection's current state forbids."""


class HTTPError(FullDuplexError):
    """A plain HTTP exchange (a polling or streaming transport's request) failed."""

    http_status: HTTPStatus = HTTPStatus.BAD_REQUEST


class BodyTooLarge(HTTPError):
    """A request body exceeded its limit; the answer is 413."""

    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class HTTPDisconnect(HTTPError):
    """The client went away before the response ended."""
