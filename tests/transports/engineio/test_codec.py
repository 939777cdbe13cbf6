"""The sans-I/O codec: packets, payloads, the handshake and the error bodies."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.exceptions import ProtocolViolation
from fullduplex.transports.engineio.codec import (
    InvalidPacket,
    Packet,
    PacketType,
    ServerError,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
    open_packet,
)


def packets(text_data: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Packet]:
    text = st.builds(
        Packet, st.sampled_from(list(PacketType)), st.text() if text_data is None else text_data
    )
    binary = st.builds(Packet, st.just(PacketType.MESSAGE), st.binary())
    return text | binary


@given(packets())
def test_decode_packet_inverts_encode_packet(packet: Packet) -> None:
    assert decode_packet(encode_packet(packet)) == packet


# The record separator never appears inside a packet of a payload (engine.io-protocol).
@given(
    st.lists(
        packets(st.text(st.characters(exclude_characters="\x1e", exclude_categories=["Cs"]))),
        min_size=1,
    )
)
def test_decode_payload_inverts_encode_payload(batch: list[Packet]) -> None:
    assert decode_payload(encode_payload(batch)) == batch


@given(st.binary())
def test_garbage_payload_only_raises_invalid_packet(body: bytes) -> None:
    with contextlib.suppress(InvalidPacket):
        decode_payload(body)


@given(st.text())
def test_garbage_text_message_only_raises_invalid_packet(message: str) -> None:
    with contextlib.suppress(InvalidPacket):
        decode_packet(message)


def test_text_message_is_a_digit_and_its_data() -> None:
    assert encode_packet(Packet(PacketType.MESSAGE, "hello")) == "4hello"
    assert decode_packet("2probe") == Packet(PacketType.PING, "probe")


def test_binary_message_is_the_frame_without_a_prefix() -> None:
    assert encode_packet(Packet(PacketType.MESSAGE, b"\x01\x02")) == b"\x01\x02"
    assert decode_packet(b"\x01\x02") == Packet(PacketType.MESSAGE, b"\x01\x02")


def test_only_messages_carry_binary_data() -> None:
    with pytest.raises(TypeError):
        encode_packet(Packet(PacketType.PING, b"x"))


def test_payload_joins_packets_with_record_separator_and_base64_for_binary() -> None:
    # The protocol's own example (engine.io-protocol, "HTTP long-polling").
    body = "4hello\x1ebAQIDBA=="
    batch = [Packet(PacketType.MESSAGE, "hello"), Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04")]
    assert encode_payload(batch) == body.encode()
    assert decode_payload(body.encode()) == batch


@pytest.mark.parametrize(
    "body",
    [b"", b"abc", b"4a\x1e", b"7", b"bnot base64!", b"\xff\xfe", b"4ok\x1e9no"],
)
def test_decode_payload_refuses_invalid_packets(body: bytes) -> None:
    with pytest.raises(InvalidPacket):
        decode_payload(body)


def test_invalid_packet_is_a_protocol_violation() -> None:
    assert issubclass(InvalidPacket, ProtocolViolation)
    assert InvalidPacket.close_code == 1002


def test_open_packet_advertises_sub_second_intervals_exactly() -> None:
    packet = open_packet("abc", ["websocket"], 300, 200, 1_000_000)
    assert packet.type is PacketType.OPEN
    assert isinstance(packet.data, str)
    assert json.loads(packet.data) == {
        "sid": "abc",
        "upgrades": ["websocket"],
        "pingInterval": 300,
        "pingTimeout": 200,
        "maxPayload": 1000000,
    }
    assert encode_packet(packet) == '0{"sid":"abc","upgrades":["websocket"],' + (
        '"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}'
    )


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (ServerError.UNKNOWN_TRANSPORT, 400, b'{"code":0,"message":"Transport unknown"}'),
        (ServerError.UNKNOWN_SID, 400, b'{"code":1,"message":"Session ID unknown"}'),
        (ServerError.BAD_HANDSHAKE_METHOD, 400, b'{"code":2,"message":"Bad handshake method"}'),
        (ServerError.BAD_REQUEST, 400, b'{"code":3,"message":"Bad request"}'),
        (ServerError.FORBIDDEN, 403, b'{"code":4,"message":"Forbidden"}'),
        (
            ServerError.UNSUPPORTED_PROTOCOL_VERSION,
            400,
            b'{"code":5,"message":"Unsupported protocol version"}',
        ),
    ],
)
def test_server_errors_carry_engine_io_status_and_body(
    error: ServerError, status: int, body: bytes
) -> None:
    assert error.http_status == status
    assert error.body == body
