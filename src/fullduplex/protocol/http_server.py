"""The server's side of plain HTTP/1.1 (RFC 9112), sans-I/O: many requests per connection.

The WebSocket handshake needs one request and one response (`http11`). Polling and streaming
transports need the rest of HTTP/1.1: request bodies (``Content-Length`` or chunked), responses
whose length is unknown (chunked), keep-alive and pipelining. `HTTPServerProtocol` does that
for one connection, with no I/O: bytes go in with `receive_data`, events come out of
`next_event`, and the response methods return the bytes to write.

Theory of operation
-------------------
A connection serves one request at a time. The caller pulls events: `HTTPRequestReceived`
(the head), then `BodyReceived`... `BodyEnded`. Only after the response ended does
`next_event` parse the next request, so pipelined requests wait as raw bytes
(`buffered_bytes` tells how many, for the caller to stop reading). The response goes
`respond` (whole) or `start_response`, `send_body`..., `end_response` (streamed)::

    request side   HEAD --(body framing)--> BODY --> DONE
    response side  NOT_STARTED --respond--> DONE
                   NOT_STARTED --start_response--> STREAMING --end_response--> DONE

When both sides are DONE and the connection may persist, the next request starts; otherwise
`must_close` turns true and the caller closes the transport once the bytes are written.

Refusal policy
--------------
What cannot be framed unambiguously is refused with the status RFC 9112 gives, and the
connection closes after the answer (the rest of the stream cannot be trusted): 400 for a
malformed head, body framing or chunk; 400 for ``Content-Length`` together with
``Transfer-Encoding`` (§6.3: a request-smuggling attempt); 501 for a transfer coding other than
chunked (§6.1); 411 for ``Transfer-Encoding`` from an HTTP/1.0 client, which must frame its
body with ``Content-Length`` (§6.1, §6.3); 505 for other versions; 431 for an oversized head.
Memory is bounded: the head by ``max_header_bytes``, a chunk-size line and the trailers by
the same, and body data is handed out as it arrives, never gathered here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import TypeVar

from ..exceptions import InvalidRequest, InvalidState
from ._compiled import parse_request_head
from .events import _EventTuple
from .http11 import (
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADERS,
    Headers,
    Request,
    _parse_fields,
    _split_head,
)

_Key = TypeVar("_Key")
_Value = TypeVar("_Value")

__all__ = [
    "HTTPServerProtocol",
    "HTTPRequestReceived",
    "BodyReceived",
    "BodyEnded",
    "RequestFailed",
    "HTTPEvent",
    "is_websocket_upgrade",
]

# RFC 9112 §3: request-line = method SP request-target SP HTTP-version (the version is
# checked apart: another one gets 505, not 400).
_REQUEST_LINE = re.compile(r"([-!#$%&'*+.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) ([^ ]*)")
# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, lines joined by CRLF; as
# `http11._parse_fields` checks them one by one (no obs-fold, no space before the colon).
_FIELD_LINE = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\x20-\x7e\x80-\xff\t]*"
_FIELD_LINES = re.compile(f"{_FIELD_LINE}(?:\r\n{_FIELD_LINE})*")
_CHUNKED = "chunked"
# A chunk size wider than 16 hex digits exceeds any body this side could accept.
_MAX_CHUNK_SIZE_DIGITS = 16
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# The fields that frame a request's body, decide on keep-alive, or ask for an upgrade, as bits
# (the compiled parser uses the same values).
_FRAMING_TRANSFER_ENCODING = 1
_FRAMING_CONTENT_LENGTH = 2
_FRAMING_CONNECTION = 4
_FRAMING_EXPECT = 8
_FRAMING_UPGRADE = 16
_FRAMING_MARKERS = (
    (_FRAMING_TRANSFER_ENCODING, "\ntransfer-encoding:"),
    (_FRAMING_CONTENT_LENGTH, "\ncontent-length:"),
    (_FRAMING_CONNECTION, "\nconnection:"),
    (_FRAMING_EXPECT, "\nexpect:"),
    (_FRAMING_UPGRADE, "\nupgrade:"),
)
# RFC 9110 §15: these statuses never carry content.
_NO_CONTENT_STATUSES = frozenset({204, 304})


# Events are tuples with named fields, as the WebSocket events (`events._EventTuple`): one
# is made per request, and a tuple costs less to make than a frozen dataclass.


class HTTPRequestReceived(_EventTuple):
    """A request head arrived.

    Attributes:
        request: method, target and headers.
        http_version: ``"1.1"`` or ``"1.0"``.
        body_length: the body's length from ``Content-Length``; None for a chunked body.
        expects_continue: the client sent ``Expect: 100-continue`` and waits before the body.
        is_websocket_upgrade: the request asks for a WebSocket upgrade (`is_websocket_upgrade`).
    """

    __slots__ = ()
    request: Request
    http_version: str
    body_length: int | None
    expects_continue: bool
    is_websocket_upgrade: bool

    def __new__(
        cls,
        request: Request,
        http_version: str,
        body_length: int | None,
        expects_continue: bool,
        is_websocket_upgrade: bool,
    ) -> HTTPRequestReceived:
        return tuple.__new__(
            cls, (request, http_version, body_length, expects_continue, is_websocket_upgrade)
        )


class BodyReceived(_EventTuple):
    """Part of the request body (chunk framing removed)."""

    __slots__ = ()
    data: bytes

    def __new__(cls, data: bytes) -> BodyReceived:
        return tuple.__new__(cls, (data,))


class BodyEnded(_EventTuple):
    """The request body is complete (also sent for a request without a body)."""

    __slots__ = ()

    def __new__(cls) -> BodyEnded:
        return tuple.__new__(cls, ())


class RequestFailed(_EventTuple):
    """The request could not be parsed; answer with `HTTPServerProtocol.refuse`, then close.

    ``error.http_status`` is the status to answer with.
    """

    __slots__ = ()
    error: InvalidRequest

    def __new__(cls, error: InvalidRequest) -> RequestFailed:
        return tuple.__new__(cls, (error,))


HTTPEvent = HTTPRequestReceived | BodyReceived | BodyEnded | RequestFailed
"""Everything `HTTPServerProtocol.next_event` returns."""


def is_websocket_upgrade(request: Request) -> bool:
    """Whether ``request`` asks for an RFC 6455 WebSocket upgrade: ``Upgrade: websocket`` and a
    ``Sec-WebSocket-Key``.

    Such a request goes to the WebSocket handshake, which validates the rest. Other upgrade
    requests (the hixie-76 draft's, with ``Sec-WebSocket-Key1``) are plain HTTP requests to
    whatever answers the path.
    """
    upgrade = request.headers.get("Upgrade")
    return (
        upgrade is not None
        and "websocket" in upgrade.lower()
        and "Sec-WebSocket-Key" in request.headers
    )


def _body_framing(
    transfer_encodings: list[str], length_fields: list[str], http_version: str
) -> int | None:
    """Return the body's length, or None for chunked (RFC 9112 §6.3)."""
    if transfer_encodings:
        if length_fields:
            # §6.3 item 3: both present "ought to be handled as an error" (smuggling).
            raise InvalidRequest("a request with both Content-Length and Transfer-Encoding")
        if http_version == "1.0":
            # §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing; the client must send
            # Content-Length instead.
            raise InvalidRequest(
                "an HTTP/1.0 request must frame its body with Content-Length",
                HTTPStatus.LENGTH_REQUIRED,
            )
        codings = _tokens(transfer_encodings)
        if codings[-1:] != [_CHUNKED] or codings.count(_CHUNKED) > 1:
            # §6.3 item 4: without chunked last (and once, §7.1) the length is unknown.
            raise InvalidRequest("the request body's framing is not chunked, last and once")
        if len(codings) > 1:
            # §6.1: a server SHOULD answer 501 to a transfer coding it does not understand.
            raise InvalidRequest(
                f"unsupported transfer coding {codings[0]!r}", HTTPStatus.NOT_IMPLEMENTED
            )
        return None
    if not length_fields:
        return 0
    # RFC 9110 §8.6: a list of identical values may be taken as that value.
    values = {item.strip() for field in length_fields for item in field.split(",")}
    if len(values) != 1:
        raise InvalidRequest("conflicting Content-Length values")
    (value,) = values
    length = _length(value)
    if length is None:
        raise InvalidRequest(f"invalid Content-Length: {value[:20]!r}")
    return length


def _length(value: str) -> int | None:
    """A ``Content-Length`` value (RFC 9110 §8.6: digits only; more than 18 exceeds any body
    this side could accept), or None."""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _parse_head_python(
    buffer: bytearray, end: int, max_headers: int
) -> tuple[str, str, str, list[str], int, int, str | None]:
    """Parse the request head ``buffer[:end]`` (without its final empty line).

    Returns:
        The method, the target, the HTTP version (``"1.1"`` or ``"1.0"``), the fields as a flat
        list (name, value, name, value...; values without surrounding whitespace), how many
        ``Host`` fields there are, which framing fields are there (``_FRAMING_*`` bits), and
        the value of the ``Content-Length`` field if there is exactly one.

    Raises:
        InvalidRequest: the head is malformed (400), has another HTTP version (505), or too
            many fields (431).
    """
    # The head is decoded once and checked with one regular expression per line kind: fewer
    # Python operations per field than checking each line on its own.
    head = buffer[:end].decode("latin-1")
    request_line, _, fields = head.partition("\r\n")
    match = _REQUEST_LINE.fullmatch(request_line)
    if match is None:
        raise InvalidRequest(f"invalid request line: {request_line[:80].encode('latin-1')!r}")
    method, target, version = match.groups()
    if version == "HTTP/1.1":
        http_version = "1.1"
    elif version == "HTTP/1.0":
        http_version = "1.0"
    else:
        raise InvalidRequest(
            f"unsupported HTTP version {version[:16].encode('latin-1')!r}",
            HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
        )
    items: list[str] = []
    if fields:
        lines = fields.split("\r\n")
        if len(lines) > max_headers or not _FIELD_LINES.fullmatch(fields):
            # Refused: the line-by-line parser tells what is wrong.
            _parse_fields([line.encode("latin-1") for line in lines], max_headers, InvalidRequest)
        for line in lines:
            name, _, value = line.partition(":")
            items += (name, value.strip(" \t"))
    # Each field line follows a CRLF, and no value holds an LF (checked above): "\nname:" in
    # the lowered head finds the field "name".
    lowered = head.lower()
    framing = 0
    for bit, marker in _FRAMING_MARKERS:
        if marker in lowered:
            framing |= bit
    content_length = None
    if lowered.count("\ncontent-length:") == 1:
        for index in range(0, len(items), 2):
            if items[index].lower() == "content-length":
                content_length = items[index + 1]
    return method, target, http_version, items, lowered.count("\nhost:"), framing, content_length


def _tokens(values: list[str]) -> list[str]:
    """The comma-separated list elements of every value of a field, lowercased."""
    return [item.strip().lower() for value in values for item in value.split(",") if item.strip()]


class HTTPServerProtocol:
    """One server-side HTTP/1.x connection, sans-I/O.

    Feed the client's bytes to `receive_data` (end of stream: `receive_eof`) and pull events
    with `next_event` until it returns None. Answer each request with `respond`, or with
    `start_response`, `send_body`... `end_response`; each returns the bytes to write. When
    `must_close` is true after the response, close the transport.

    Args:
        max_header_bytes: largest request head (431 beyond); also bounds a chunk-size line
            and the trailer section.
        max_headers: largest number of header fields (431 beyond).
    """

    __slots__ = (
        "max_header_bytes",
        "max_headers",
        "_buffer",
        "_eof",
        "_request",
        "_head_method",
        "_http_version",
        "_keep_alive",
        "_body_remaining",
        "_body_chunked",
        "_chunked_state",
        "_body_done",
        "_response_state",
        "_response_chunked",
        "_response_has_body",
        "_continue_sent",
        "_failed",
    )

    def __init__(
        self,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self._buffer = bytearray()
        self._eof = False
        self._request: HTTPRequestReceived | None = None
        self._head_method = ""
        self._http_version = "1.1"
        self._keep_alive = True
        # Bytes of body (Content-Length) or of the current chunk's data still to come.
        self._body_remaining = 0
        self._body_chunked = False
        # Chunked framing: "size" (a chunk-size line next), "data" (_body_remaining bytes of
        # chunk data), "crlf" (the CRLF after chunk data), "trailers".
        self._chunked_state = "size"
        self._body_done = True
        self._response_state = "idle"  # idle, not_started, streaming, done
        self._response_chunked = False
        self._response_has_body = True
        self._continue_sent = False
        self._failed = False

    # --- receiving -----------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes received from the client."""
        self._buffer += data

    def receive_eof(self) -> None:
        """Note that the client closed its side of the stream."""
        self._eof = True

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet turned into events: a caller stops reading above a limit."""
        return len(self._buffer)

    @property
    def request(self) -> HTTPRequestReceived | None:
        """The request being answered, or None between requests."""
        return self._request

    @property
    def body_done(self) -> bool:
        """Whether the current request's body was received completely."""
        return self._body_done

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after this response."""
        return self._keep_alive and not self._failed

    @property
    def must_close(self) -> bool:
        """Whether the caller must close the transport once the response's bytes are written."""
        # keep_alive's own test, spelled out: the server asks after every response.
        return self._failed or (self._response_state == "done" and not self._keep_alive)

    def next_event(self) -> HTTPEvent | None:
        """Return the next event, or None until more data arrives (or the response ends).

        A new request is parsed only once the previous response ended: pipelined requests
        wait in the buffer.
        """
        if self._failed:
            return None
        try:
            if self._request is None:
                return self._next_head()
            if not self._body_done:
                return self._next_body_event()
        except InvalidRequest as error:
            self._failed = True
            self._buffer.clear()
            return RequestFailed(error)
        return None

    def _next_head(self) -> HTTPEvent | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0 and len(buffer) <= self.max_header_bytes:
            return None  # partial
        if end < 0 or end + 4 > self.max_header_bytes:
            _split_head(buffer, self.max_header_bytes, InvalidRequest)  # raises HeadersTooLarge
        # A plainly valid head is parsed in C; the Python parser takes anything else, and
        # refuses what is wrong with it.
        parsed = (
            None
            if parse_request_head is None
            else parse_request_head(buffer, end, self.max_headers)
        )
        if parsed is None:
            parsed = _parse_head_python(buffer, end, self.max_headers)
        method, target, http_version, items, hosts, framing, content_length = parsed
        del buffer[: end + 4]
        headers = Headers.__new__(Headers)
        headers._items = items
        # RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one Host.
        if http_version == "1.1" and hosts != 1:
            raise InvalidRequest("an HTTP/1.1 request needs exactly one Host header")
        body_length = (
            _length(content_length)
            if content_length is not None and not framing & _FRAMING_TRANSFER_ENCODING
            else None
        )
        if body_length is None:
            body_length = _body_framing(
                headers.get_all("transfer-encoding")
                if framing & _FRAMING_TRANSFER_ENCODING
                else [],
                headers.get_all("content-length") if framing & _FRAMING_CONTENT_LENGTH else [],
                http_version,
            )
        connection = _tokens(headers.get_all("connection")) if framing & _FRAMING_CONNECTION else []
        if http_version == "1.1":
            self._keep_alive = "close" not in connection
        else:  # RFC 9112 §9.3: HTTP/1.0 persists only when asked to
            self._keep_alive = "keep-alive" in connection
        expects_continue = (
            http_version == "1.1"
            and framing & _FRAMING_EXPECT != 0
            and "100-continue" in _tokens(headers.get_all("expect"))
        )
        self._http_version = http_version
        self._head_method = method
        self._body_remaining = body_length or 0
        self._body_chunked = body_length is None
        self._chunked_state = "size"
        self._body_done = False  # even without a body: BodyEnded comes
        self._response_state = "not_started"
        self._continue_sent = False
        request = Request(target, headers, method)
        self._request = HTTPRequestReceived(
            request,
            http_version,
            body_length,
            expects_continue and body_length != 0,
            framing & _FRAMING_UPGRADE != 0 and is_websocket_upgrade(request),
        )
        return self._request

    def _next_body_event(self) -> HTTPEvent | None:
        if not self._body_chunked:
            return self._next_length_event()
        buffer = self._buffer
        while True:
            state = self._chunked_state
            if state == "size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > self.max_header_bytes:
                        raise InvalidRequest("chunk-size line too long")
                    return self._need_data()
                size_text = bytes(buffer[:end]).split(b";", 1)[0].strip(b" \t")
                if (
                    not size_text
                    or len(size_text) > _MAX_CHUNK_SIZE_DIGITS
                    or not set(size_text) <= _HEX_DIGITS
                ):
                    raise InvalidRequest(f"invalid chunk size: {bytes(buffer[:end])[:40]!r}")
                del buffer[: end + 2]
                size = int(size_text, 16)
                if size == 0:
                    self._chunked_state = "trailers"
                else:
                    self._body_remaining = size
                    self._chunked_state = "data"
            elif state == "data":
                if not buffer:
                    return self._need_data()
                taken = min(len(buffer), self._body_remaining)
                data = bytes(buffer[:taken])
                del buffer[:taken]
                self._body_remaining -= taken
                if self._body_remaining == 0:
                    self._chunked_state = "crlf"
                return BodyReceived(data)
            elif state == "crlf":
                if len(buffer) < 2:
                    return self._need_data()
                if buffer[:2] != b"\r\n":
                    raise InvalidRequest("chunk data not followed by CRLF")
                del buffer[:2]
                self._chunked_state = "size"
            else:  # trailers: field lines up to an empty line, ignored (RFC 9112 §7.1.2)
                if buffer[:2] == b"\r\n":
                    del buffer[:2]
                    self._finish_body()
                    return BodyEnded()
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > self.max_header_bytes:
                        raise InvalidRequest("trailer section too long")
                    return self._need_data()
                if end + 4 > self.max_header_bytes:
                    raise InvalidRequest("trailer section too long")
                _parse_fields(bytes(buffer[:end]).split(b"\r\n"), self.max_headers, InvalidRequest)
                del buffer[: end + 4]
                self._finish_body()
                return BodyEnded()

    def take_body(self) -> bytes | None:
        """Return the whole body at once and end it, if it has all arrived and none of it was
        taken yet (a ``Content-Length`` body, or none); else None: pull events instead."""
        request = self._request
        remaining = self._body_remaining
        if (
            request is None
            or self._body_done
            or self._failed
            or remaining != request.body_length
            or len(self._buffer) < remaining
        ):
            return None
        buffer = self._buffer
        body = bytes(buffer[:remaining])
        del buffer[:remaining]
        self._finish_body()
        return body

    def _next_length_event(self) -> HTTPEvent | None:
        buffer = self._buffer
        if self._body_remaining == 0:
            self._finish_body()
            return BodyEnded()
        if not buffer:
            return self._need_data()
        taken = min(len(buffer), self._body_remaining)
        data = bytes(buffer[:taken])
        del buffer[:taken]
        self._body_remaining -= taken
        return BodyReceived(data)

    def _finish_body(self) -> None:
        self._body_done = True
        self._body_remaining = 0

    def _need_data(self) -> HTTPEvent | None:
        """None (wait for more data), unless the client has closed its side: then the body
        can never complete."""
        if self._eof:
            raise InvalidRequest("the client closed the connection in the middle of the body")
        return None

    # --- sending -------------------------------------------------------------------------

    def continue_response(self) -> bytes:
        """Return ``100 Continue`` if the client waits for it before sending its body, else b"".

        Call it when starting to read the body (RFC 9110 §10.1.1).
        """
        request = self._request
        if (
            request is None
            or not request.expects_continue
            or self._continue_sent
            or self._response_state != "not_started"
        ):
            return b""
        self._continue_sent = True
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    def respond(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
        """Return a whole response's bytes; ``Content-Length`` is added unless present.

        The body is left out for HEAD requests and for 204 and 304 (their length is kept).

        Raises:
            InvalidState: no request awaits a response, or the response has started.
        """
        self._check_response_state("not_started")
        has_content = self._begin_response(status)
        if has_content and self._keep_alive and self._http_version == "1.1":
            # The usual answer: its head up to Content-Length is the same for every response
            # with these status and fields, and made once.
            prefix, has_length, connection = _response_prefix(status, tuple(headers))
            if not has_length and "close" not in connection:
                self._response_chunked = False
                self._response_state = "done"
                if self._head_method == "HEAD":
                    return b"%bContent-Length: %d\r\n\r\n" % (prefix, len(body))
                return b"%bContent-Length: %d\r\n\r\n%b" % (prefix, len(body), body)
        head = self._head(status, headers, len(body) if has_content else None, streamed=False)
        self._response_state = "done"
        return head + body if has_content and self._head_method != "HEAD" else head

    def start_response(self, status: int, headers: Iterable[tuple[str, str]]) -> bytes:
        """Return a streamed response's head: chunked for HTTP/1.1 unless ``Content-Length``
        is given; for HTTP/1.0 the body ends when the connection closes.

        Raises:
            InvalidState: no request awaits a response, or the response has started.
        """
        self._check_response_state("not_started")
        has_content = self._begin_response(status)
        self._response_has_body = has_content and self._head_method != "HEAD"
        head = self._head(status, headers, None, streamed=has_content)
        self._response_state = "streaming"
        return head

    def send_body(self, data: bytes) -> bytes:
        """Return the bytes carrying part of a streamed body (b"" for an empty part, or for
        a response without a body).

        Raises:
            InvalidState: no streamed response is in progress.
        """
        self._check_response_state("streaming")
        if not data or not self._response_has_body:
            return b""
        if self._response_chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def end_response(self) -> bytes:
        """Return the bytes ending a streamed response.

        Raises:
            InvalidState: no streamed response is in progress.
        """
        self._check_response_state("streaming")
        self._response_state = "done"
        return b"0\r\n\r\n" if self._response_chunked else b""

    def leave_http(self, status: int, headers: Iterable[tuple[str, str]]) -> bytes:
        """Return a response head exactly as given, after which the connection carries
        another protocol (``101 Switching Protocols``): no framing, no further request.

        Raises:
            InvalidState: no request awaits a response, or the response has started.
        """
        self._check_response_state("not_started")
        self._keep_alive = False
        self._response_state = "done"
        lines = [_status_line(status), *(f"{name}: {value}\r\n" for name, value in headers)]
        return "".join(lines).encode("latin-1") + b"\r\n"

    def refuse(self, error: InvalidRequest) -> bytes:
        """Return the error response for a `RequestFailed`; then close the connection."""
        status = int(error.http_status)
        body = f"{status} {HTTPStatus(status).phrase}: {error}\n".encode()
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *error.headers,
        ]
        self._failed = True
        self._response_state = "done"
        lines = [_status_line(status), *(f"{name}: {value}\r\n" for name, value in headers)]
        return "".join(lines).encode("latin-1") + b"\r\n" + body

    def start_next_request(self) -> None:
        """Forget the finished exchange, so that `next_event` parses the next request.

        Raises:
            InvalidState: the response has not ended, or the connection must close.
        """
        if self._response_state != "done" or self._failed or not self._keep_alive:
            raise InvalidState("the connection cannot take another request now")
        self._request = None
        self._response_state = "idle"

    def discard_body(self) -> bool:
        """Skip the body bytes already received; return whether the body is now complete.

        A response that starts before the body was read must not leave it in the stream,
        where it would be taken for the next request: when the body cannot be skipped
        (it has not all arrived), the connection closes after the response.
        """
        if self._body_done or self._failed:
            return self._body_done
        if not self._body_chunked:
            # A Content-Length body (or none): skipped at once, as far as it has arrived.
            taken = min(len(self._buffer), self._body_remaining)
            del self._buffer[:taken]
            self._body_remaining -= taken
            if self._body_remaining == 0:
                self._finish_body()
            return self._body_done
        while not self._body_done and not self._failed:
            event = self.next_event()
            if event is None or isinstance(event, RequestFailed):
                break
        return self._body_done

    def take_buffered(self) -> bytes:
        """Return and forget every byte received and not parsed yet: what follows a WebSocket
        upgrade request belongs to the WebSocket connection."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def close_after_response(self) -> None:
        """Make this response the connection's last (the server is shutting down)."""
        self._keep_alive = False

    def _check_response_state(self, expected: str) -> None:
        if self._response_state != expected:
            raise InvalidState(f"the response is {self._response_state}, not {expected}")

    def _begin_response(self, status: int) -> bool:
        """Settle the request body and keep-alive before a response head; return whether
        the status carries content."""
        if not self._body_done and not self.discard_body():
            self._keep_alive = False
        return status >= 200 and status not in _NO_CONTENT_STATUSES

    def _head(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        content_length: int | None,
        *,
        streamed: bool,
    ) -> bytes:
        """Serialize a response head with the framing and ``Connection`` fields it needs.

        Args:
            content_length: added as ``Content-Length`` unless the headers have one.
            streamed: a body of unknown length follows unless the headers give its length.
        """
        fields = tuple(headers)
        block, has_length, connection = _field_block(fields)
        lines = [_status_line(status), block]
        self._response_chunked = False
        if has_length or (content_length is None and not streamed):
            pass  # framed by the caller's Content-Length, or no body at all
        elif content_length is not None:
            lines.append(f"Content-Length: {content_length}\r\n")
        elif self._http_version == "1.1":
            lines.append("Transfer-Encoding: chunked\r\n")
            self._response_chunked = self._response_has_body
        else:
            # RFC 9112 §6.1: no chunked to an HTTP/1.0 client; closing ends the body.
            self._keep_alive = False
            kept = [(name, value) for name, value in fields if name.lower() != "connection"]
            lines[1] = _field_block(tuple(kept))[0]
            connection = []
        if "close" in connection:
            self._keep_alive = False
        elif not self._keep_alive:
            lines.append("Connection: close\r\n")
        elif self._http_version == "1.0" and "keep-alive" not in connection:
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")


# Response heads are mostly the same few field lists (an endpoint's content type, its CORS
# fields): each is turned into text once. Bounded: emptied when full.
_FIELD_BLOCKS: dict[tuple[tuple[str, str], ...], tuple[str, bool, list[str]]] = {}
_RESPONSE_PREFIXES: dict[
    tuple[int, tuple[tuple[str, str], ...]], tuple[bytes, bool, list[str]]
] = {}
_MAX_CACHED = 256


def _field_block(fields: tuple[tuple[str, str], ...]) -> tuple[str, bool, list[str]]:
    """Return the response fields' lines, whether ``Content-Length`` is among them, and
    the tokens of their ``Connection`` fields (lowercased)."""
    try:
        return _FIELD_BLOCKS[fields]
    except KeyError:
        pass
    except TypeError:  # fields given as lists: cached as tuples
        return _field_block(_as_tuples(fields))
    lines = []
    has_length = False
    connection: list[str] = []
    for name, value in fields:
        lowered = name.lower()
        if lowered == "content-length":
            has_length = True
        elif lowered == "connection":
            connection.append(value)
        lines.append(f"{name}: {value}\r\n")
    return _remember(_FIELD_BLOCKS, fields, ("".join(lines), has_length, _tokens(connection)))


def _response_prefix(
    status: int, fields: tuple[tuple[str, str], ...]
) -> tuple[bytes, bool, list[str]]:
    """`_field_block` with the status line before the fields, as bytes."""
    try:
        return _RESPONSE_PREFIXES[status, fields]
    except KeyError:
        pass
    except TypeError:
        return _response_prefix(status, _as_tuples(fields))
    block, has_length, connection = _field_block(fields)
    prefix = (_status_line(status) + block).encode("latin-1")
    return _remember(_RESPONSE_PREFIXES, (status, fields), (prefix, has_length, connection))


def _as_tuples(fields: Iterable[Iterable[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in fields)


def _remember(cache: dict[_Key, _Value], key: _Key, value: _Value) -> _Value:
    """Put ``value`` in a bounded cache (emptied when full) and return it."""
    if len(cache) >= _MAX_CACHED:
        cache.clear()
    cache[key] = value
    return value


@functools.lru_cache(maxsize=64)
def _status_line(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n"
