"""Tests for the HTTP/1.1 subset of the opening handshake: requests, responses, headers."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.exceptions import HeadersTooLarge, InvalidRequest, InvalidResponse
from fullduplex.protocol.http11 import (
    Headers,
    Request,
    Response,
    parse_request,
    parse_response,
    serialize_request,
    serialize_response,
)

REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def request_error(data: bytes, **limits: int) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_request(data, **limits)
    return info.value


# --- parse_request -------------------------------------------------------------------------


def test_parse_request_reads_request_line_and_headers_in_order() -> None:
    parsed = parse_request(REQUEST)
    assert parsed is not None
    request, consumed = parsed
    assert consumed == len(REQUEST)
    assert (request.method, request.path) == ("GET", "/chat?room=1")
    assert list(request.headers) == [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]


def test_parse_request_returns_none_until_head_is_complete() -> None:
    for end in range(len(REQUEST)):
        assert parse_request(REQUEST[:end]) is None


def test_parse_request_leaves_bytes_after_head_unconsumed() -> None:
    parsed = parse_request(REQUEST + b"\x81\x85frame")
    assert parsed is not None
    assert parsed[1] == len(REQUEST)


def test_parse_request_shares_repeated_text_between_requests() -> None:
    # A server keeps every open connection's request: equal text is one object.
    first, _ = parse_request(bytearray(REQUEST)) or pytest.fail("incomplete")
    second, _ = parse_request(bytes(REQUEST)) or pytest.fail("incomplete")
    assert first == second
    assert first.path is second.path and first.method is second.method
    for (name, value), (other_name, other_value) in zip(first.headers, second.headers, strict=True):
        assert name is other_name
        if name == "Sec-WebSocket-Key":
            # Unique in every real request: not worth a place in the shared cache.
            assert value is not other_value
        else:
            assert value is other_value


def test_parse_request_keeps_repeated_header_lines() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX-Token: one\r\nx-token: two\r\nX-TOKEN: three\r\n\r\n"
    parsed = parse_request(data)
    assert parsed is not None
    assert parsed[0].headers.get_all("X-Token") == ["one", "two", "three"]
    assert parsed[0].headers["x-token"] == "one"


def test_parse_request_strips_optional_whitespace_around_values() -> None:
    parsed = parse_request(b"GET / HTTP/1.1\r\nHost:\t  a.example \t\r\nEmpty:\r\n\r\n")
    assert parsed is not None
    assert list(parsed[0].headers) == [("Host", "a.example"), ("Empty", "")]


def test_parse_request_decodes_obs_text_values_as_latin_1() -> None:
    parsed = parse_request(b"GET / HTTP/1.1\r\nX-Name: caf\xe9\r\n\r\n")
    assert parsed is not None
    assert parsed[0].headers["X-Name"] == "café"


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2"])
def test_parse_request_refuses_other_http_versions_with_505(version: bytes) -> None:
    error = request_error(b"GET / " + version + b"\r\nHost: a\r\n\r\n")
    assert error.http_status == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED


@pytest.mark.parametrize(
    "line",
    [
        b"GET /",  # two parts
        b"GET / HTTP/1.1 extra",  # four parts
        b"GET  / HTTP/1.1",  # double space
        b"G(T / HTTP/1.1",  # method not a token
        b"GET /\x7f HTTP/1.1",  # target with a control character
        b"",
    ],
)
def test_parse_request_refuses_malformed_request_line_with_400(line: bytes) -> None:
    assert request_error(line + b"\r\nHost: a\r\n\r\n").http_status == HTTPStatus.BAD_REQUEST


@pytest.mark.parametrize(
    "header_lines",
    [
        pytest.param(b"X-Long: one\r\n two\r\n", id="obs-fold-space"),
        pytest.param(b"X-Long: one\r\n\ttwo: 2\r\n", id="obs-fold-tab"),
        pytest.param(b"Host : a\r\n", id="space-before-colon"),
        pytest.param(b"Host\t: a\r\n", id="tab-before-colon"),
        pytest.param(b"No colon here\r\n", id="no-colon"),
        pytest.param(b": empty name\r\n", id="empty-name"),
        pytest.param(b"X-Bad: a\x00b\r\n", id="nul-in-value"),
        pytest.param(b"X-Bad: a\rb\r\n", id="bare-cr-in-value"),
        pytest.param(b"X-Bad: a\nX-Smuggled: b\r\n", id="bare-lf-line-ending"),
        pytest.param(b"X-Bad: \x7f\r\n", id="del-in-value"),
    ],
)
def test_parse_request_refuses_ambiguous_header_lines_with_400(header_lines: bytes) -> None:
    error = request_error(b"GET / HTTP/1.1\r\nHost: a\r\n" + header_lines + b"\r\n")
    assert error.http_status == HTTPStatus.BAD_REQUEST
    assert not isinstance(error, HeadersTooLarge)


def test_parse_request_refuses_incomplete_head_over_limit_with_431() -> None:
    data = b"GET / HTTP/1.1\r\nX-Filler: " + b"x" * 200
    assert parse_request(data, max_header_bytes=len(data)) is None
    with pytest.raises(HeadersTooLarge) as info:
        parse_request(data, max_header_bytes=len(data) - 1)
    assert info.value.http_status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE


def test_parse_request_refuses_complete_head_over_limit_with_431() -> None:
    assert parse_request(REQUEST, max_header_bytes=len(REQUEST)) is not None
    with pytest.raises(HeadersTooLarge):
        parse_request(REQUEST, max_header_bytes=len(REQUEST) - 1)


def test_parse_request_refuses_too_many_headers_with_431() -> None:
    assert parse_request(REQUEST, max_headers=5) is not None
    with pytest.raises(HeadersTooLarge) as info:
        parse_request(REQUEST, max_headers=4)
    assert info.value.http_status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE


# --- parse_response ------------------------------------------------------------------------

SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)


def test_parse_response_reads_101_without_body_and_leaves_frames() -> None:
    parsed = parse_response(SWITCHING + b"\x81\x02hi")
    assert parsed is not None
    response, consumed = parsed
    assert consumed == len(SWITCHING)
    assert (response.status, response.reason, response.body) == (101, "Switching Protocols", b"")
    assert response.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_parse_response_accepts_status_line_without_reason() -> None:
    parsed = parse_response(b"HTTP/1.1 101\r\n\r\n")
    assert parsed is not None
    assert (parsed[0].status, parsed[0].reason) == (101, "")


def test_parse_response_waits_for_body_announced_by_content_length() -> None:
    data = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nno thanks"
    for end in range(len(data)):
        assert parse_response(data[:end]) is None
    parsed = parse_response(data + b"trailing")
    assert parsed is not None
    assert (parsed[0].status, parsed[0].body, parsed[1]) == (403, b"no thanks", len(data))


def test_parse_response_truncates_body_to_max_body_bytes() -> None:
    data = b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n" + b"x" * 20
    assert parse_response(data, max_body_bytes=30) is None
    parsed = parse_response(data, max_body_bytes=10)
    assert parsed is not None
    assert parsed[0].body == b"x" * 10


def test_parse_response_without_content_length_reads_body_until_eof() -> None:
    data = b"HTTP/1.1 404 Not Found\r\n\r\nmissing"
    assert parse_response(data) is None
    parsed = parse_response(data, at_eof=True)
    assert parsed is not None
    assert (parsed[0].status, parsed[0].body) == (404, b"missing")


def test_parse_response_with_short_body_at_eof_keeps_what_arrived() -> None:
    parsed = parse_response(b"HTTP/1.1 400 Bad\r\nContent-Length: 10\r\n\r\nabc", at_eof=True)
    assert parsed is not None
    assert parsed[0].body == b"abc"


@pytest.mark.parametrize(
    "status_line",
    [b"HTTP/1.1 1O1 Switching", b"HTTP/2 101", b"ICY 200 OK", b"HTTP/1.1 99 Low", b"HTTP/1.1  101"],
)
def test_parse_response_refuses_malformed_status_line(status_line: bytes) -> None:
    with pytest.raises(InvalidResponse, match="invalid status line"):
        parse_response(status_line + b"\r\n\r\n")


@pytest.mark.parametrize("value", [b"-1", b"1e3", b"0x10", b"\xb2", b"\xb9\xb9"])
def test_parse_response_refuses_invalid_content_length(value: bytes) -> None:
    with pytest.raises(InvalidResponse, match="invalid Content-Length"):
        parse_response(b"HTTP/1.1 400 Bad\r\nContent-Length: " + value + b"\r\n\r\n")


def test_parse_response_refuses_head_over_limits() -> None:
    with pytest.raises(InvalidResponse, match="exceeds"):
        parse_response(SWITCHING, max_header_bytes=len(SWITCHING) - 1)
    with pytest.raises(InvalidResponse, match="exceed the limit"):
        parse_response(SWITCHING, max_headers=2)
    with pytest.raises(InvalidResponse, match="exceeds"):
        parse_response(b"HTTP/1.1 101 " + b"x" * 100, max_header_bytes=50)


def test_parse_response_refuses_obs_fold() -> None:
    with pytest.raises(InvalidResponse, match="invalid header line"):
        parse_response(b"HTTP/1.1 101 OK\r\nUpgrade: web\r\n socket\r\n\r\n")


# --- serialization -------------------------------------------------------------------------


def test_serialize_request_writes_request_line_and_headers() -> None:
    request = Request("/chat", Headers([("Host", "a.example"), ("Upgrade", "websocket")]))
    assert serialize_request(request) == (
        b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\n\r\n"
    )


def test_serialize_response_adds_reason_and_content_length() -> None:
    response = Response(403, [("Content-Type", "text/plain")], b"nope")
    assert serialize_response(response) == (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope"
    )


def test_serialize_response_omits_content_length_for_101_and_keeps_given_one() -> None:
    assert serialize_response(Response(101)) == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
    given_length = Response(200, [("content-length", "0")])
    assert serialize_response(given_length) == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


def test_serialize_response_uses_given_or_unknown_reason() -> None:
    assert serialize_response(Response(200, reason="Fine")).startswith(b"HTTP/1.1 200 Fine\r\n")
    assert serialize_response(Response(599)).startswith(b"HTTP/1.1 599 Unknown\r\n")


def test_parse_response_inverts_serialize_response() -> None:
    response = Response(418, [("X-Tea", "earl grey")], b"short and stout")
    parsed = parse_response(serialize_response(response))
    assert parsed is not None
    assert (parsed[0].status, parsed[0].reason, parsed[0].body) == (
        418,
        "I'm a Teapot",
        b"short and stout",
    )
    assert list(parsed[0].headers) == [("X-Tea", "earl grey"), ("Content-Length", "15")]


# --- Headers -------------------------------------------------------------------------------


def test_headers_look_up_names_case_insensitively() -> None:
    headers = Headers([("Sec-WebSocket-Key", "k"), ("HOST", "h")])
    assert headers.get("sec-websocket-key") == "k"
    assert headers["host"] == "h"
    assert "Host" in headers
    assert "Origin" not in headers
    assert 42 not in headers
    assert headers.get("Origin") is None
    assert headers.get("Origin", "default") == "default"
    assert headers.get_all("origin") == []
    with pytest.raises(KeyError):
        headers["Origin"]


def test_headers_keep_order_length_and_equality() -> None:
    headers = Headers()
    headers.add("A", "1")
    headers.add("B", "2")
    headers.add("a", "3")
    assert list(headers) == [("A", "1"), ("B", "2"), ("a", "3")]
    assert len(headers) == 3
    assert headers.get_all("a") == ["1", "3"]
    assert headers == Headers([("A", "1"), ("B", "2"), ("a", "3")])
    assert headers != Headers([("A", "1")])
    assert headers != [("A", "1"), ("B", "2"), ("a", "3")]
    assert "('B', '2')" in repr(headers)


def test_response_accepts_headers_object_or_pairs() -> None:
    headers = Headers([("A", "1")])
    assert Response(200, headers).headers is headers
    assert Response(200, [("A", "1")]).headers == headers
    assert "200" in repr(Response(200, body=b"x" * 100))


# --- properties ----------------------------------------------------------------------------

tokens = st.text(
    alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    min_size=1,
    max_size=12,
)
field_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=20,
).map(lambda value: value.strip(" \t"))
targets = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)


@given(tokens, targets, st.lists(st.tuples(tokens, field_values), max_size=10))
def test_parse_request_inverts_serialize_request(
    method: str, path: str, fields: list[tuple[str, str]]
) -> None:
    request = Request(path, Headers(fields), method)
    assert parse_request(serialize_request(request)) == (request, len(serialize_request(request)))


@given(st.binary(max_size=300))
def test_parse_request_on_arbitrary_bytes_returns_none_request_or_invalid_request(
    data: bytes,
) -> None:
    try:
        parsed = parse_request(data, max_header_bytes=200, max_headers=5)
    except InvalidRequest:
        return
    if parsed is not None:
        request, consumed = parsed
        assert isinstance(request, Request)
        assert 0 < consumed <= len(data)


@given(st.binary(max_size=200))
def test_parse_request_on_arbitrary_header_block_returns_request_or_invalid_request(
    data: bytes,
) -> None:
    try:
        parsed = parse_request(b"GET / HTTP/1.1\r\n" + data + b"\r\n\r\n")
    except InvalidRequest:
        return
    assert parsed is not None
    assert isinstance(parsed[0], Request)


@given(st.binary(max_size=200), st.booleans())
def test_parse_response_on_arbitrary_bytes_returns_none_response_or_invalid_response(
    data: bytes, at_eof: bool
) -> None:
    for head in (b"", b"HTTP/1.1 400 Bad\r\n"):
        try:
            parsed = parse_response(head + data, at_eof=at_eof, max_body_bytes=50)
        except InvalidResponse:
            continue
        if parsed is not None:
            assert isinstance(parsed[0], Response)
            assert len(parsed[0].body) <= 50
