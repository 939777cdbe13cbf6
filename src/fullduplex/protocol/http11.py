"""Just enough HTTP/1.1 for the opening handshake (RFC 9112 message syntax).

A WebSocket connection starts with one HTTP request and one response. This module parses and
writes those two messages: the request line or status line, header fields, and a response body
bounded by ``Content-Length``. It refuses what it cannot parse unambiguously (obsolete line
folding, whitespace before a colon, bare LF line endings) rather than guessing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus

from ..exceptions import HeadersTooLarge, InvalidRequest, InvalidResponse

__all__ = [
    "Headers",
    "Request",
    "Response",
    "parse_request",
    "parse_response",
    "serialize_request",
    "serialize_response",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_BODY_BYTES",
]

DEFAULT_MAX_HEADER_BYTES = 16 * 1024
"""Largest request or status line plus header block accepted by default."""

DEFAULT_MAX_HEADERS = 128
"""Largest number of header fields accepted by default."""

DEFAULT_MAX_BODY_BYTES = 64 * 1024
"""Largest body of a refused handshake's response a client keeps by default."""

# RFC 9110 §5.6.2: token = 1*tchar
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field-value = *field-content; visible characters, spaces, tabs, obs-text.
_FIELD_VALUE = re.compile(rb"[\x20-\x7e\x80-\xff\t]*")
_REQUEST_TARGET = re.compile(rb"[\x21-\x7e]+")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
# Fields whose values differ in every request: decoded, never shared (see `_shared_text`).
_UNIQUE_FIELDS = frozenset({b"sec-websocket-key"})


@functools.lru_cache(maxsize=256)
def _shared_text(raw: bytes) -> str:
    """Decode a request's method, target, field name or value to one ``str`` shared by every
    request that carries the same bytes.

    A server keeps each open connection's request: its ``Host``, ``Upgrade: websocket`` and
    the browsers' ``User-Agent`` are the same text thousands of times. The cache is bounded,
    so a client sending unique values only evicts entries.
    """
    return raw.decode("latin-1")


class Headers:
    """HTTP header fields: an ordered list of ``(name, value)`` pairs, names case-insensitive."""

    # One flat list, name, value, name, value...: a server keeps every open connection's
    # request headers, and a tuple per field would cost 56 bytes more each.
    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = [text for name, value in items for text in (name, value)]

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of ``name``, or ``default`` when absent."""
        name = name.lower()
        items = self._items
        for index in range(0, len(items), 2):
            if items[index].lower() == name:
                return items[index + 1]
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name``, in order."""
        name = name.lower()
        items = self._items
        return [items[i + 1] for i in range(0, len(items), 2) if items[i].lower() == name]

    def add(self, name: str, value: str) -> None:
        """Append one field."""
        self._items += (name, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[tuple[str, str]]:
        texts = iter(self._items)
        return zip(texts, texts, strict=True)

    def __len__(self) -> int:
        return len(self._items) // 2

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request: the client's side of the opening handshake.

    Attributes:
        path: the request target, e.g. ``/chat?room=1``.
        headers: every header field, in order.
        method: the request method; a WebSocket upgrade is always ``GET``.
    """

    path: str
    headers: Headers = field(default_factory=Headers)
    method: str = "GET"


class Response:
    """An HTTP response: the server's side of the opening handshake, or a plain HTTP answer.

    Args:
        status: the status code (101 accepts a WebSocket upgrade).
        headers: header fields, as `Headers` or ``(name, value)`` pairs; ``Content-Length``
            is added on serialization when absent.
        body: the response body (empty for 101).
        reason: the reason phrase; the standard phrase for ``status`` when empty.
    """

    __slots__ = ("status", "headers", "body", "reason")

    def __init__(
        self,
        status: int,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        reason: str = "",
    ) -> None:
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body
        self.reason = reason

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.headers!r}, body={self.body[:40]!r})"


def _split_head(
    buffer: bytes | bytearray,
    max_header_bytes: int,
    error: type[InvalidRequest] | type[InvalidResponse],
) -> tuple[list[bytes], int] | None:
    """Return the head's lines (without the final empty one) and its length, or None if partial."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > max_header_bytes:
            if error is InvalidRequest:
                raise HeadersTooLarge(f"request head exceeds {max_header_bytes} bytes")
            raise InvalidResponse(f"response head exceeds {max_header_bytes} bytes")
        return None
    if end + 4 > max_header_bytes:
        if error is InvalidRequest:
            raise HeadersTooLarge(f"request head exceeds {max_header_bytes} bytes")
        raise InvalidResponse(f"response head exceeds {max_header_bytes} bytes")
    return bytes(buffer[:end]).split(b"\r\n"), end + 4


def _parse_fields(
    lines: list[bytes],
    max_headers: int,
    error: type[InvalidRequest] | type[InvalidResponse],
    share_text: bool = False,
) -> Headers:
    if len(lines) > max_headers:
        if error is InvalidRequest:
            raise HeadersTooLarge(f"{len(lines)} header fields exceed the limit of {max_headers}")
        raise InvalidResponse(f"{len(lines)} header fields exceed the limit of {max_headers}")
    items: list[str] = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            # RFC 9112 §5.1: no whitespace between name and colon; §5.2: obs-fold is rejected.
            raise error(f"invalid header line: {line[:80]!r}")
        value = value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(value):
            raise error(f"invalid header value for {name.decode()}")
        if not share_text:
            items += (name.decode("ascii"), value.decode("latin-1"))
        elif name.lower() in _UNIQUE_FIELDS:
            items += (_shared_text(name), value.decode("latin-1"))
        else:
            items += (_shared_text(name), _shared_text(value))
    headers = Headers()
    headers._items = items[:]  # a copy without the spare room the appends left
    return headers


def parse_request(
    buffer: bytes | bytearray,
    *,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_headers: int = DEFAULT_MAX_HEADERS,
) -> tuple[Request, int] | None:
    """Parse an HTTP/1.1 request head at the start of ``buffer``.

    Returns:
        The request and the number of bytes it used, or None while the head is incomplete.

    Raises:
        InvalidRequest: the head is malformed (400) or not HTTP/1.1 (505).
        HeadersTooLarge: the head exceeds a limit (431).
    """
    head = _split_head(buffer, max_header_bytes, InvalidRequest)
    if head is None:
        return None
    lines, consumed = head
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _REQUEST_TARGET.fullmatch(parts[1]):
        raise InvalidRequest(f"invalid request line: {lines[0][:80]!r}")
    method, target, version = parts
    if version != b"HTTP/1.1":
        # RFC 6455 §4.1: the handshake is an HTTP/1.1 (or later) request.
        raise InvalidRequest(
            f"unsupported HTTP version {version[:16]!r}; WebSocket needs HTTP/1.1",
            HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
        )
    # The server keeps each request while its connection is open: share repeated text.
    headers = _parse_fields(lines[1:], max_headers, InvalidRequest, share_text=True)
    return Request(_shared_text(target), headers, _shared_text(method)), consumed


def parse_response(
    buffer: bytes | bytearray,
    *,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_headers: int = DEFAULT_MAX_HEADERS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    at_eof: bool = False,
) -> tuple[Response, int] | None:
    """Parse an HTTP/1.1 response at the start of ``buffer``.

    A 101 response has no body. Any other response's body is read up to ``Content-Length``
    (or to the end of the stream when ``at_eof``), truncated to ``max_body_bytes``.

    Returns:
        The response and the number of bytes it used, or None while it is incomplete.

    Raises:
        InvalidResponse: the response is malformed.
    """
    head = _split_head(buffer, max_header_bytes, InvalidResponse)
    if head is None:
        return None
    lines, consumed = head
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise InvalidResponse(f"invalid status line: {lines[0][:80]!r}")
    status = int(match.group(1))
    reason = (match.group(2) or b"").decode("latin-1")
    headers = _parse_fields(lines[1:], max_headers, InvalidResponse)
    if status == 101:
        return Response(status, headers, b"", reason), consumed
    length_field = headers.get("Content-Length")
    if length_field is not None:
        # RFC 9110 §8.6: 1*DIGIT, ASCII only; str.isdigit alone also accepts "²".
        if not (length_field.isascii() and length_field.isdigit()):
            raise InvalidResponse(f"invalid Content-Length: {length_field[:20]!r}")
        end = consumed + int(length_field)
        if len(buffer) < end and not at_eof:
            if len(buffer) - consumed < max_body_bytes:
                return None
            end = consumed + max_body_bytes
    elif at_eof:
        end = len(buffer)
    else:
        return None
    body = bytes(buffer[consumed : min(end, consumed + max_body_bytes)])
    return Response(status, headers, body, reason), min(end, len(buffer))


def serialize_request(request: Request) -> bytes:
    """Return the bytes of a request head (the handshake request has no body)."""
    lines = [f"{request.method} {request.path} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in request.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def serialize_response(response: Response) -> bytes:
    """Return the bytes of a response; ``Content-Length`` is added unless present, status 101,
    or the body is sent in chunks (``Transfer-Encoding``, which RFC 9112 §6.2 forbids it with)."""
    reason = response.reason
    if not reason:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
    headers = response.headers
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if (
        response.status != 101
        and "Content-Length" not in headers
        and "Transfer-Encoding" not in headers
    ):
        lines.append(f"Content-Length: {len(response.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body
