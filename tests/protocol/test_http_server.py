"""HTTPServerProtocol: request heads, body framing (Content-Length, chunked), keep-alive,
the refusal statuses RFC 9112 gives, and response framing; sans-I/O, bytes in and out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.exceptions import InvalidRequest, InvalidState
from fullduplex.protocol.http11 import Headers, parse_request
from fullduplex.protocol.http_server import (
    BodyEnded,
    BodyReceived,
    HTTPEvent,
    HTTPRequestReceived,
    HTTPServerProtocol,
    RequestFailed,
    is_websocket_upgrade,
)


def events(parser: HTTPServerProtocol) -> list[HTTPEvent]:
    found: list[HTTPEvent] = []
    while (event := parser.next_event()) is not None:
        found.append(event)
    return found


def body_of(found: list[HTTPEvent]) -> bytes:
    return b"".join(event.data for event in found if isinstance(event, BodyReceived))


def failure_status(data: bytes) -> int:
    parser = HTTPServerProtocol()
    parser.receive_data(data)
    found = events(parser)
    assert isinstance(found[-1], RequestFailed), found
    return int(found[-1].error.http_status)


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out = bytearray()
    rest = body
    for size in sizes:
        piece, rest = rest[:size], rest[size:]
        if piece:
            out += b"%x\r\n%b\r\n" % (len(piece), piece)
    if rest:
        out += b"%x\r\n%b\r\n" % (len(rest), rest)
    return bytes(out + b"0\r\n\r\n")


def test_server_receives_a_get_without_body() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    head, end = events(parser)
    assert isinstance(head, HTTPRequestReceived)
    assert head.request.path == "/a?b=1"
    assert head.request.method == "GET"
    assert head.http_version == "1.1"
    assert head.body_length == 0
    assert isinstance(end, BodyEnded)
    assert parser.keep_alive


def test_server_receives_a_content_length_body_in_pieces() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123")
    found = events(parser)
    parser.receive_data(b"456789GET")
    found += events(parser)
    assert body_of(found) == b"0123456789"
    assert isinstance(found[-1], BodyEnded)
    assert parser.buffered_bytes == 3  # the next request waits


def test_server_receives_a_chunked_body_with_extensions_and_trailers() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n!\r\n0\r\nExpires: never\r\n\r\n"
    )
    found = events(parser)
    assert body_of(found) == b"hello!"
    assert isinstance(found[-1], BodyEnded)
    assert parser.buffered_bytes == 0


def test_server_parses_the_next_request_only_after_the_response() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(events(parser)) == 2
    assert parser.next_event() is None
    parser.respond(200, Headers(), b"one")
    parser.start_next_request()
    head = parser.next_event()
    assert isinstance(head, HTTPRequestReceived) and head.request.path == "/2"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET /\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 20000 + b"\r\n\r\n", 431),
    ],
)
def test_server_refuses_requests_it_cannot_frame(request_bytes: bytes, status: int) -> None:
    assert failure_status(request_bytes) == status


def test_server_accepts_a_list_of_identical_content_lengths() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\nok")
    assert body_of(events(parser)) == b"ok"


def test_server_refuses_an_endless_chunk_size_line() -> None:
    parser = HTTPServerProtocol(max_header_bytes=1024)
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    events(parser)
    parser.receive_data(b"1" * 2000)
    (failed,) = events(parser)
    assert isinstance(failed, RequestFailed)
    refusal = parser.refuse(failed.error)
    assert refusal.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in refusal
    assert parser.must_close


def test_server_reports_a_body_cut_short_by_the_end_of_stream() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
    events(parser)
    parser.receive_eof()
    (failed,) = events(parser)
    assert isinstance(failed, RequestFailed)


def test_http_10_closes_unless_asked_to_keep_alive() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    events(parser)
    response = parser.respond(200, Headers(), b"x")
    assert b"Connection: close" in response
    assert parser.must_close

    parser = HTTPServerProtocol()
    parser.receive_data(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    events(parser)
    response = parser.respond(200, Headers(), b"x")
    assert b"Connection: keep-alive" in response
    assert not parser.must_close


def test_connection_close_from_the_client_ends_the_connection() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    events(parser)
    assert b"Connection: close" in parser.respond(200, Headers(), b"")
    assert parser.must_close
    with pytest.raises(InvalidState):
        parser.start_next_request()


def test_streamed_response_is_chunked_for_http_11() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    events(parser)
    head = parser.start_response(200, Headers([("Content-Type", "text/plain")]))
    assert b"Transfer-Encoding: chunked" in head
    assert parser.send_body(b"") == b""  # an empty chunk would end the body
    assert parser.send_body(b"hello") == b"5\r\nhello\r\n"
    assert parser.end_response() == b"0\r\n\r\n"
    assert not parser.must_close


def test_streamed_response_to_http_10_ends_with_the_connection() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    events(parser)
    head = parser.start_response(200, Headers())
    assert b"chunked" not in head and b"Connection: close" in head
    assert parser.send_body(b"hello") == b"hello"
    parser.end_response()
    assert parser.must_close


def test_head_response_keeps_the_length_and_drops_the_body() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    events(parser)
    response = parser.respond(200, Headers(), b"12345")
    assert response.endswith(b"Content-Length: 5\r\n\r\n")


def test_no_content_responses_have_no_length() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    events(parser)
    assert b"Content-Length" not in parser.respond(204, Headers())


def test_response_before_the_body_arrived_closes_the_connection() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
    parser.next_event()
    response = parser.respond(413, Headers(), b"")
    assert b"Connection: close" in response
    assert parser.must_close


def test_unread_body_already_received_is_skipped() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    parser.next_event()
    assert b"Connection: close" not in parser.respond(200, Headers(), b"")
    parser.start_next_request()
    head = parser.next_event()
    assert isinstance(head, HTTPRequestReceived) and head.request.method == "GET"


def test_continue_is_sent_once_for_a_client_that_expects_it() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    head = parser.next_event()
    assert isinstance(head, HTTPRequestReceived) and head.expects_continue
    assert parser.continue_response() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert parser.continue_response() == b""


def test_response_methods_check_the_state() -> None:
    parser = HTTPServerProtocol()
    with pytest.raises(InvalidState):
        parser.respond(200, Headers())
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    events(parser)
    with pytest.raises(InvalidState):
        parser.send_body(b"x")
    parser.respond(200, Headers())
    with pytest.raises(InvalidState):
        parser.respond(200, Headers())


@pytest.mark.parametrize(
    ("fields", "is_upgrade"),
    [
        (b"Upgrade: WebSocket\r\nSec-WebSocket-Key: x\r\n", True),
        (b"Upgrade: websocket\r\n", False),  # not RFC 6455: no key
        (b"Upgrade: WebSocket\r\nSec-WebSocket-Key1: 1 2\r\n", False),  # hixie-76
        (b"Upgrade: h2c\r\nSec-WebSocket-Key: x\r\n", False),
    ],
)
def test_websocket_upgrade_is_an_rfc_6455_request(fields: bytes, is_upgrade: bool) -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
    head = parser.next_event()
    assert isinstance(head, HTTPRequestReceived)
    assert is_websocket_upgrade(head.request) is is_upgrade


def feed_in_pieces(data: bytes, cuts: list[int]) -> tuple[list[HTTPEvent], HTTPServerProtocol]:
    parser = HTTPServerProtocol()
    found: list[HTTPEvent] = []
    start = 0
    for cut in sorted(cut % (len(data) + 1) for cut in cuts):
        parser.receive_data(data[start:cut])
        found += events(parser)
        start = max(start, cut)
    parser.receive_data(data[start:])
    found += events(parser)
    return found, parser


@given(
    body=st.binary(max_size=2000),
    sizes=st.lists(st.integers(1, 300), max_size=20),
    cuts=st.lists(st.integers(0, 10_000), max_size=30),
)
def test_chunked_body_parses_to_its_content_however_it_is_cut(
    body: bytes, sizes: list[int], cuts: list[int]
) -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(body, sizes)
        + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    found, parser = feed_in_pieces(data, cuts)
    assert body_of(found) == body
    assert isinstance(found[-1], BodyEnded)
    parser.respond(200, Headers())
    parser.start_next_request()
    head = parser.next_event()
    assert isinstance(head, HTTPRequestReceived) and head.request.path == "/next"


@given(body=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 10_000), max_size=30))
def test_length_body_parses_to_its_content_however_it_is_cut(body: bytes, cuts: list[int]) -> None:
    data = b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    found, _ = feed_in_pieces(data, cuts)
    assert body_of(found) == body
    assert isinstance(found[-1], BodyEnded)


@given(garbage=st.binary(max_size=400))
def test_garbage_after_a_chunked_head_only_yields_body_or_a_refusal(garbage: bytes) -> None:
    parser = HTTPServerProtocol(max_header_bytes=256)
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    parser.receive_data(garbage)
    parser.receive_eof()
    found = events(parser)
    assert all(
        isinstance(event, HTTPRequestReceived | BodyReceived | BodyEnded | RequestFailed)
        for event in found
    )
    assert sum(len(event.data) for event in found if isinstance(event, BodyReceived)) <= len(
        garbage
    )


@given(garbage=st.binary(max_size=400))
def test_garbage_request_only_yields_a_request_or_a_refusal(garbage: bytes) -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(garbage)
    for event in events(parser):
        if isinstance(event, RequestFailed):
            assert 400 <= event.error.http_status < 600


def test_leaving_http_sends_the_head_as_given_and_ends_http() -> None:
    parser = HTTPServerProtocol()
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\n\r\nrest")
    events(parser)
    head = parser.leave_http(101, Headers([("Upgrade", "x"), ("Connection", "Upgrade")]))
    assert head == b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"
    assert parser.must_close
    assert parser.take_buffered() == b"rest"


# Pieces of header lines: tokens, separators, and bytes a field line must not hold.
_FIELD_PIECES = [b"a", b"Host", b"content-length", b"1", b":", b" ", b"\t", b"\r", b"\n"]
_FIELD_PIECES += [b"\x7f", b"\x80", b"\x00", b"(", b"\xff"]


@given(
    lines=st.lists(st.lists(st.sampled_from(_FIELD_PIECES), max_size=8).map(b"".join), max_size=6)
)
def test_server_checks_header_fields_as_the_handshake_parser_does(lines: list[bytes]) -> None:
    # The server checks a head's fields all at once; parse_request, line by line. Both must
    # accept and refuse the same fields.
    data = b"GET / HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    try:
        parsed = parse_request(data)
    except InvalidRequest as error:
        assert failure_status(data) == error.http_status
        return
    assert parsed is not None
    parser = HTTPServerProtocol()
    parser.receive_data(data)
    event = parser.next_event()
    if isinstance(event, RequestFailed):
        # Refused for its framing (Host, Content-Length), never for its syntax.
        assert not str(event.error).startswith("invalid header")
    else:
        assert isinstance(event, HTTPRequestReceived)
        assert list(event.request.headers) == list(parsed[0].headers)
