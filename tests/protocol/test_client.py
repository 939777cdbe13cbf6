"""Tests for ClientProtocol: the client's opening handshake on bytes, and its role rules."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fullduplex.exceptions import (
    InvalidResponse,
    InvalidState,
    InvalidStatus,
    NegotiationError,
    PolicyViolation,
    ProtocolViolation,
)
from fullduplex.protocol import (
    BinaryReceived,
    ClientProtocol,
    CloseReceived,
    ConnectionFailed,
    Frame,
    FrameParser,
    HandshakeCompleted,
    Opcode,
    PingReceived,
    PongReceived,
    State,
    TextReceived,
)
from fullduplex.protocol.extensions.permessage_deflate import (
    ClientPerMessageDeflate,
    PerMessageDeflate,
)

from ..wire import encode_frame

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
BASE_LINES = ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Accept: {ACCEPT}"]


def response_bytes(
    *,
    status_line: str = "HTTP/1.1 101 Switching Protocols",
    drop: Sequence[str] = (),
    add: Sequence[str] = (),
) -> bytes:
    """The RFC 6455 §1.3 response, without the header lines starting with a name in ``drop``."""
    lines = [line for line in BASE_LINES if not line.startswith(tuple(drop))]
    return (
        status_line + "\r\n" + "".join(line + "\r\n" for line in [*lines, *add]) + "\r\n"
    ).encode("latin-1")


SWITCHING = response_bytes()


def make_client(**options: object) -> ClientProtocol:
    client = ClientProtocol("server.example.com", "/chat", key=KEY, **options)  # type: ignore[arg-type]
    client.data_to_send()
    return client


def open_client(**options: object) -> ClientProtocol:
    client = make_client(**options)
    client.receive_data(SWITCHING)
    [event] = client.events_received()
    assert isinstance(event, HandshakeCompleted)
    return client


def server_frame(opcode: int, payload: bytes = b"", **options: bool) -> bytes:
    return encode_frame(opcode, payload, **options)


def handshake_failure(client: ClientProtocol) -> Exception:
    [event] = client.events_received()
    assert isinstance(event, ConnectionFailed)
    assert client.failure is event.error
    assert client.state is State.CLOSED
    assert client.should_close_transport
    assert client.data_to_send() == []  # nothing to tell a server that refused us
    return event.error


# --- the request ---------------------------------------------------------------------------


def test_client_queues_upgrade_request_at_once() -> None:
    client = ClientProtocol("server.example.com", "/chat", key=KEY)
    assert client.state is State.CONNECTING
    assert client.data_to_send() == [
        b"GET /chat HTTP/1.1\r\n"
        b"Host: server.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
    ]


def test_client_offers_origin_subprotocols_extensions_and_extra_headers() -> None:
    client = ClientProtocol(
        "h:8080",
        "/?room=1",
        origin="https://h",
        subprotocols=["chat", "superchat"],
        extensions=[ClientPerMessageDeflate()],
        extra_headers=[("Authorization", "Bearer t")],
    )
    request = b"".join(client.data_to_send()).decode()
    assert request.startswith("GET /?room=1 HTTP/1.1\r\nHost: h:8080\r\n")
    assert request.endswith(
        "Origin: https://h\r\n"
        "Sec-WebSocket-Protocol: chat, superchat\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "Authorization: Bearer t\r\n\r\n"
    )
    assert client.request.headers["Sec-WebSocket-Key"] == client.key


def test_client_generates_fresh_key_per_connection() -> None:
    assert ClientProtocol("h").key != ClientProtocol("h").key


# --- the response: success -----------------------------------------------------------------


def test_client_completes_handshake_on_valid_101() -> None:
    client = make_client()
    client.receive_data(SWITCHING)
    [event] = client.events_received()
    assert isinstance(event, HandshakeCompleted)
    assert event.response.status == 101
    assert client.response is event.response
    assert client.state is State.OPEN
    assert (client.subprotocol, list(client.extensions)) == (None, [])
    assert client.data_to_send() == []


def test_client_parses_response_fed_one_byte_at_a_time() -> None:
    client = make_client()
    for index in range(len(SWITCHING) - 1):
        client.receive_data(SWITCHING[index : index + 1])
        assert client.events_received() == []
    client.receive_data(SWITCHING[-1:])
    assert [type(event) for event in client.events_received()] == [HandshakeCompleted]


def test_client_parses_frames_arriving_with_101_response() -> None:
    client = make_client()
    client.receive_data(
        SWITCHING + server_frame(Opcode.TEXT, b"welcome") + server_frame(Opcode.PING, b"?")[:1]
    )
    events = client.events_received()
    assert [type(event) for event in events] == [HandshakeCompleted, TextReceived]
    assert events[1] == TextReceived("welcome")
    client.receive_data(server_frame(Opcode.PING, b"?")[1:])
    assert client.events_received() == [PingReceived(b"?")]


def test_client_accepts_offered_subprotocol() -> None:
    client = make_client(subprotocols=["chat", "superchat"])
    client.receive_data(response_bytes(add=["Sec-WebSocket-Protocol: superchat"]))
    assert [type(event) for event in client.events_received()] == [HandshakeCompleted]
    assert client.subprotocol == "superchat"


def test_client_activates_permessage_deflate_and_inflates_messages() -> None:
    client = make_client(extensions=[ClientPerMessageDeflate()])
    client.receive_data(
        response_bytes(
            add=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12"]
        )
        # RFC 7692 §7.2.3.1: "Hello", compressed.
        + bytes([0xC1, 0x07])
        + bytes.fromhex("f248cdc9c90700")
    )
    assert [type(event) for event in client.events_received()] == [HandshakeCompleted, TextReceived]
    [extension] = client.extensions
    assert isinstance(extension, PerMessageDeflate)
    assert extension.local_max_window_bits == 12


def test_client_continues_without_extension_server_declined() -> None:
    client = make_client(extensions=[ClientPerMessageDeflate()])
    client.receive_data(SWITCHING)
    assert client.state is State.OPEN
    assert client.extensions == []


# --- the response: failure -----------------------------------------------------------------


def test_client_fails_on_non_101_and_reads_body_by_content_length() -> None:
    client = make_client()
    head = response_bytes(
        status_line="HTTP/1.1 403 Forbidden", drop=["Sec", "Upgrade", "Connection"]
    )
    head = head[:-2] + b"Content-Length: 13\r\n\r\n"
    client.receive_data(head + b"Origin not ")
    assert client.events_received() == []
    assert client.state is State.CONNECTING
    client.receive_data(b"allowed, and more after the body")
    error = handshake_failure(client)
    assert isinstance(error, InvalidStatus)
    assert (error.response.status, error.response.body) == (403, b"Origin not al")
    assert "HTTP 403" in str(error)


def test_client_fails_on_non_101_and_reads_body_until_eof_without_content_length() -> None:
    client = make_client()
    client.receive_data(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\r\nbusy, ")
    assert client.events_received() == []
    client.receive_data(b"try later")
    client.receive_eof()
    error = handshake_failure(client)
    assert isinstance(error, InvalidStatus)
    assert error.response.body == b"busy, try later"
    assert error.response.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    "status_line", ["HTTP/1.1 200 OK", "HTTP/1.1 100 Continue", "HTTP/1.1 302"]
)
def test_client_fails_on_upgrade_headers_with_status_other_than_101(status_line: str) -> None:
    client = make_client()
    client.receive_data(response_bytes(status_line=status_line, add=["Content-Length: 0"]))
    error = handshake_failure(client)
    assert isinstance(error, InvalidStatus)
    assert error.response.headers["Sec-WebSocket-Accept"] == ACCEPT


@pytest.mark.parametrize(
    ("drop", "add"),
    [
        pytest.param(
            ["Sec-WebSocket-Accept"], [f"Sec-WebSocket-Accept: {ACCEPT[::-1]}"], id="wrong-accept"
        ),
        pytest.param(["Sec-WebSocket-Accept"], [], id="missing-accept"),
        pytest.param([], [f"Sec-WebSocket-Accept: {ACCEPT}"], id="two-accepts"),
        pytest.param(["Upgrade"], [], id="missing-upgrade"),
        pytest.param(["Connection"], ["Connection: close"], id="connection-close"),
    ],
)
def test_client_fails_on_101_that_does_not_complete_handshake(
    drop: list[str], add: list[str]
) -> None:
    client = make_client()
    client.receive_data(response_bytes(drop=drop, add=add))
    error = handshake_failure(client)
    assert type(error) is InvalidResponse


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [([], ["chat"]), (["chat"], ["superchat"]), (["chat", "superchat"], ["chat", "superchat"])],
)
def test_client_fails_when_server_picks_unoffered_subprotocol(
    offered: list[str], chosen: list[str]
) -> None:
    client = make_client(subprotocols=offered)
    client.receive_data(
        response_bytes(add=[f"Sec-WebSocket-Protocol: {value}" for value in chosen])
    )
    assert isinstance(handshake_failure(client), NegotiationError)


@pytest.mark.parametrize(
    ("extensions", "header"),
    [
        pytest.param([], "permessage-deflate", id="nothing-offered"),
        pytest.param([ClientPerMessageDeflate()], "x-webkit-deflate-frame", id="other-extension"),
        pytest.param(
            [ClientPerMessageDeflate(client_max_window_bits=None)],
            "permessage-deflate; client_max_window_bits=10",
            id="unoffered-parameter",
        ),
        pytest.param([ClientPerMessageDeflate()], "permessage-deflate;", id="malformed"),
    ],
)
def test_client_fails_when_server_accepts_unoffered_extension(
    extensions: list[ClientPerMessageDeflate], header: str
) -> None:
    client = make_client(extensions=extensions)
    client.receive_data(response_bytes(add=[f"Sec-WebSocket-Extensions: {header}"]))
    assert isinstance(handshake_failure(client), NegotiationError)


def test_client_fails_on_malformed_response() -> None:
    client = make_client()
    client.receive_data(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    assert type(handshake_failure(client)) is InvalidResponse


def test_client_fails_on_oversize_response_head() -> None:
    client = make_client(max_header_bytes=100)
    client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n" + b"X: " + b"y" * 100)
    assert type(handshake_failure(client)) is InvalidResponse


def test_client_fails_when_server_hangs_up_during_handshake() -> None:
    client = make_client()
    client.receive_data(SWITCHING[:30])
    client.receive_eof()
    error = handshake_failure(client)
    assert type(error) is InvalidResponse
    assert "closed during the opening handshake" in str(error)


def test_client_ignores_bytes_after_failed_handshake() -> None:
    client = make_client()
    client.receive_data(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    handshake_failure(client)
    client.receive_data(server_frame(Opcode.TEXT, b"late"))
    client.receive_eof()
    assert client.events_received() == []


def test_client_refuses_to_send_before_handshake_completes() -> None:
    client = make_client()
    with pytest.raises(InvalidState):
        client.send_text("too early")


# --- masking (RFC 6455 §5.1, §5.3) -----------------------------------------------------------


def test_client_masks_every_frame_with_a_fresh_key() -> None:
    client = open_client()
    for _ in range(4):
        client.send_binary(b"same payload")
    data = b"".join(client.data_to_send())
    keys = {data[offset + 2 : offset + 6] for offset in range(0, len(data), 18)}
    assert len(keys) == 4
    parser = FrameParser(expect_masked=True)
    parser.feed(data)
    assert [parser.next_frame(100) for _ in range(4)] == [Frame(Opcode.BINARY, b"same payload")] * 4


def test_client_masks_its_pong() -> None:
    client = open_client()
    client.receive_data(server_frame(Opcode.PING, b"Hello"))
    data = b"".join(client.data_to_send())
    assert data[:2] == b"\x8a\x85"
    parser = FrameParser(expect_masked=True)
    parser.feed(data)
    assert parser.next_frame(100) == Frame(Opcode.PONG, b"Hello")


def test_client_rejects_masked_frame() -> None:
    client = open_client()
    client.receive_data(server_frame(Opcode.TEXT, b"masked", mask=b"\x01\x02\x03\x04"))  # type: ignore[arg-type]
    [event] = client.events_received()
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, ProtocolViolation)
    assert client.close_sent == (1002, "server frame is masked")


# --- closing: the client waits for the server to end TCP (RFC 6455 §7.1.1) ---------------------


def test_client_waits_for_server_to_close_transport_after_its_close() -> None:
    client = open_client()
    client.send_close(1000, "bye")
    client.data_to_send()
    assert client.close_expected()
    client.receive_data(server_frame(Opcode.CLOSE, b"\x03\xe8"))
    assert client.events_received() == [CloseReceived(1000)]
    assert not client.should_close_transport
    assert client.close_expected()
    client.receive_eof()
    assert client.state is State.CLOSED
    assert client.should_close_transport
    assert client.was_clean


def test_client_echoes_server_close_then_waits() -> None:
    client = open_client()
    client.receive_data(server_frame(Opcode.CLOSE, b"\x03\xe9restart"))
    assert client.events_received() == [CloseReceived(1001, "restart")]
    parser = FrameParser(expect_masked=True)
    for chunk in client.data_to_send():
        parser.feed(chunk)
    assert parser.next_frame(100) == Frame(Opcode.CLOSE, b"\x03\xe9")
    assert not client.should_close_transport
    assert client.close_expected()


# --- properties -----------------------------------------------------------------------------


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=5))
@settings(deadline=None)
def test_client_turns_arbitrary_frame_bytes_into_own_errors_only(
    data: bytes, cuts: list[int]
) -> None:
    client = make_client(max_message_size=200)
    client.receive_data(SWITCHING)
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        client.receive_data(data[start:end])
    client.receive_eof()
    events = client.events_received()
    assert isinstance(events[0], HandshakeCompleted)
    for event in events[1:]:
        assert isinstance(
            event,
            TextReceived
            | BinaryReceived
            | PingReceived
            | PongReceived
            | CloseReceived
            | ConnectionFailed,
        )
        if isinstance(event, ConnectionFailed):
            assert isinstance(event.error, ProtocolViolation | PolicyViolation)


@given(st.binary(max_size=300), st.booleans())
def test_client_turns_arbitrary_response_bytes_into_handshake_errors_only(
    data: bytes, eof: bool
) -> None:
    client = make_client(extensions=[ClientPerMessageDeflate()], subprotocols=["chat"])
    client.receive_data(data)
    if eof:
        client.receive_eof()
    for event in client.events_received():
        if isinstance(event, ConnectionFailed):
            assert isinstance(event.error, InvalidResponse | ProtocolViolation)
