"""The Socket.IO v5 packet codec: the protocol's examples, round trips, and every refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.realtime.socketio.codec import (
    MAX_ACK_ID,
    Decoder,
    InvalidPacket,
    Packet,
    PacketType,
    encode,
    encode_ack,
)


def decode_all(*messages: str | bytes, max_attachments: int = 10) -> list[Packet]:
    decoder = Decoder(max_attachments)
    packets = []
    for message in messages:
        packet = decoder.receive(message)
        if packet is not None:
            packets.append(packet)
    return packets


# The examples of the socket.io-protocol v5 README ("Packet encoding" and "Exchange protocol").
EXAMPLES: list[tuple[Packet, list[str | bytes]]] = [
    (Packet(PacketType.CONNECT), ["0"]),
    (Packet(PacketType.CONNECT, "/admin", {"token": "123"}), ['0/admin,{"token":"123"}']),
    (
        Packet(PacketType.CONNECT, "/", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        ['0{"sid":"oSO0OpakMV_3jnilAAAA"}'],
    ),
    (Packet(PacketType.DISCONNECT, "/admin"), ["1/admin,"]),
    (Packet(PacketType.EVENT, "/", ["foo"]), ['2["foo"]']),
    (Packet(PacketType.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
    (Packet(PacketType.EVENT, "/", ["foo"], 12), ['212["foo"]']),
    (Packet(PacketType.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
    (
        Packet(PacketType.CONNECT_ERROR, "/", {"message": "Not authorized"}),
        ['4{"message":"Not authorized"}'],
    ),
    (
        Packet(PacketType.EVENT, "/", ["baz", b"\x01\x02\x03\x04"]),
        ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (
        Packet(PacketType.ACK, "/admin", [b"\x03\x02\x01\x00"], 15),
        ['61-/admin,15[{"_placeholder":true,"num":0}]', b"\x03\x02\x01\x00"],
    ),
]


@pytest.mark.parametrize(("packet", "wire"), EXAMPLES)
def test_encode_gives_the_protocol_examples(packet: Packet, wire: list[str | bytes]) -> None:
    assert encode(packet) == wire


@pytest.mark.parametrize(("packet", "wire"), [e for e in EXAMPLES if e[0].type != 1])
def test_decoder_reads_the_protocol_examples(packet: Packet, wire: list[str | bytes]) -> None:
    assert decode_all(*wire) == [packet]


def test_decoder_reads_a_namespace_without_a_comma() -> None:
    assert decode_all("0/random") == [Packet(PacketType.CONNECT, "/random")]
    assert decode_all("1/custom") == [Packet(PacketType.DISCONNECT, "/custom")]


def test_decoder_waits_for_every_attachment() -> None:
    decoder = Decoder()
    assert (
        decoder.receive('52-["m",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]')
        is None
    )
    assert decoder.is_awaiting_attachments
    assert decoder.receive(b"first") is None
    packet = decoder.receive(b"second")
    assert packet == Packet(PacketType.EVENT, "/", ["m", b"second", b"first"])
    assert not decoder.is_awaiting_attachments


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
namespaces = st.sampled_from(["/", "/custom", "/a/b", "/ü"])


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    kind = draw(
        st.sampled_from(
            [PacketType.CONNECT, PacketType.EVENT, PacketType.ACK, PacketType.DISCONNECT]
        )
    )
    namespace = draw(namespaces)
    ack_id = draw(st.none() | st.integers(0, MAX_ACK_ID))
    data: Any
    if kind == PacketType.CONNECT:
        data = draw(st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3))
        data = data if data is None else {k: v for k, v in data.items()}
        ack_id = None
    elif kind == PacketType.DISCONNECT:
        data, ack_id = None, None
    elif kind == PacketType.EVENT:
        name = draw(
            st.text(min_size=1, max_size=6).filter(lambda n: n not in {"connect", "disconnect"})
        )
        data = [name, *draw(st.lists(json_values, max_size=4))]
    else:
        data = draw(st.lists(json_values, max_size=4))
    return Packet(kind, namespace, data, ack_id)


def _without_binary_in_connect(packet: Packet) -> bool:
    return packet.type != PacketType.CONNECT or b"" not in _leaves(packet.data)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [b"" if isinstance(value, bytes) else value]


@given(packets().filter(_without_binary_in_connect))
def test_decode_inverts_encode(packet: Packet) -> None:
    # Generated packets may carry more attachments than the default limit of 10.
    assert decode_all(*encode(packet), max_attachments=1000) == [packet]


@given(st.lists(st.text(max_size=30) | st.binary(max_size=10), max_size=4))
def test_garbage_only_raises_invalid_packet(messages: list[str | bytes]) -> None:
    decoder = Decoder()
    try:
        for message in messages:
            decoder.receive(message)
    except InvalidPacket:
        pass


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7",
        "abc",
        "4abc",  # CONNECT_ERROR whose payload is not JSON
        "abc",  # what the suite's "4abc" Engine.IO message carries
        "2{}",  # an EVENT payload must be an array
        '2abc["message-with-ack",1]',  # not an ack id, not JSON either
        "2[]",
        "2",
        "2[true]",
        "2[null]",
        '2\u0661["m"]',  # a non-ASCII digit in the ack id
        '2["m"] 1',  # JSON then more
        '2["connect"]',
        '2["disconnecting"]',
        "3",
        '3{"a":1}',
        "0[]",
        '1{"a":1}',
        "0/admin,[",
        "5-[]",
        "50-[]",
        "5x-[]",
        "5\u0661-[]",  # a non-ASCII digit
        '511-["m"]',  # more attachments than allowed
        "51" + "0" * 7 + '-["m"]',
        '212345678901234567["m"]',  # ack id out of range
        f'2{MAX_ACK_ID + 1}["m"]',
    ],
)
def test_decoder_refuses(text: str) -> None:
    with pytest.raises(InvalidPacket):
        Decoder().receive(text)


def test_the_largest_ack_id_is_accepted() -> None:
    assert decode_all(f'2{MAX_ACK_ID}["m"]')[0].id == MAX_ACK_ID


def test_binary_message_without_an_announcement_is_refused() -> None:
    with pytest.raises(InvalidPacket):
        Decoder().receive(b"\x01")


def test_text_message_while_attachments_are_awaited_is_refused() -> None:
    decoder = Decoder()
    decoder.receive('51-["m",{"_placeholder":true,"num":0}]')
    with pytest.raises(InvalidPacket):
        decoder.receive('2["m"]')


@pytest.mark.parametrize(
    "messages",
    [
        # announces 2, names 1: an attachment too many
        ['52-["m",{"_placeholder":true,"num":0}]', b"a", b"b"],
        # announces 1, names 2
        ['51-["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"a"],
        # names the same one twice
        ['52-["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]', b"a", b"b"],
        # a placeholder number that is not an integer
        ['51-["m",{"_placeholder":true,"num":"0"}]', b"a"],
        ['51-["m",{"_placeholder":true,"num":true}]', b"a"],
        # one attachment more than announced
        ['51-["m",{"_placeholder":true,"num":0}]', b"a", b"extra"],
    ],
)
def test_attachment_count_lies_are_refused(messages: list[str | bytes]) -> None:
    with pytest.raises(InvalidPacket):
        decode_all(*messages)


def test_encode_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode(Packet(PacketType.EVENT, "/", ["m", float("nan")]))
    with pytest.raises(TypeError):
        encode(Packet(PacketType.EVENT, "/", ["m", object()]))


@given(namespaces, st.integers(0, MAX_ACK_ID), st.lists(json_values, max_size=4), st.booleans())
def test_encode_ack_is_encode_of_an_ack_packet(
    namespace: str, ack_id: int, args: list[Any], as_tuple: bool
) -> None:
    expected = encode(Packet(PacketType.ACK, namespace, args, ack_id))
    assert encode_ack(namespace, ack_id, tuple(args) if as_tuple else args) == expected


@pytest.mark.parametrize("name", [1, 1.5, "m"])
def test_decoder_reads_events_named_by_numbers_and_strings(name: Any) -> None:
    packet = Decoder().receive(f"27{json.dumps([name, 1])}")
    assert packet == Packet(PacketType.EVENT, "/", [name, 1], 7)
