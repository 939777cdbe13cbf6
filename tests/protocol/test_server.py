"""Tests for ServerProtocol: the server's opening handshake on bytes, and its role rules."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fullduplex.exceptions import (
    HeadersTooLarge,
    InvalidRequest,
    InvalidState,
    PolicyViolation,
    ProtocolViolation,
)
from fullduplex.protocol import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    FrameParser,
    Opcode,
    PingReceived,
    PongReceived,
    RequestReceived,
    Response,
    ServerNegotiation,
    ServerProtocol,
    State,
    TextReceived,
)
from fullduplex.protocol.extensions.header import format_extension_header, parse_extension_header
from fullduplex.protocol.extensions.permessage_deflate import (
    ClientPerMessageDeflate,
    PerMessageDeflate,
    ServerPerMessageDeflate,
)
from fullduplex.protocol.http11 import parse_response

from ..wire import encode_frame

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
BASE_LINES = [
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    f"Sec-WebSocket-Key: {KEY}",
    "Sec-WebSocket-Version: 13",
]
REQUEST = ("GET /chat HTTP/1.1\r\n" + "\r\n".join(BASE_LINES) + "\r\n\r\n").encode()


def request_bytes(
    *, request_line: str = "GET /chat HTTP/1.1", drop: Sequence[str] = (), add: Sequence[str] = ()
) -> bytes:
    """The RFC 6455 §1.3 request, without the header lines starting with a name in ``drop``."""
    lines = [line for line in BASE_LINES if not line.startswith(tuple(drop))]
    return (request_line + "\r\n" + "\r\n".join([*lines, *add]) + "\r\n\r\n").encode("latin-1")


def client_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False
) -> bytes:
    return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=os.urandom(4))


def received_request(server: ServerProtocol, data: bytes = REQUEST) -> RequestReceived:
    server.receive_data(data)
    [event] = server.events_received()
    assert isinstance(event, RequestReceived)
    return event


def response_sent(server: ServerProtocol) -> tuple[Response, bytes]:
    """The response the server queued, and whatever bytes follow it."""
    data = b"".join(server.data_to_send())
    parsed = parse_response(data, at_eof=True)
    assert parsed is not None
    response, consumed = parsed
    return response, data[consumed:]


def refused(
    data: bytes, negotiation: ServerNegotiation | None = None
) -> tuple[Response, InvalidRequest]:
    """Feed ``data`` and accept it if it parses; return the error response and the failure."""
    server = ServerProtocol(negotiation)
    server.receive_data(data)
    if server.state is State.CONNECTING:
        assert [type(event) for event in server.events_received()] == [RequestReceived]
        returned = server.accept()
        assert returned.status >= 400
    events = server.events_received()
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed)
    error = events[0].error
    assert isinstance(error, InvalidRequest)
    assert server.failure is error
    assert server.state is State.CLOSED
    assert server.should_close_transport
    response, rest = response_sent(server)
    assert rest == b""
    assert response.status == error.http_status
    options = [
        o.strip().lower() for v in response.headers.get_all("Connection") for o in v.split(",")
    ]
    assert "close" in options
    return response, error


# --- accepting -----------------------------------------------------------------------------


def test_server_reports_request_then_accepts_it_with_101() -> None:
    server = ServerProtocol()
    event = received_request(server)
    assert event.request.path == "/chat"
    assert event.request.headers["sec-websocket-key"] == KEY
    assert server.request is event.request
    assert server.data_to_send() == []

    assert server.state is State.CONNECTING
    returned = server.accept()
    assert server.state.name == "OPEN"
    assert server.data_to_send() == [
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    ]
    assert returned.status == 101
    assert (server.subprotocol, list(server.extensions)) == (None, [])
    assert not server.close_expected()


def test_server_parses_request_fed_one_byte_at_a_time() -> None:
    server = ServerProtocol()
    for index in range(len(REQUEST) - 1):
        server.receive_data(REQUEST[index : index + 1])
        assert server.events_received() == []
    server.receive_data(REQUEST[-1:])
    assert [type(event) for event in server.events_received()] == [RequestReceived]


def test_server_parses_request_fed_as_memoryviews_with_frames_behind() -> None:
    server = ServerProtocol()
    frame = client_frame(Opcode.TEXT, b"early")
    data = memoryview(REQUEST + frame)
    server.receive_data(data[:10])
    server.receive_data(data[10:])
    (event,) = server.events_received()
    assert isinstance(event, RequestReceived) and event.request.path == "/chat"
    server.accept()
    assert server.events_received() == [TextReceived("early")]


def test_server_adds_extra_headers_to_101() -> None:
    server = ServerProtocol()
    received_request(server)
    server.accept([("Server", "fullduplex"), ("Set-Cookie", "a=1")])
    response, _ = response_sent(server)
    assert response.headers.get_all("Set-Cookie") == ["a=1"]
    assert response.headers["Server"] == "fullduplex"


def test_server_parses_frames_sent_with_request_and_before_accept() -> None:
    server = ServerProtocol()
    server.receive_data(REQUEST + client_frame(Opcode.TEXT, b"early"))
    assert [type(event) for event in server.events_received()] == [RequestReceived]
    server.receive_data(client_frame(Opcode.PING, b"eager"))
    assert server.events_received() == []
    server.accept()
    assert server.events_received() == [TextReceived("early"), PingReceived(b"eager")]
    response, rest = response_sent(server)
    assert response.status == 101
    assert rest == b"\x8a\x05eager"  # the pong, after the 101


def test_server_accepts_header_names_in_any_case_and_token_lists() -> None:
    data = request_bytes(
        drop=["Upgrade", "Connection", "Host"],
        add=["upgrade: WebSocket", "CONNECTION: keep-alive, Upgrade", "hOsT: h"],
    )
    server = ServerProtocol()
    received_request(server, data)
    assert server.accept().status == 101


def test_server_sends_unmasked_frames() -> None:
    server = ServerProtocol()
    received_request(server)
    server.accept()
    server.data_to_send()
    server.send_text("hi")
    assert server.data_to_send() == [b"\x81\x02", b"hi"]


def test_server_rejects_unmasked_frame() -> None:
    server = ServerProtocol()
    received_request(server)
    server.accept()
    server.data_to_send()
    server.receive_data(encode_frame(Opcode.TEXT, b"plain"))
    [event] = server.events_received()
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, ProtocolViolation)
    assert "not masked" in str(event.error)
    assert server.close_sent == (1002, "client frame is not masked")
    assert b"".join(server.data_to_send()) == b"\x88\x1c\x03\xeaclient frame is not masked"


# --- refusing: HTTP-level errors, found while parsing -----------------------------------------


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(request_bytes(request_line="GET /chat HTTP/1.0"), 505, id="http-1.0"),
        pytest.param(request_bytes(request_line="GET /chat"), 400, id="no-version"),
        pytest.param(request_bytes(add=["X-Folded: a", " b"]), 400, id="obs-fold"),
        pytest.param(request_bytes(drop=["Host"], add=["Host : h"]), 400, id="space-before-colon"),
        pytest.param(
            b"GET / HTTP/1.1\r\n" + b"X: " + b"x" * 20000 + b"\r\n\r\n", 431, id="head-too-large"
        ),
        pytest.param(
            request_bytes(add=[f"X-{n}: {n}" for n in range(124)]), 431, id="too-many-headers"
        ),
    ],
)
def test_server_refuses_unparsable_request_before_accept(data: bytes, status: int) -> None:
    response, _ = refused(data)
    assert response.status == status
    assert response.body.startswith(b"Failed to open a WebSocket connection: ")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_server_refuses_oversize_head_before_it_ends() -> None:
    server = ServerProtocol(max_header_bytes=100)
    server.receive_data(b"GET / HTTP/1.1\r\n" + b"X: " + b"x" * 100)
    [event] = server.events_received()
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, HeadersTooLarge)
    assert response_sent(server)[0].status == 431
    server.receive_data(b"\r\n\r\n")  # ignored: the connection is closed
    assert server.events_received() == []
    assert server.data_to_send() == []


def test_server_accepts_exactly_max_headers() -> None:
    server = ServerProtocol(max_headers=5)
    received_request(server)
    assert server.accept().status == 101
    response, _ = refused(request_bytes(add=[f"X-{n}: {n}" for n in range(124)]))
    assert response.status == 431


# --- refusing: WebSocket-level errors, found by accept() --------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "header"),
    [
        pytest.param(
            request_bytes(request_line="POST /chat HTTP/1.1"), 405, ("Allow", "GET"), id="post"
        ),
        pytest.param(
            request_bytes(drop=["Upgrade"]), 426, ("Upgrade", "websocket"), id="no-upgrade"
        ),
        pytest.param(
            request_bytes(drop=["Connection"], add=["Connection: keep-alive"]),
            426,
            ("Connection", "Upgrade, close"),
            id="no-connection-upgrade",
        ),
        pytest.param(
            request_bytes(drop=["Sec-WebSocket-Version"], add=["Sec-WebSocket-Version: 8"]),
            426,
            ("Sec-WebSocket-Version", "13"),
            id="version-8",
        ),
        pytest.param(
            request_bytes(drop=["Sec-WebSocket-Version"]),
            426,
            ("Sec-WebSocket-Version", "13"),
            id="no-version",
        ),
        pytest.param(
            request_bytes(drop=["Sec-WebSocket-Key"], add=["Sec-WebSocket-Key: c2hvcnQ="]),
            400,
            None,
            id="key-not-16-bytes",
        ),
        pytest.param(
            request_bytes(
                drop=["Sec-WebSocket-Key"], add=["Sec-WebSocket-Key: ???????????????????????="]
            ),
            400,
            None,
            id="key-not-base64",
        ),
        pytest.param(
            request_bytes(drop=["Sec-WebSocket-Key"], add=["Sec-WebSocket-Key: " + "\xe9" * 24]),
            400,
            None,
            id="key-not-ascii",
        ),
        pytest.param(request_bytes(drop=["Sec-WebSocket-Key"]), 400, None, id="no-key"),
        pytest.param(request_bytes(drop=["Host"]), 400, None, id="no-host"),
    ],
)
def test_server_refuses_invalid_upgrade_request(
    data: bytes, status: int, header: tuple[str, str] | None
) -> None:
    response, _ = refused(data)
    assert response.status == status
    if header is not None:
        assert header in list(response.headers)


def test_server_refuses_second_accept_and_respond() -> None:
    server = ServerProtocol()
    received_request(server)
    server.accept()
    with pytest.raises(InvalidState):
        server.accept()
    with pytest.raises(InvalidState):
        server.respond(Response(200))


def test_server_refuses_accept_before_request() -> None:
    server = ServerProtocol()
    server.receive_data(REQUEST[:-2])
    with pytest.raises(InvalidState, match="no upgrade request"):
        server.accept()


def test_server_accepts_nothing_after_refusing() -> None:
    server = ServerProtocol()
    received_request(server, request_bytes(drop=["Host"]))
    server.accept()
    with pytest.raises(InvalidState):
        server.accept()


# --- origins -------------------------------------------------------------------------------


def test_server_refuses_unlisted_origin_with_403() -> None:
    negotiation = ServerNegotiation(origins=["https://good.example"])
    response, error = refused(request_bytes(add=["Origin: https://evil.example"]), negotiation)
    assert response.status == 403
    assert "https://evil.example" in str(error)


def test_server_refuses_missing_origin_unless_none_is_listed() -> None:
    response, _ = refused(REQUEST, ServerNegotiation(origins=["https://good.example"]))
    assert response.status == 403
    server = ServerProtocol(ServerNegotiation(origins=["https://good.example", None]))
    received_request(server)
    assert server.accept().status == 101


def test_server_accepts_listed_origin() -> None:
    server = ServerProtocol(ServerNegotiation(origins=["https://good.example"]))
    received_request(server, request_bytes(add=["Origin: https://good.example"]))
    assert server.accept().status == 101


# --- subprotocols and extensions -------------------------------------------------------------


def test_server_picks_subprotocol_from_its_list() -> None:
    server = ServerProtocol(ServerNegotiation(subprotocols=["superchat", "chat"]))
    received_request(server, request_bytes(add=["Sec-WebSocket-Protocol: chat, superchat"]))
    server.accept()
    assert server.subprotocol == "superchat"
    assert response_sent(server)[0].headers.get_all("Sec-WebSocket-Protocol") == ["superchat"]


def test_server_picks_subprotocol_with_selector() -> None:
    negotiation = ServerNegotiation(select_subprotocol=lambda offered: offered[1])
    server = ServerProtocol(negotiation)
    received_request(
        server, request_bytes(add=["Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b"])
    )
    server.accept()
    assert server.subprotocol == "b"
    assert response_sent(server)[0].headers["Sec-WebSocket-Protocol"] == "b"


def test_server_omits_subprotocol_header_when_none_matches() -> None:
    server = ServerProtocol(ServerNegotiation(subprotocols=["chat"]))
    received_request(server, request_bytes(add=["Sec-WebSocket-Protocol: other"]))
    server.accept()
    assert server.subprotocol is None
    assert "Sec-WebSocket-Protocol" not in response_sent(server)[0].headers


def test_server_fails_when_selector_picks_unoffered_subprotocol() -> None:
    negotiation = ServerNegotiation(select_subprotocol=lambda offered: "unoffered")
    response, error = refused(request_bytes(add=["Sec-WebSocket-Protocol: chat"]), negotiation)
    assert response.status == 400
    assert "'unoffered' was not offered" in str(error)


def test_server_negotiates_permessage_deflate_and_inflates_messages() -> None:
    # Threshold 0: "Hello" is compressed as in the RFC's example, not sent as it is.
    deflate = ServerPerMessageDeflate(compression_threshold=0)
    server = ServerProtocol(ServerNegotiation(extensions=[deflate]))
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
    received_request(server, request_bytes(add=[offer]))
    server.accept()
    assert response_sent(server)[0].headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
    [extension] = server.extensions
    assert isinstance(extension, PerMessageDeflate)

    # RFC 7692 §7.2.3.1: "Hello" compressed, then §7.2.3.2 again with the shared window.
    server.receive_data(client_frame(Opcode.TEXT, bytes.fromhex("f248cdc9c90700"), rsv1=True))
    server.receive_data(client_frame(Opcode.TEXT, bytes.fromhex("f200110000"), rsv1=True))
    server.receive_data(client_frame(Opcode.TEXT, b"plain"))
    assert server.events_received() == [
        TextReceived("Hello"),
        TextReceived("Hello"),
        TextReceived("plain"),
    ]

    server.send_binary(b"Hello")
    assert server.data_to_send() == [bytes([0xC2, 0x07]), bytes.fromhex("f248cdc9c90700")]


def test_server_declines_deflate_offer_it_cannot_honour() -> None:
    negotiation = ServerNegotiation(extensions=[ServerPerMessageDeflate(client_max_window_bits=10)])
    server = ServerProtocol(negotiation)
    received_request(server, request_bytes(add=["Sec-WebSocket-Extensions: permessage-deflate"]))
    server.accept()
    assert server.extensions == ()
    assert "Sec-WebSocket-Extensions" not in response_sent(server)[0].headers


def test_server_refuses_malformed_extension_offer_with_400() -> None:
    negotiation = ServerNegotiation(extensions=[ServerPerMessageDeflate()])
    response, _ = refused(
        request_bytes(add=['Sec-WebSocket-Extensions: permessage-deflate; x="a b"']), negotiation
    )
    assert response.status == 400


def test_server_answers_deflate_offer_so_that_the_client_accepts_it() -> None:
    factory = ClientPerMessageDeflate(server_max_window_bits=10, client_no_context_takeover=True)
    header = format_extension_header([(factory.name, factory.offer())])
    server = ServerProtocol(ServerNegotiation(extensions=[ServerPerMessageDeflate()]))
    received_request(server, request_bytes(add=[f"Sec-WebSocket-Extensions: {header}"]))
    server.accept()
    answer = response_sent(server)[0].headers["Sec-WebSocket-Extensions"]
    assert answer == "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
    [(_, parameters)] = parse_extension_header([answer])
    client_side = factory.accept(parameters)
    [server_side] = server.extensions
    assert isinstance(server_side, PerMessageDeflate)
    assert (client_side.local_no_context_takeover, server_side.remote_no_context_takeover) == (
        True,
        True,
    )
    assert (client_side.remote_max_window_bits, server_side.local_max_window_bits) == (10, 10)


# --- respond(): plain HTTP ------------------------------------------------------------------


def test_server_responds_with_plain_http_and_closes() -> None:
    server = ServerProtocol()
    received_request(server, b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n")
    server.respond(Response(200, [("Content-Type", "text/plain")], b"OK\n"))
    assert server.data_to_send() == [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        b"Content-Length: 3\r\n\r\nOK\n"
    ]
    assert server.state is State.CLOSED
    assert server.should_close_transport
    assert server.events_received() == []
    assert server.failure is None


def test_server_respond_keeps_given_connection_header() -> None:
    server = ServerProtocol()
    received_request(server)
    server.respond(Response(302, [("Location", "/elsewhere"), ("Connection", "keep-alive")]))
    response, _ = response_sent(server)
    assert response.headers.get_all("Connection") == ["keep-alive"]


def test_server_refuses_respond_before_request() -> None:
    with pytest.raises(InvalidState):
        ServerProtocol().respond(Response(200))


def test_server_goes_quietly_when_client_hangs_up_mid_request() -> None:
    server = ServerProtocol()
    server.receive_data(REQUEST[:20])
    server.receive_eof()
    assert server.state is State.CLOSED
    assert server.should_close_transport
    assert server.events_received() == []
    assert server.data_to_send() == []


# --- closing: the server ends the TCP connection (RFC 6455 §7.1.1) ---------------------------


def open_server(**options: int) -> ServerProtocol:
    server = ServerProtocol(**options)  # type: ignore[arg-type]
    received_request(server)
    server.accept()
    server.data_to_send()
    return server


def test_server_closes_transport_once_both_close_frames_crossed() -> None:
    server = open_server()
    server.send_close(1001)
    assert server.data_to_send() == [b"\x88\x02", b"\x03\xe9"]
    assert server.close_expected()
    assert not server.should_close_transport
    server.receive_data(client_frame(Opcode.CLOSE, b"\x03\xe9"))
    assert server.events_received() == [CloseReceived(1001)]
    assert server.should_close_transport
    server.receive_eof()
    assert server.state is State.CLOSED


def test_server_echoes_client_close_then_closes_transport() -> None:
    server = open_server()
    server.receive_data(client_frame(Opcode.CLOSE, b"\x03\xe8done"))
    assert server.events_received() == [CloseReceived(1000, "done")]
    assert server.data_to_send() == [b"\x88\x02", b"\x03\xe8"]
    assert server.should_close_transport
    server.receive_data(client_frame(Opcode.TEXT, b"ignored"))
    assert server.events_received() == []


# --- properties -----------------------------------------------------------------------------

ALLOWED_EVENTS = (
    TextReceived,
    BinaryReceived,
    PingReceived,
    PongReceived,
    CloseReceived,
    ConnectionFailed,
)


def check_garbage_outcome(server: ServerProtocol) -> None:
    for event in server.events_received():
        assert isinstance(event, ALLOWED_EVENTS)
        if isinstance(event, ConnectionFailed):
            assert isinstance(event.error, ProtocolViolation | PolicyViolation)
    frames = FrameParser(expect_masked=False)
    for chunk in server.data_to_send():
        frames.feed(chunk)
    while (frame := frames.next_frame(2**63 - 1)) is not None:
        assert frame.opcode in (Opcode.PONG, Opcode.CLOSE)


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=5), st.booleans())
@settings(deadline=None)
def test_server_turns_arbitrary_frame_bytes_into_own_errors_only(
    data: bytes, cuts: list[int], deflate: bool
) -> None:
    if deflate:
        server = ServerProtocol(
            ServerNegotiation(extensions=[ServerPerMessageDeflate()]), max_message_size=200
        )
        received_request(
            server, request_bytes(add=["Sec-WebSocket-Extensions: permessage-deflate"])
        )
    else:
        server = ServerProtocol(max_message_size=200, max_fragments=4)
        received_request(server)
    server.accept()
    server.data_to_send()
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        server.receive_data(data[start:end])
    server.receive_eof()
    check_garbage_outcome(server)


@st.composite
def masked_garbage_frames(draw: st.DrawFn) -> bytes:
    """Structurally plausible frames from a client: any header bits, masked, small payload."""
    first = draw(st.integers(0, 255))
    payload = draw(st.binary(max_size=40))
    mask = draw(st.binary(min_size=4, max_size=4))
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([first, 0x80 | len(payload)]) + mask + masked


@given(st.lists(masked_garbage_frames(), max_size=8), st.booleans())
@settings(deadline=None)
def test_server_turns_arbitrary_masked_frames_into_own_errors_only(
    frames: list[bytes], deflate: bool
) -> None:
    negotiation = ServerNegotiation(extensions=[ServerPerMessageDeflate()]) if deflate else None
    server = ServerProtocol(negotiation, max_message_size=100)
    received_request(server, request_bytes(add=["Sec-WebSocket-Extensions: permessage-deflate"]))
    server.accept()
    server.data_to_send()
    for frame in frames:
        server.receive_data(frame)
    check_garbage_outcome(server)


@given(st.sampled_from([b"", b"GET / HTTP/1.1\r\n", REQUEST[:-2]]), st.binary(max_size=300))
def test_server_answers_arbitrary_request_bytes_without_raising(prefix: bytes, data: bytes) -> None:
    server = ServerProtocol(max_header_bytes=300)
    server.receive_data(prefix + data)
    events = server.events_received()
    if server.state is State.CONNECTING and events:
        assert [type(event) for event in events] == [RequestReceived]
        server.accept()
        events = server.events_received()
    for event in events:
        assert isinstance(event, ALLOWED_EVENTS)
        if isinstance(event, ConnectionFailed):
            assert isinstance(event.error, InvalidRequest | ProtocolViolation)
    if server.failure is not None and server.state is State.CLOSED:
        assert response_sent(server)[0].status >= 400
