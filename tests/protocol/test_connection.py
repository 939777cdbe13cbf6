"""Tests for the state machine both roles share: messages, fragmentation, control frames,
closing, limits and UTF-8 (RFC 6455 §5-§8), driven with bytes.

Most tests run once per role: ``conn`` receives what its peer would send (masked frames for a
server, unmasked for a client) and the test checks the events, the bytes queued in reply, the
state and ``should_close_transport``. Role-specific rules (masking, who closes TCP) are also in
test_server.py and test_client.py.
"""

from __future__ import annotations

import codecs
import os
import struct
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fullduplex.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    FullDuplexError,
    InvalidState,
    PolicyViolation,
    ProtocolViolation,
)
from fullduplex.protocol import (
    BinaryReceived,
    ClientProtocol,
    CloseReceived,
    Connection,
    ConnectionFailed,
    Event,
    PingReceived,
    PongReceived,
    ServerNegotiation,
    ServerProtocol,
    State,
    TextReceived,
)
from fullduplex.protocol.connection import _Input, _Phase, _transitions
from fullduplex.protocol.extensions.permessage_deflate import (
    ClientPerMessageDeflate,
    ServerPerMessageDeflate,
)
from fullduplex.protocol.frames import (
    Frame,
    FrameParser,
    Opcode,
    parse_close_payload,
    serialize_message,
)

from ..wire import encode_frame

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)
ROLES = ["server", "client"]
RESERVED_OPCODES = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]
VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_CLOSE_CODES += [3000, 3999, 4000, 4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]
UNLIMITED = 2**63 - 1


def open_connection(role: str, **options: int | None) -> Connection:
    """A connection of ``role`` past its opening handshake, with nothing queued."""
    conn: Connection
    if role == "server":
        server = ServerProtocol(**options)  # type: ignore[arg-type]
        server.receive_data(REQUEST)
        server.events_received()
        server.accept()
        conn = server
    else:
        conn = ClientProtocol("server.example.com", "/chat", key=KEY, **options)  # type: ignore[arg-type]
        conn.receive_data(SWITCHING)
        conn.events_received()
    assert conn.state is State.OPEN
    conn.data_to_send()
    return conn


@pytest.fixture(params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def conn(role: str) -> Connection:
    return open_connection(role)


def from_peer(conn: Connection, opcode: int, payload: bytes = b"", **options: bool) -> bytes:
    """The bytes of a frame as ``conn``'s peer sends it: masked when ``conn`` is a server."""
    mask = None if conn.is_client else os.urandom(4)
    return encode_frame(opcode, payload, mask=mask, **options)


def raw_from_peer(conn: Connection, first_byte: int, payload: bytes = b"") -> bytes:
    """A frame with any first byte (FIN, RSV1-3, opcode), whatever the opcode."""
    assert len(payload) < 126
    if conn.is_client:
        return bytes([first_byte, len(payload)]) + payload
    mask = os.urandom(4)
    return (
        bytes([first_byte, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def sent_frames(conn: Connection) -> list[Frame]:
    """The frames ``conn`` queued, checked to be masked by a client only (RFC 6455 §5.1)."""
    parser = FrameParser(expect_masked=conn.is_client)
    for chunk in conn.data_to_send():
        parser.feed(chunk)
    frames = []
    while (frame := parser.next_frame(UNLIMITED)) is not None:
        frames.append(frame)
    assert parser.buffered == 0
    return frames


def expect_failure(conn: Connection, code: int) -> list[Event]:
    """Check that ``conn`` failed with ``code`` and sent a close frame; return the other events."""
    events = conn.events_received()
    failures = [event for event in events if isinstance(event, ConnectionFailed)]
    assert len(failures) == 1, events
    error = failures[0].error
    assert getattr(error, "close_code", None) == code, error
    frames = sent_frames(conn)
    assert frames[-1].opcode == Opcode.CLOSE
    assert parse_close_payload(frames[-1].payload)[0] == code
    assert conn.close_sent is not None and conn.close_sent[0] == code
    assert conn.failure is error
    assert conn.state is State.CLOSING
    return [event for event in events if not isinstance(event, ConnectionFailed)]


# --- data messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opcode", "payload", "event"),
    [
        (Opcode.TEXT, "café ☕ 𝄞".encode(), TextReceived("café ☕ 𝄞")),
        (Opcode.TEXT, b"", TextReceived("")),
        (Opcode.BINARY, b"\x00\xff\x80", BinaryReceived(b"\x00\xff\x80")),
        (Opcode.BINARY, b"", BinaryReceived(b"")),
    ],
)
def test_connection_receives_single_frame_message(
    conn: Connection, opcode: int, payload: bytes, event: Event
) -> None:
    conn.receive_data(from_peer(conn, opcode, payload))
    assert conn.events_received() == [event]
    assert conn.data_to_send() == []
    assert conn.state is State.OPEN


@pytest.mark.parametrize("size", [125, 126, 65535, 65536])
def test_connection_receives_message_at_length_encoding_boundaries(
    conn: Connection, size: int
) -> None:
    payload = os.urandom(size)
    conn.receive_data(from_peer(conn, Opcode.BINARY, payload))
    assert conn.events_received() == [BinaryReceived(payload)]


def test_connection_receives_message_fed_one_byte_at_a_time(conn: Connection) -> None:
    data = from_peer(conn, Opcode.TEXT, "hé".encode() * 100)
    for index in range(len(data)):
        conn.receive_data(data[index : index + 1])
        if index < len(data) - 1:
            assert conn.events_received() == []
    assert conn.events_received() == [TextReceived("hé" * 100)]


def test_connection_receives_several_messages_in_one_chunk(conn: Connection) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"one")
        + from_peer(conn, Opcode.BINARY, b"two")
        + from_peer(conn, Opcode.TEXT, b"3")
    )
    assert conn.events_received() == [
        TextReceived("one"),
        BinaryReceived(b"two"),
        TextReceived("3"),
    ]


@pytest.mark.parametrize(
    ("opcode", "event_type"), [(Opcode.TEXT, TextReceived), (Opcode.BINARY, BinaryReceived)]
)
def test_connection_reassembles_fragmented_message(
    conn: Connection, opcode: int, event_type: type[TextReceived] | type[BinaryReceived]
) -> None:
    conn.receive_data(from_peer(conn, opcode, b"Hel", fin=False))
    conn.receive_data(from_peer(conn, Opcode.CONTINUATION, b"", fin=False))
    conn.receive_data(from_peer(conn, Opcode.CONTINUATION, b"lo", fin=False))
    assert conn.events_received() == []
    conn.receive_data(from_peer(conn, Opcode.CONTINUATION, b" world"))
    expected = "Hello world" if opcode == Opcode.TEXT else b"Hello world"
    assert conn.events_received() == [event_type(expected)]  # type: ignore[arg-type]


def test_connection_reassembles_message_of_empty_fragments(conn: Connection) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"", fin=False) + from_peer(conn, Opcode.CONTINUATION, b"")
    )
    assert conn.events_received() == [TextReceived("")]


def test_connection_handles_control_frames_interleaved_in_fragmented_message(
    conn: Connection,
) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"frag", fin=False)
        + from_peer(conn, Opcode.PING, b"ping 1")
        + from_peer(conn, Opcode.CONTINUATION, b"men", fin=False)
        + from_peer(conn, Opcode.PONG, b"pong")
        + from_peer(conn, Opcode.PING, b"ping 2")
        + from_peer(conn, Opcode.CONTINUATION, b"ted")
    )
    assert conn.events_received() == [
        PingReceived(b"ping 1"),
        PongReceived(b"pong"),
        PingReceived(b"ping 2"),
        TextReceived("fragmented"),
    ]
    assert sent_frames(conn) == [Frame(Opcode.PONG, b"ping 1"), Frame(Opcode.PONG, b"ping 2")]


def test_connection_receives_next_message_after_fragmented_one(conn: Connection) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.BINARY, b"a", fin=False) + from_peer(conn, Opcode.CONTINUATION, b"b")
    )
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"c"))
    assert conn.events_received() == [BinaryReceived(b"ab"), TextReceived("c")]


# --- framing errors (RFC 6455 §5.2, §5.4, §5.5) -----------------------------------------------


def test_connection_fails_on_continuation_without_message(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.CONTINUATION, b"orphan"))
    expect_failure(conn, 1002)


def test_connection_fails_on_continuation_after_finished_message(conn: Connection) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"done") + from_peer(conn, Opcode.CONTINUATION, b"more")
    )
    assert expect_failure(conn, 1002) == [TextReceived("done")]


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_connection_fails_on_new_message_during_fragmented_message(
    conn: Connection, opcode: int
) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"first", fin=False) + from_peer(conn, opcode, b"second")
    )
    assert expect_failure(conn, 1002) == []


@pytest.mark.parametrize("opcode", RESERVED_OPCODES)
def test_connection_fails_on_reserved_opcode(conn: Connection, opcode: int) -> None:
    conn.receive_data(raw_from_peer(conn, 0x80 | opcode, b"??"))
    expect_failure(conn, 1002)


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10], ids=["rsv1", "rsv2", "rsv3"])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.CLOSE])
def test_connection_fails_on_rsv_bit_without_extension(
    conn: Connection, rsv: int, opcode: int
) -> None:
    conn.receive_data(raw_from_peer(conn, 0x80 | rsv | opcode, b"\x03\xe8"))
    assert expect_failure(conn, 1002) == []


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_connection_fails_on_control_frame_over_125_bytes(conn: Connection, opcode: int) -> None:
    conn.receive_data(from_peer(conn, opcode, b"\x03\xe8" + b"x" * 124))
    assert expect_failure(conn, 1002) == []


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_connection_fails_on_fragmented_control_frame(conn: Connection, opcode: int) -> None:
    conn.receive_data(
        from_peer(conn, opcode, b"", fin=False) + from_peer(conn, Opcode.CONTINUATION, b"")
    )
    assert expect_failure(conn, 1002) == []


# --- ping and pong (RFC 6455 §5.5.2, §5.5.3) -------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(125))])
def test_connection_answers_ping_with_pong_carrying_same_payload(
    conn: Connection, payload: bytes
) -> None:
    conn.receive_data(from_peer(conn, Opcode.PING, payload))
    assert conn.events_received() == [PingReceived(payload)]
    assert sent_frames(conn) == [Frame(Opcode.PONG, payload)]


def test_connection_answers_each_ping_in_order(conn: Connection) -> None:
    conn.receive_data(b"".join(from_peer(conn, Opcode.PING, bytes([n])) for n in range(3)))
    assert sent_frames(conn) == [Frame(Opcode.PONG, bytes([n])) for n in range(3)]


def test_connection_reports_pong_without_answering(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.PONG, b"beat"))
    assert conn.events_received() == [PongReceived(b"beat")]
    assert conn.data_to_send() == []


# --- closing initiated by the peer (RFC 6455 §5.5.1, §7) --------------------------------------


@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_connection_echoes_valid_close_code(conn: Connection, code: int) -> None:
    conn.receive_data(from_peer(conn, Opcode.CLOSE, close_payload(code, "bye ✓")))
    assert conn.events_received() == [CloseReceived(code, "bye ✓")]
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, close_payload(code))]
    assert conn.state is State.CLOSING
    assert (conn.close_code, conn.close_reason) == (code, "bye ✓")
    assert conn.was_clean


def test_connection_echoes_empty_close_as_empty_close(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.CLOSE, b""))
    assert conn.events_received() == [CloseReceived(1005, "")]
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, b"")]
    assert conn.close_code == 1005
    assert isinstance(conn.closed_error(), ConnectionClosedOK)


def test_server_closes_transport_after_echoing_close() -> None:
    server = open_connection("server")
    server.receive_data(from_peer(server, Opcode.CLOSE, close_payload(1000)))
    assert server.should_close_transport


def test_client_waits_for_server_to_close_transport_after_echoing_close() -> None:
    client = open_connection("client")
    client.receive_data(from_peer(client, Opcode.CLOSE, close_payload(1000)))
    assert not client.should_close_transport
    assert client.close_expected()  # the I/O layer arms its timer (RFC 6455 §7.1.1)
    client.receive_eof()
    assert client.state is State.CLOSED
    assert client.should_close_transport
    assert isinstance(client.closed_error(), ConnectionClosedOK)


@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
def test_connection_fails_on_invalid_close_code(conn: Connection, code: int) -> None:
    conn.receive_data(from_peer(conn, Opcode.CLOSE, close_payload(code)))
    assert expect_failure(conn, 1002) == []
    # The peer sent its close frame and expects nothing more: don't wait for another one.
    assert conn.should_close_transport


def test_connection_fails_on_one_byte_close_payload(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.CLOSE, b"\x03"))
    expect_failure(conn, 1002)
    assert conn.should_close_transport


@pytest.mark.parametrize("reason", [b"\xff", b"\xce\xba\xe1\xbd", b"\xed\xa0\x80"])
def test_connection_fails_on_close_reason_with_invalid_utf8(
    conn: Connection, reason: bytes
) -> None:
    conn.receive_data(from_peer(conn, Opcode.CLOSE, b"\x03\xe8" + reason))
    expect_failure(conn, 1007)
    assert conn.should_close_transport


def test_connection_drops_fragmented_message_when_close_arrives(conn: Connection) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"unfinished", fin=False)
        + from_peer(conn, Opcode.CLOSE, close_payload(1001))
    )
    assert conn.events_received() == [CloseReceived(1001, "")]


def test_connection_ignores_data_after_peer_close(conn: Connection) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.CLOSE, close_payload(1000)) + from_peer(conn, Opcode.TEXT, b"late")
    )
    assert conn.events_received() == [CloseReceived(1000, "")]


# --- closing initiated by this side ----------------------------------------------------------


def test_connection_sends_close_and_waits_for_peer(conn: Connection) -> None:
    conn.send_close(1001, "going away")
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, close_payload(1001, "going away"))]
    assert conn.state is State.CLOSING
    assert conn.close_expected()
    assert not conn.should_close_transport
    assert conn.close_code is None


def test_server_closes_transport_when_client_answers_its_close() -> None:
    server = open_connection("server")
    server.send_close()
    assert sent_frames(server) == [Frame(Opcode.CLOSE, close_payload(1000))]
    assert not server.should_close_transport
    server.receive_data(from_peer(server, Opcode.CLOSE, close_payload(1000)))
    assert server.events_received() == [CloseReceived(1000, "")]
    assert server.data_to_send() == []  # no second close frame
    assert server.should_close_transport
    assert server.was_clean


def test_client_waits_for_server_to_close_transport_after_closing_handshake() -> None:
    client = open_connection("client")
    client.send_close()
    client.data_to_send()
    client.receive_data(from_peer(client, Opcode.CLOSE, close_payload(1000)))
    assert client.events_received() == [CloseReceived(1000, "")]
    assert client.data_to_send() == []  # no second close frame
    assert not client.should_close_transport
    assert client.close_expected()
    client.receive_eof()
    assert (client.state, client.should_close_transport, client.was_clean) == (
        State.CLOSED,
        True,
        True,
    )


def test_client_ignores_a_second_close_frame_while_waiting_for_the_server_to_hang_up() -> None:
    client = open_connection("client")
    client.receive_data(from_peer(client, Opcode.CLOSE, close_payload(1001, "first")))
    assert client.events_received() == [CloseReceived(1001, "first")]
    client.data_to_send()
    client.receive_data(from_peer(client, Opcode.CLOSE, close_payload(1000, "second")))
    assert client.events_received() == []
    assert (client.close_code, client.close_reason) == (1001, "first")
    assert not client.should_close_transport


def test_connection_refuses_a_move_its_table_does_not_list(conn: Connection) -> None:
    with pytest.raises(AssertionError, match="no move from open on handshake succeeded"):
        conn._enter(_Input.HANDSHAKE_SUCCEEDED)
    assert conn.state is State.OPEN


@pytest.mark.parametrize("is_client", [True, False])
def test_every_closing_phase_is_reachable_and_ends_closed_on_eof(is_client: bool) -> None:
    table = _transitions(is_client=is_client)
    reached = {_Phase.CONNECTING}
    frontier = [_Phase.CONNECTING]
    while frontier:
        for phase in table[frontier.pop()].values():
            if phase not in reached:
                reached.add(phase)
                frontier.append(phase)
    awaits_eof = {_Phase.AWAITING_EOF} if is_client else set()
    assert reached == set(_Phase) - ({_Phase.AWAITING_EOF} - awaits_eof)
    assert all(moves[_Input.EOF] is _Phase.CLOSED for moves in table.values())


def test_connection_still_receives_messages_after_sending_close(conn: Connection) -> None:
    conn.send_close()
    conn.data_to_send()
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"in flight") + from_peer(conn, Opcode.PING, b"p")
    )
    assert conn.events_received() == [TextReceived("in flight"), PingReceived(b"p")]
    assert conn.data_to_send() == []  # no pong after our close frame


def test_connection_refuses_to_send_after_close(conn: Connection) -> None:
    conn.send_close()
    with pytest.raises(InvalidState):
        conn.send_text("x")
    with pytest.raises(InvalidState):
        conn.send_binary(b"x")
    with pytest.raises(InvalidState):
        conn.send_ping()
    with pytest.raises(InvalidState):
        conn.send_pong()
    with pytest.raises(InvalidState):
        conn.send_close()


def test_connection_reports_no_close_code_while_open(conn: Connection) -> None:
    assert (conn.close_code, conn.close_reason, conn.was_clean) == (None, "", False)


def test_connection_reports_abnormal_closure_on_eof_without_close(conn: Connection) -> None:
    conn.receive_eof()
    assert conn.state is State.CLOSED
    assert conn.should_close_transport
    assert (conn.close_code, conn.close_reason, conn.was_clean) == (1006, "", False)
    error = conn.closed_error()
    assert isinstance(error, ConnectionClosedError)
    assert (error.code, error.was_clean) == (1006, False)


def test_connection_ignores_data_and_eof_once_closed(conn: Connection) -> None:
    conn.receive_eof()
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"ghost"))
    conn.receive_eof()
    assert conn.events_received() == []
    assert conn.state is State.CLOSED


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (1000, ConnectionClosedOK),
        (1001, ConnectionClosedOK),
        (1002, ConnectionClosedError),
        (4000, ConnectionClosedError),
    ],
)
def test_connection_reports_clean_closure_by_code(
    conn: Connection, code: int, error_type: type[Exception]
) -> None:
    conn.receive_data(from_peer(conn, Opcode.CLOSE, close_payload(code, "why")))
    error = conn.closed_error()
    assert type(error) is error_type
    assert (error.code, error.reason, error.was_clean) == (code, "why", True)


# --- failing the connection (RFC 6455 §7.1.7) -------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ProtocolViolation("bad"), 1002),
        (PolicyViolation("rude"), 1008),
        (FullDuplexError("bug"), 1011),
    ],
)
def test_connection_fails_with_error_close_code(
    conn: Connection, error: FullDuplexError, code: int
) -> None:
    conn.fail(error)
    assert conn.events_received() == [ConnectionFailed(error)]
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, close_payload(code, str(error)))]
    assert not conn.should_close_transport  # it waits for the peer's close frame


def test_connection_cuts_failure_reason_to_123_bytes_without_splitting_characters(
    conn: Connection,
) -> None:
    conn.fail(ProtocolViolation("é" * 100))
    [frame] = sent_frames(conn)
    assert parse_close_payload(frame.payload) == (1002, "é" * 61)


def test_connection_drops_messages_after_failure_then_reads_peer_close(conn: Connection) -> None:
    conn.fail(ProtocolViolation("bad"))
    conn.events_received()
    conn.data_to_send()
    conn.receive_data(
        from_peer(conn, Opcode.BINARY, b"dropped")
        + from_peer(conn, Opcode.CLOSE, close_payload(1002))
    )
    assert conn.events_received() == [CloseReceived(1002, "")]
    assert conn.data_to_send() == []
    assert conn.should_close_transport is (not conn.is_client)


def test_connection_gives_up_on_clean_close_after_second_error(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.CONTINUATION, b"a"))
    expect_failure(conn, 1002)
    assert not conn.should_close_transport
    conn.receive_data(raw_from_peer(conn, 0x83))
    assert conn.should_close_transport
    assert conn.events_received() == []  # one failure is reported, once


# --- UTF-8 (RFC 6455 §8.1) ------------------------------------------------------------------

INVALID_UTF8 = [
    pytest.param(b"\xff", id="invalid-byte"),
    pytest.param(b"\x80", id="lone-continuation"),
    pytest.param(b"\xc0\xaf", id="overlong"),
    pytest.param(b"\xed\xa0\x80", id="surrogate"),
    pytest.param(b"\xf4\x90\x80\x80", id="above-max"),
    pytest.param(
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", id="autobahn-6.3.1"
    ),
]


@pytest.mark.parametrize("invalid", INVALID_UTF8)
def test_connection_fails_on_invalid_utf8_in_text_message(conn: Connection, invalid: bytes) -> None:
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"ok " + invalid))
    assert expect_failure(conn, 1007) == []


def test_connection_accepts_invalid_utf8_in_binary_message(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.BINARY, b"\xff\xfe"))
    assert conn.events_received() == [BinaryReceived(b"\xff\xfe")]


@pytest.mark.parametrize("tail", [b"\xe2\x82", b"\xf0\x9d\x84", b"\xc3"])
def test_connection_fails_on_text_message_ending_mid_character(
    conn: Connection, tail: bytes
) -> None:
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"ok" + tail))
    expect_failure(conn, 1007)


def test_connection_fails_on_fragmented_text_ending_mid_character(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"ok\xe2", fin=False))
    conn.receive_data(from_peer(conn, Opcode.CONTINUATION, b"\x82"))
    expect_failure(conn, 1007)


@pytest.mark.parametrize("invalid", INVALID_UTF8)
def test_connection_fails_fast_on_invalid_utf8_in_first_fragment(
    conn: Connection, invalid: bytes
) -> None:
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"ok " + invalid, fin=False))
    assert expect_failure(conn, 1007) == []


def test_connection_fails_fast_on_invalid_utf8_across_fragments(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"\xe2\x82", fin=False))
    assert conn.events_received() == []
    conn.receive_data(
        from_peer(conn, Opcode.CONTINUATION, b"(", fin=False)
    )  # not a continuation byte
    expect_failure(conn, 1007)


def test_connection_fails_fast_on_fragment_ending_in_surrogate_prefix(conn: Connection) -> None:
    # b"\xed\xa0" can only continue as an encoded surrogate: no later fragment can make it valid.
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"ok\xed\xa0", fin=False))
    expect_failure(conn, 1007)


@pytest.mark.parametrize("invalid", [b"\xff", b"\xc0", b"\xf4\x90", b"\xe0\x80"])
def test_connection_fails_fast_on_invalid_utf8_in_partial_frame(
    conn: Connection, invalid: bytes
) -> None:
    data = from_peer(conn, Opcode.TEXT, b"valid start " + invalid + b" and a long tail" * 10)
    conn.receive_data(data[: len(data) // 2])  # the frame is incomplete, its bad bytes arrived
    expect_failure(conn, 1007)
    # The rest of this frame may never come, so no later close frame can be parsed: give up.
    assert conn.should_close_transport


def test_connection_fails_fast_on_partial_frame_ending_in_surrogate_prefix(
    conn: Connection,
) -> None:
    data = from_peer(conn, Opcode.TEXT, b"ok\xed\xa0\x80" + b"tail" * 10)
    header_size = 2 if conn.is_client else 6
    conn.receive_data(data[: header_size + 4])  # the payload so far: b"ok\xed\xa0"
    expect_failure(conn, 1007)


def test_connection_fails_fast_on_invalid_utf8_in_partial_continuation(conn: Connection) -> None:
    conn.receive_data(from_peer(conn, Opcode.TEXT, b"start \xe2\x82", fin=False))
    data = from_peer(conn, Opcode.CONTINUATION, b"(" + b"x" * 50)
    conn.receive_data(data[:-10])
    expect_failure(conn, 1007)
    assert conn.should_close_transport


def test_connection_accepts_partial_frames_of_valid_text_fed_byte_by_byte(conn: Connection) -> None:
    text = "aé€𝄞" * 20
    data = from_peer(conn, Opcode.TEXT, text[:30].encode(), fin=False) + from_peer(
        conn, Opcode.CONTINUATION, text[30:].encode()
    )
    for index in range(len(data)):
        conn.receive_data(data[index : index + 1])
    assert conn.events_received() == [TextReceived(text)]
    assert conn.data_to_send() == []


@pytest.mark.parametrize("text", ["é", "€", "𝄞", "a€b𝄞c"])
def test_connection_accepts_characters_split_across_fragments_at_every_byte(
    conn: Connection, text: str
) -> None:
    encoded = text.encode()
    for cut in range(1, len(encoded)):
        conn.receive_data(
            from_peer(conn, Opcode.TEXT, encoded[:cut], fin=False)
            + from_peer(conn, Opcode.CONTINUATION, encoded[cut:])
        )
        assert conn.events_received() == [TextReceived(text)]


def test_connection_accepts_character_split_over_one_byte_fragments(conn: Connection) -> None:
    encoded = "𝄞".encode()
    frames = [from_peer(conn, Opcode.TEXT, encoded[:1], fin=False)]
    frames += [from_peer(conn, Opcode.CONTINUATION, encoded[i : i + 1], fin=False) for i in (1, 2)]
    frames += [from_peer(conn, Opcode.CONTINUATION, encoded[3:])]
    for frame in frames:
        conn.receive_data(frame)
    assert conn.events_received() == [TextReceived("𝄞")]


# --- whole messages in plain frames: FrameParser.next_messages, compiled and pure -----------

fast_path = pytest.mark.usefixtures("parse_messages_implementation")


@fast_path
def test_connection_receives_messages_around_a_ping_in_one_chunk(conn: Connection) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"one")
        + from_peer(conn, Opcode.PING, b"ping")
        + from_peer(conn, Opcode.BINARY, b"two")
    )
    assert conn.events_received() == [
        TextReceived("one"),
        PingReceived(b"ping"),
        BinaryReceived(b"two"),
    ]
    assert sent_frames(conn) == [Frame(Opcode.PONG, b"ping")]


@fast_path
def test_connection_receives_fragmented_message_between_single_frame_messages(
    conn: Connection,
) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.BINARY, b"before")
        + from_peer(conn, Opcode.TEXT, b"frag", fin=False)
        + from_peer(conn, Opcode.PING, b"")
        + from_peer(conn, Opcode.CONTINUATION, b"mented")
        + from_peer(conn, Opcode.TEXT, b"after")
        + from_peer(conn, Opcode.TEXT, b"")
    )
    assert conn.events_received() == [
        BinaryReceived(b"before"),
        PingReceived(b""),
        TextReceived("fragmented"),
        TextReceived("after"),
        TextReceived(""),
    ]


@fast_path
@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_connection_receives_messages_of_boundary_lengths_in_one_chunk(
    conn: Connection, size: int
) -> None:
    payload = os.urandom(size)
    text = "é" * (size // 2) + "x" * (size % 2)
    conn.receive_data(
        from_peer(conn, Opcode.BINARY, payload)
        + from_peer(conn, Opcode.TEXT, text.encode())
        + from_peer(conn, Opcode.BINARY, b"")
    )
    assert conn.events_received() == [
        BinaryReceived(payload),
        TextReceived(text),
        BinaryReceived(b""),
    ]


@fast_path
def test_connection_receives_messages_split_at_every_byte_boundary(role: str) -> None:
    conn = open_connection(role)
    data = (
        from_peer(conn, Opcode.TEXT, "hé".encode() * 70)
        + from_peer(conn, Opcode.PING, b"p")
        + from_peer(conn, Opcode.BINARY, b"")
        + from_peer(conn, Opcode.TEXT, b"last")
    )
    expected = [
        TextReceived("hé" * 70),
        PingReceived(b"p"),
        BinaryReceived(b""),
        TextReceived("last"),
    ]
    for cut in range(len(data) + 1):
        conn = open_connection(role)
        conn.receive_data(data[:cut])
        conn.receive_data(data[cut:])
        assert conn.events_received() == expected, cut
        assert conn.failure is None


@fast_path
@pytest.mark.parametrize("invalid", [b"\xff", b"\xed\xa0\x80", b"\xc3"])
def test_connection_delivers_message_before_one_with_invalid_utf8_then_fails_with_1007(
    conn: Connection, invalid: bytes
) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"first")
        + from_peer(conn, Opcode.TEXT, b"bad " + invalid)
        + from_peer(conn, Opcode.TEXT, b"dropped")
    )
    assert expect_failure(conn, 1007) == [TextReceived("first")]


@fast_path
@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10], ids=["rsv1", "rsv2", "rsv3"])
def test_connection_delivers_message_before_one_with_rsv_bit_then_fails_with_1002(
    conn: Connection, rsv: int
) -> None:
    conn.receive_data(
        from_peer(conn, Opcode.BINARY, b"first")
        + raw_from_peer(conn, 0x80 | rsv | Opcode.TEXT, b"reserved")
        + from_peer(conn, Opcode.TEXT, b"dropped")
        + from_peer(conn, Opcode.CLOSE, close_payload(1000))
    )
    assert expect_failure(conn, 1002) == [BinaryReceived(b"first"), CloseReceived(1000)]


@fast_path
def test_server_delivers_masked_message_then_fails_on_unmasked_frame_with_1002() -> None:
    server = open_connection("server")
    server.receive_data(
        encode_frame(Opcode.TEXT, b"masked", mask=b"abcd") + encode_frame(Opcode.TEXT, b"unmasked")
    )
    assert expect_failure(server, 1002) == [TextReceived("masked")]


@fast_path
def test_client_delivers_unmasked_message_then_fails_on_masked_frame_with_1002() -> None:
    client = open_connection("client")
    client.receive_data(
        encode_frame(Opcode.BINARY, b"unmasked")
        + encode_frame(Opcode.BINARY, b"masked", mask=b"abcd")
    )
    assert expect_failure(client, 1002) == [BinaryReceived(b"unmasked")]


@fast_path
@pytest.mark.parametrize("limit", ["max_message_size", "max_frame_size"])
def test_connection_delivers_message_that_fits_then_fails_on_larger_one_with_1009(
    role: str, limit: str
) -> None:
    conn = open_connection(role, **{limit: 100})
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"x" * 100)
        + from_peer(conn, Opcode.TEXT, b"x" * 101)
        + from_peer(conn, Opcode.CLOSE, close_payload(1000))
    )
    assert expect_failure(conn, 1009) == [TextReceived("x" * 100), CloseReceived(1000)]


@fast_path
def test_connection_checks_the_next_partial_text_frame_afresh(conn: Connection) -> None:
    # The first frame ends in the middle of "é" while it is incomplete; once complete, the
    # check of the next incomplete frame must not go on from that half character.
    first = from_peer(conn, Opcode.TEXT, "é".encode() * 20)
    second = from_peer(conn, Opcode.TEXT, b"a" * 100)
    conn.receive_data(first[:-1])
    conn.receive_data(first[-1:] + second[:-1])
    assert conn.events_received() == [TextReceived("é" * 20)]
    conn.receive_data(second[-1:])
    assert conn.events_received() == [TextReceived("a" * 100)]
    assert conn.failure is None


@fast_path
def test_connection_delivers_messages_then_fails_fast_on_invalid_partial_text(
    conn: Connection,
) -> None:
    partial = from_peer(conn, Opcode.TEXT, b"bad \xff" + b"tail" * 20)
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"one") + from_peer(conn, Opcode.BINARY, b"two") + partial[:20]
    )
    assert expect_failure(conn, 1007) == [TextReceived("one"), BinaryReceived(b"two")]
    assert conn.should_close_transport


# --- limits ---------------------------------------------------------------------------------


def test_connection_accepts_message_of_exactly_max_message_size(role: str) -> None:
    conn = open_connection(role, max_message_size=100)
    conn.receive_data(from_peer(conn, Opcode.BINARY, bytes(100)))
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"x" * 60, fin=False)
        + from_peer(conn, Opcode.CONTINUATION, b"y" * 40)
    )
    assert conn.events_received() == [BinaryReceived(bytes(100)), TextReceived("x" * 60 + "y" * 40)]


def test_connection_fails_on_message_over_max_message_size_with_1009(role: str) -> None:
    conn = open_connection(role, max_message_size=100)
    conn.receive_data(from_peer(conn, Opcode.BINARY, bytes(101)))
    expect_failure(conn, 1009)


def test_connection_fails_on_fragmented_message_over_max_message_size_from_header(
    role: str,
) -> None:
    conn = open_connection(role, max_message_size=100)
    conn.receive_data(from_peer(conn, Opcode.BINARY, bytes(60), fin=False))
    conn.receive_data(from_peer(conn, Opcode.CONTINUATION, bytes(41))[:8])  # header and mask only
    expect_failure(conn, 1009)


def test_connection_fails_on_huge_declared_length_before_buffering_it(role: str) -> None:
    conn = open_connection(role)  # default limit: 1 MiB
    mask_bit, mask = (0, b"") if conn.is_client else (0x80, os.urandom(4))
    conn.receive_data(bytes([0x82, mask_bit | 127]) + struct.pack("!Q", 2**62) + mask + b"x" * 100)
    expect_failure(conn, 1009)
    assert conn._parser.buffered == 0


def test_connection_default_limit_is_one_mebibyte(role: str) -> None:
    conn = open_connection(role)
    conn.receive_data(from_peer(conn, Opcode.BINARY, bytes(1 << 20)))
    assert conn.events_received() == [BinaryReceived(bytes(1 << 20))]
    conn.receive_data(from_peer(conn, Opcode.BINARY, bytes((1 << 20) + 1)))
    expect_failure(conn, 1009)


def test_connection_without_max_message_size_accepts_large_message(role: str) -> None:
    conn = open_connection(role, max_message_size=None)
    conn.receive_data(from_peer(conn, Opcode.BINARY, bytes(3 << 20)))
    assert conn.events_received() == [BinaryReceived(bytes(3 << 20))]


def test_connection_accepts_message_of_exactly_max_fragments(role: str) -> None:
    conn = open_connection(role, max_fragments=3)
    conn.receive_data(
        from_peer(conn, Opcode.TEXT, b"a", fin=False)
        + from_peer(conn, Opcode.CONTINUATION, b"b", fin=False)
        + from_peer(conn, Opcode.CONTINUATION, b"c")
    )
    assert conn.events_received() == [TextReceived("abc")]


def test_connection_fails_on_message_over_max_fragments_with_1009(role: str) -> None:
    conn = open_connection(role, max_fragments=3)
    conn.receive_data(
        b"".join(
            from_peer(conn, Opcode.CONTINUATION if n else Opcode.BINARY, b"", fin=False)
            for n in range(4)
        )
    )
    expect_failure(conn, 1009)


def test_connection_enforces_max_frame_size_per_frame_not_per_message(role: str) -> None:
    conn = open_connection(role, max_frame_size=10)
    conn.receive_data(
        from_peer(conn, Opcode.BINARY, bytes(10), fin=False)
        + from_peer(conn, Opcode.CONTINUATION, bytes(10))
    )
    assert conn.events_received() == [BinaryReceived(bytes(20))]
    conn.receive_data(from_peer(conn, Opcode.BINARY, bytes(11)))
    expect_failure(conn, 1009)


def test_connection_skips_oversize_frame_arriving_later_then_reads_peer_close(role: str) -> None:
    conn = open_connection(role, max_message_size=100)
    big = from_peer(conn, Opcode.BINARY, os.urandom(5000))
    conn.receive_data(big[:20])
    expect_failure(conn, 1009)
    for start in range(20, len(big), 700):
        conn.receive_data(big[start : start + 700])
        assert conn.events_received() == []
    conn.receive_data(from_peer(conn, Opcode.CLOSE, close_payload(1009)))
    assert conn.events_received() == [CloseReceived(1009, "")]
    assert conn.was_clean
    assert conn.should_close_transport is (not conn.is_client)


@pytest.mark.parametrize(
    ("bad_frame", "code"),
    [
        pytest.param((Opcode.BINARY, bytes(500)), 1009, id="oversize"),
        pytest.param((Opcode.TEXT, b"\xff"), 1007, id="invalid-utf8"),
        pytest.param((Opcode.CONTINUATION, b""), 1002, id="orphan-continuation"),
    ],
)
def test_connection_reads_close_in_same_chunk_as_refused_frame(
    role: str, bad_frame: tuple[int, bytes], code: int
) -> None:
    conn = open_connection(role, max_message_size=100)
    close = from_peer(conn, Opcode.CLOSE, close_payload(1000))
    conn.receive_data(from_peer(conn, *bad_frame) + close)
    assert expect_failure(conn, code) == [CloseReceived(1000, "")]


def test_connection_applies_no_message_limit_to_control_frames(role: str) -> None:
    conn = open_connection(role, max_message_size=10, max_frame_size=10)
    conn.receive_data(from_peer(conn, Opcode.PING, bytes(100)))
    assert conn.events_received() == [PingReceived(bytes(100))]


# --- sending --------------------------------------------------------------------------------


def test_connection_sends_text_binary_ping_and_pong_frames(conn: Connection) -> None:
    conn.send_text("café")
    conn.send_text(b"raw utf-8")
    conn.send_binary(b"\x00\x01")
    conn.send_ping(b"p")
    conn.send_pong()
    assert sent_frames(conn) == [
        Frame(Opcode.TEXT, "café".encode()),
        Frame(Opcode.TEXT, b"raw utf-8"),
        Frame(Opcode.BINARY, b"\x00\x01"),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.PONG, b""),
    ]


def test_connection_sends_fragmented_message(conn: Connection) -> None:
    conn.send_text("frag", fin=False)
    conn.send_ping(b"between")
    conn.send_continuation("men", fin=False)
    conn.send_continuation(b"ted", fin=True)
    conn.send_binary(b"next")
    assert sent_frames(conn) == [
        Frame(Opcode.TEXT, b"frag", fin=False),
        Frame(Opcode.PING, b"between"),
        Frame(Opcode.CONTINUATION, b"men", fin=False),
        Frame(Opcode.CONTINUATION, b"ted"),
        Frame(Opcode.BINARY, b"next"),
    ]


def test_connection_refuses_continuation_without_fragmented_message(conn: Connection) -> None:
    with pytest.raises(InvalidState, match="no fragmented message"):
        conn.send_continuation(b"x", fin=True)


def test_connection_refuses_new_message_during_fragmented_message(conn: Connection) -> None:
    conn.send_binary(b"a", fin=False)
    with pytest.raises(InvalidState, match="finish it first"):
        conn.send_text("b")


def test_connection_refuses_control_payload_over_125_bytes(conn: Connection) -> None:
    with pytest.raises(ValueError, match="exceeds 125"):
        conn.send_ping(bytes(126))
    with pytest.raises(ValueError, match="exceeds 125"):
        conn.send_pong(bytes(126))
    conn.send_ping(bytes(125))


@pytest.mark.parametrize(
    ("code", "reason"), [(1005, "x"), (1006, ""), (999, ""), (1000, "x" * 124)]
)
def test_connection_refuses_unsendable_close(conn: Connection, code: int, reason: str) -> None:
    with pytest.raises(ValueError):
        conn.send_close(code, reason)
    assert conn.state is State.OPEN


def test_connection_sends_close_without_status_as_empty_payload(conn: Connection) -> None:
    conn.send_close(1005)
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, b"")]


def test_connection_refuses_to_send_before_handshake() -> None:
    client = ClientProtocol("h")
    with pytest.raises(InvalidState, match="CONNECTING"):
        client.send_text("early")
    with pytest.raises(InvalidState, match="CONNECTING"):
        client.send_ping()
    with pytest.raises(InvalidState):
        client.send_close()


# --- extensions through the connection (RFC 7692) -------------------------------------------


def open_deflate_pair(**options: int | None) -> tuple[ClientProtocol, ServerProtocol]:
    client = ClientProtocol("h", extensions=[ClientPerMessageDeflate()], **options)  # type: ignore[arg-type]
    server = ServerProtocol(ServerNegotiation(extensions=[ServerPerMessageDeflate()]), **options)  # type: ignore[arg-type]
    relay(client, server)
    server.accept()
    relay(server, client)
    assert client.state is server.state is State.OPEN
    assert len(client.extensions) == len(server.extensions) == 1
    client.events_received()
    server.events_received()
    return client, server


def relay(
    sender: Connection, receiver: Connection, cut: Callable[[bytes], list[bytes]] | None = None
) -> None:
    data = b"".join(sender.data_to_send())
    for chunk in cut(data) if cut else [data]:
        receiver.receive_data(chunk)


def test_connection_with_deflate_exchanges_compressed_messages() -> None:
    client, server = open_deflate_pair()
    client.send_text("hello " * 200)
    data = b"".join(client.data_to_send())
    assert len(data) < 100
    assert data[0] & 0x40  # RSV1
    server.receive_data(data)
    assert server.events_received() == [TextReceived("hello " * 200)]
    server.send_binary(b"\x00" * 1000, fin=False)
    server.send_continuation(b"\x01" * 1000, fin=True)
    relay(server, client)
    assert client.events_received() == [BinaryReceived(b"\x00" * 1000 + b"\x01" * 1000)]


def test_connection_with_deflate_sends_messages_below_the_threshold_uncompressed() -> None:
    client, server = open_deflate_pair()
    server.send_text("hello " * 100)  # 600 bytes: under the 1 KiB default
    data = b"".join(server.data_to_send())
    assert not data[0] & 0x40  # RSV1
    assert data.endswith(b"hello " * 100)
    client.receive_data(data)
    assert client.events_received() == [TextReceived("hello " * 100)]


def test_connection_with_deflate_holds_uncompressed_messages_to_max_size() -> None:
    client, server = open_deflate_pair(max_message_size=1000)
    client.send_binary(b"x" * 1001)  # under the threshold: sent as it is
    relay(client, server)
    expect_failure(server, 1009)


def test_connection_with_deflate_fails_on_rsv1_control_frame() -> None:
    _client, server = open_deflate_pair()
    server.receive_data(raw_from_peer(server, 0x80 | 0x40 | Opcode.PING))
    expect_failure(server, 1002)


@pytest.mark.parametrize("rsv", [0x20, 0x10])
def test_connection_with_deflate_still_fails_on_rsv2_and_rsv3(rsv: int) -> None:
    _client, server = open_deflate_pair()
    server.receive_data(raw_from_peer(server, 0x80 | rsv | Opcode.BINARY))
    expect_failure(server, 1002)


def test_connection_with_deflate_fails_on_decompression_bomb_with_1009() -> None:
    client, server = open_deflate_pair(max_message_size=1000)
    client.send_binary(bytes(100_000))
    relay(client, server)
    expect_failure(server, 1009)


def test_connection_with_deflate_fails_on_invalid_utf8_after_inflating() -> None:
    client, server = open_deflate_pair()
    client.send_text(b"\xff\xfe")
    relay(client, server)
    expect_failure(server, 1007)


def test_connection_with_deflate_and_no_message_limit_receives_compressed_message() -> None:
    client, server = open_deflate_pair(max_message_size=None)
    client.send_text("unlimited")
    relay(client, server)
    assert server.events_received() == [TextReceived("unlimited")]


# --- properties -----------------------------------------------------------------------------


@st.composite
def messages(draw: st.DrawFn) -> tuple[bool, bytes, list[int], list[bool]]:
    """A message: whether it is text, its bytes, where to cut it into frames, and which
    fragment boundaries get a ping."""
    is_text = draw(st.booleans())
    data = draw(st.text(max_size=60)).encode() if is_text else draw(st.binary(max_size=60))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    pings = draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts)))
    return is_text, data, cuts, pings


def send_message(
    sender: Connection, is_text: bool, data: bytes, cuts: list[int], pings: list[bool]
) -> None:
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    send = sender.send_text if is_text else sender.send_binary
    if len(pieces) == 1:
        send(data)
        return
    send(pieces[0], fin=False)
    for index, piece in enumerate(pieces[1:], start=1):
        if pings[index - 1]:
            sender.send_ping(b"%d" % index)
        sender.send_continuation(piece, fin=index == len(pieces) - 1)


def chunker(cuts: list[int]) -> Callable[[bytes], list[bytes]]:
    def cut(data: bytes) -> list[bytes]:
        points = sorted({c % (len(data) + 1) for c in cuts})
        return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]

    return cut


def open_plain_pair() -> tuple[ClientProtocol, ServerProtocol]:
    client = ClientProtocol("h")
    server = ServerProtocol()
    relay(client, server)
    server.accept()
    relay(server, client)
    client.events_received()
    server.events_received()
    return client, server


@given(
    st.lists(messages(), max_size=6),
    st.booleans(),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=10),
)
@settings(deadline=None, max_examples=150)
def test_connections_deliver_randomly_fragmented_messages_exactly(
    sent: list[tuple[bool, bytes, list[int], list[bool]]],
    deflate: bool,
    client_sends: bool,
    chunk_cuts: list[int],
) -> None:
    client, server = open_deflate_pair() if deflate else open_plain_pair()
    sender, receiver = (client, server) if client_sends else (server, client)
    for message in sent:
        send_message(sender, *message)
    relay(sender, receiver, chunker(chunk_cuts))
    events = receiver.events_received()
    received = [event for event in events if not isinstance(event, PingReceived)]
    expected = [
        TextReceived(data.decode()) if is_text else BinaryReceived(data)
        for is_text, data, _, _ in sent
    ]
    assert received == expected
    assert len(events) - len(received) == sum(sum(pings) for _, _, _, pings in sent)
    assert receiver.failure is None
    assert receiver.state is State.OPEN


@given(st.text(max_size=40), st.lists(st.integers(min_value=0), max_size=8))
def test_connection_validates_text_split_anywhere_like_python_does(
    text: str, chunk_cuts: list[int]
) -> None:
    """Valid text never fails, whatever the frame and chunk boundaries."""
    encoded = text.encode()
    client, server = open_plain_pair()
    client.send_text(encoded[: len(encoded) // 2], fin=False)
    client.send_continuation(encoded[len(encoded) // 2 :], fin=True)
    relay(client, server, chunker(chunk_cuts))
    assert server.events_received() == [TextReceived(text)]


@given(st.binary(max_size=30), st.lists(st.integers(min_value=0), max_size=6))
def test_connection_fails_with_1007_exactly_when_text_is_invalid(
    data: bytes, chunk_cuts: list[int]
) -> None:
    client, server = open_plain_pair()
    client.send_text(data[:10], fin=False)
    client.send_continuation(data[10:], fin=True)
    relay(client, server, chunker(chunk_cuts))
    try:
        text = codecs.decode(data, "utf-8")
    except UnicodeDecodeError:
        expect_failure(server, 1007)
    else:
        assert server.events_received() == [TextReceived(text)]


def bare(event: Event) -> object:
    """A message event as `Connection.receive_messages` returns it; any other event as is."""
    if isinstance(event, TextReceived | BinaryReceived):
        return event.data
    return event


@given(
    st.lists(messages(), max_size=6),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=10),
    st.binary(max_size=12),
)
@settings(deadline=None, max_examples=150)
def test_connection_receive_messages_returns_what_receive_data_reports(
    sent: list[tuple[bool, bytes, list[int], list[bool]]],
    client_sends: bool,
    chunk_cuts: list[int],
    garbage: bytes,
) -> None:
    client, server = open_plain_pair()
    sender, by_events = (client, server) if client_sends else (server, client)
    other_client, other_server = open_plain_pair()
    by_messages = other_server if client_sends else other_client
    for message in sent:
        send_message(sender, *message)
    data = b"".join(sender.data_to_send()) + garbage
    expected: list[object] = []
    received: list[object] = []
    for chunk in chunker(chunk_cuts)(data):
        by_events.receive_data(chunk)
        expected += [bare(event) for event in by_events.events_received()]
        received += by_messages.receive_messages(chunk)
        received += [bare(event) for event in by_messages.events_received()]
    # repr: a ConnectionFailed holds its own exception object, equal only by its text.
    assert [repr(item) for item in received] == [repr(item) for item in expected]
    assert by_messages.state is by_events.state
    assert by_messages.close_sent == by_events.close_sent
    assert len(sent_frames(by_messages)) == len(sent_frames(by_events))


def receive_through_deliverer(conn: Connection, chunk: bytes) -> list[object]:
    """What ``conn`` makes of ``chunk`` as an I/O layer with a message callback does: its
    deliverer when it offers one, `receive_messages` for the rest; bare messages, and events
    as they are."""
    received: list[object] = []
    deliver = conn.message_deliverer(received.append)
    taken = 0
    if deliver is not None:
        # As a read fills it: a buffer larger than what was read.
        buffer = bytearray(chunk) + b"\xff" * 7
        result = deliver(buffer, len(chunk))
        assert type(result) is int
        taken = result
    received += conn.receive_messages(chunk[taken:])
    received += [bare(event) for event in conn.events_received()]
    return received


@given(
    st.lists(messages(), max_size=6),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=10),
    st.binary(max_size=12),
)
@settings(deadline=None, max_examples=150)
def test_connection_message_deliverer_gives_what_receive_data_reports(
    sent: list[tuple[bool, bytes, list[int], list[bool]]],
    client_sends: bool,
    chunk_cuts: list[int],
    garbage: bytes,
) -> None:
    client, server = open_plain_pair()
    sender, by_events = (client, server) if client_sends else (server, client)
    other_client, other_server = open_plain_pair()
    by_deliverer = other_server if client_sends else other_client
    for message in sent:
        send_message(sender, *message)
    data = b"".join(sender.data_to_send()) + garbage
    expected: list[object] = []
    received: list[object] = []
    for chunk in chunker(chunk_cuts)(data):
        by_events.receive_data(chunk)
        expected += [bare(event) for event in by_events.events_received()]
        received += receive_through_deliverer(by_deliverer, chunk)
    assert [repr(item) for item in received] == [repr(item) for item in expected]
    assert by_deliverer.state is by_events.state
    assert by_deliverer.close_sent == by_events.close_sent
    assert len(sent_frames(by_deliverer)) == len(sent_frames(by_events))


@given(
    st.lists(messages(), max_size=6),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=10),
    st.binary(max_size=12),
    st.booleans(),
)
@example(  # a second error after the first gives up on a clean close, with no event
    sent=[], client_sends=False, chunk_cuts=[2], garbage=b"\x00\x00\x00\x00", peer_closes=False
)
@settings(deadline=None, max_examples=150)
def test_connection_queues_bytes_and_leaves_open_only_along_with_an_event(
    sent: list[tuple[bool, bytes, list[int], list[bool]]],
    client_sends: bool,
    chunk_cuts: list[int],
    garbage: bytes,
    peer_closes: bool,
) -> None:
    client, server = open_plain_pair()
    sender, receiver = (client, server) if client_sends else (server, client)
    for message in sent:
        send_message(sender, *message)
    if peer_closes:
        sender.send_close()
    data = b"".join(sender.data_to_send()) + garbage
    for chunk in chunker(chunk_cuts)(data):
        state, should_close = receiver.state, receiver.should_close_transport
        messages_taken = receiver.receive_messages(chunk)
        if not receiver.events_received():
            assert receiver.data_to_send() == [], messages_taken
            if state is State.OPEN:
                assert (receiver.state, receiver.should_close_transport) == (state, should_close)
        receiver.data_to_send()


def test_server_queues_nothing_while_the_handshake_request_is_incomplete() -> None:
    server = ServerProtocol()
    for byte in REQUEST[:-1]:
        server.receive_data(bytes([byte]))
        assert server.events_received() == []
        assert server.data_to_send() == []
        assert server.state is State.CONNECTING


def test_connection_offers_no_deliverer_with_a_frame_or_message_partly_received() -> None:
    client, server = open_plain_pair()
    assert server.message_deliverer(print) is not None
    client.send_text("a whole message")
    frame = b"".join(client.data_to_send())
    server.receive_data(frame[:3])
    assert server.message_deliverer(print) is None
    server.receive_data(frame[3:])
    assert server.events_received() == [TextReceived("a whole message")]
    assert server.message_deliverer(print) is not None
    client.send_text("first", fin=False)
    server.receive_data(b"".join(client.data_to_send()))
    assert server.message_deliverer(print) is None
    client.send_continuation("last", fin=True)
    server.receive_data(b"".join(client.data_to_send()))
    assert server.events_received() == [TextReceived("firstlast")]
    assert server.message_deliverer(print) is not None
    server.send_close()
    assert server.message_deliverer(print) is None


def test_connection_offers_no_deliverer_before_the_handshake_or_with_an_extension() -> None:
    assert ServerProtocol().message_deliverer(print) is None
    client = ClientProtocol("h", extensions=[ClientPerMessageDeflate()])
    server = ServerProtocol(ServerNegotiation(extensions=[ServerPerMessageDeflate()]))
    relay(client, server)
    server.accept()
    assert server.extensions
    assert server.message_deliverer(print) is None


def test_connection_deliverer_stops_once_the_callback_closes_the_connection() -> None:
    client, server = open_plain_pair()
    for text in ("one", "two", "three"):
        client.send_text(text)
    data = b"".join(client.data_to_send())
    received: list[str | bytes] = []

    def close_after_two(message: str | bytes) -> None:
        received.append(message)
        if len(received) == 2:
            server.send_close(1001)

    deliver = server.message_deliverer(close_after_two)
    assert deliver is not None
    taken = deliver(data, len(data))
    assert received == ["one", "two"]
    assert taken == len(data) // 3 * 2
    # The rest goes the general way: messages still come until the peer's close frame.
    assert server.receive_messages(data[taken:]) == []
    assert server.events_received() == [TextReceived("three")]


def test_connection_deliverer_reports_what_the_callback_raised() -> None:
    client, server = open_plain_pair()
    for text in ("one", "two", "three"):
        client.send_text(text)
    data = b"".join(client.data_to_send())
    error = ValueError("no")

    def refuse_two(message: str | bytes) -> None:
        if message == "two":
            raise error

    deliver = server.message_deliverer(refuse_two)
    assert deliver is not None
    assert deliver(data, len(data)) == (len(data) // 3 * 2, error)


@pytest.mark.parametrize(
    "message",
    [
        *["", "héllo 𝄞", "x" * 125, "é" * 63, "y" * 70_000],
        *[b"", b"\x00" * 126, b"\x01" * 16_384, b"\x02" * 16_385, b"\x03" * 65_536],
    ],
    ids=lambda message: f"{type(message).__name__}-{len(message)}",
)
def test_connection_send_message_queues_what_send_text_or_send_binary_does(
    role: str, message: str | bytes
) -> None:
    by_message, by_method = open_connection(role), open_connection(role)
    by_message.send_message(message)
    if isinstance(message, str):
        by_method.send_text(message)
    else:
        by_method.send_binary(message)
    assert sent_frames(by_message) == sent_frames(by_method)


def test_connection_send_message_refuses_other_types(conn: Connection) -> None:
    for message in (bytearray(b"x"), memoryview(b"x"), 1, None):
        with pytest.raises(TypeError, match="use str or bytes"):
            conn.send_message(message)  # type: ignore[arg-type]
    assert conn.data_to_send() == []


def test_connection_send_message_refuses_after_close_and_during_a_fragmented_message(
    conn: Connection,
) -> None:
    conn.send_text("first", fin=False)
    with pytest.raises(InvalidState, match="fragmented message is in progress"):
        conn.send_message("second")
    conn.send_continuation("", fin=True)
    conn.send_close()
    with pytest.raises(InvalidState, match="CLOSING"):
        conn.send_message(b"late")


def test_server_queues_a_frame_serialized_once_as_it_is() -> None:
    first, second = open_connection("server"), open_connection("server")
    frame = serialize_message("to all")
    for conn in (first, second):
        assert conn.sends_plain_frames
        conn.send_serialized_message(frame)
        [queued] = conn.data_to_send()
        assert queued is frame  # not copied: one bytes object for every recipient


def test_connection_refuses_a_serialized_frame_it_would_not_send_as_is() -> None:
    client = open_connection("client")
    _, compressing = open_deflate_pair()
    for conn in (client, compressing):
        assert not conn.sends_plain_frames
        with pytest.raises(InvalidState, match="masks or compresses"):
            conn.send_serialized_message(serialize_message("x"))
        assert conn.data_to_send() == []


def test_server_frames_a_message_for_the_caller_to_write_only_when_nothing_is_queued() -> None:
    conn = open_connection("server")
    assert conn.frame_message_if_idle("hello") == serialize_message("hello")
    assert conn.frame_message_if_idle(b"\x00\x01") == serialize_message(b"\x00\x01")
    assert conn.data_to_send() == []  # handed to the caller, not queued
    conn.send_message("queued")
    assert conn.frame_message_if_idle("after") is None  # would overtake the queued frame
    conn.data_to_send()
    conn.send_text("first", fin=False)
    assert conn.frame_message_if_idle("between fragments") is None
    conn.send_continuation("", fin=True)
    conn.data_to_send()
    conn.send_close()
    conn.data_to_send()
    assert conn.frame_message_if_idle("late") is None


def test_connection_frames_no_message_for_the_caller_when_it_masks_or_compresses() -> None:
    client = open_connection("client")
    _, compressing = open_deflate_pair()
    for conn in (client, compressing):
        assert conn.frame_message_if_idle("x") is None
        assert conn.frame_message_if_idle(b"x" * 20_000) is None


def test_server_refuses_a_serialized_frame_after_close_and_during_a_fragmented_message() -> None:
    conn = open_connection("server")
    conn.send_text("first", fin=False)
    with pytest.raises(InvalidState, match="fragmented message is in progress"):
        conn.send_serialized_message(serialize_message("second"))
    conn.send_continuation("", fin=True)
    conn.send_close()
    with pytest.raises(InvalidState, match="CLOSING"):
        conn.send_serialized_message(serialize_message("late"))
