"""Tests for permessage-deflate (RFC 7692): negotiation, compression and its limits."""

from __future__ import annotations

import contextlib
import itertools
import os
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fullduplex.exceptions import MessageTooBig, NegotiationError, ProtocolViolation
from fullduplex.protocol.extensions.base import ExtensionParameters
from fullduplex.protocol.extensions.permessage_deflate import (
    DEFAULT_COMPRESSION_THRESHOLD,
    ClientPerMessageDeflate,
    PerMessageDeflate,
    ServerPerMessageDeflate,
)
from fullduplex.protocol.frames import Frame, Opcode

MiB = 1 << 20
HELLO = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])  # RFC 7692 §7.2.3.1
HELLO_AGAIN = bytes([0xF2, 0x00, 0x11, 0x00, 0x00])  # RFC 7692 §7.2.3.2, shared window


def make_pair(
    *, no_context_takeover: bool = False, window_bits: int = 15, threshold: int = 0
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """A sender and a receiver that agreed on the sender's parameters.

    The sender compresses every message unless given a ``threshold``.
    """
    sender = PerMessageDeflate(
        remote_no_context_takeover=False,
        local_no_context_takeover=no_context_takeover,
        remote_max_window_bits=15,
        local_max_window_bits=window_bits,
        compression_threshold=threshold,
    )
    receiver = PerMessageDeflate(
        remote_no_context_takeover=no_context_takeover,
        local_no_context_takeover=False,
        remote_max_window_bits=window_bits,
        local_max_window_bits=15,
    )
    return sender, receiver


def make_extension(**parameters: bool | int) -> PerMessageDeflate:
    options: dict[str, bool | int] = {
        "remote_no_context_takeover": False,
        "local_no_context_takeover": False,
        "remote_max_window_bits": 15,
        "local_max_window_bits": 15,
        "compression_threshold": 0,
    }
    options.update(parameters)
    return PerMessageDeflate(**options)  # type: ignore[arg-type]


def fragments(message: list[bytes], opcode: int = Opcode.BINARY) -> list[Frame]:
    """The frames of one message, one per chunk."""
    last = len(message) - 1
    return [
        Frame(opcode if index == 0 else Opcode.CONTINUATION, chunk, fin=index == last)
        for index, chunk in enumerate(message)
    ]


def transfer(sender: PerMessageDeflate, receiver: PerMessageDeflate, message: list[bytes]) -> bytes:
    """Encode a message frame by frame, decode it, and return the payload received."""
    received = []
    for frame in fragments(message):
        encoded = sender.encode(frame)
        decoded = receiver.decode(encoded, max_size=MiB)
        assert (decoded.opcode, decoded.fin, decoded.rsv1) == (frame.opcode, frame.fin, False)
        received.append(decoded.payload)
    return b"".join(received)


def has_zlib_state(extension: PerMessageDeflate) -> bool:
    return extension._compressor is not None or extension._decompressor is not None


# Decoding


def test_receiver_inflates_rfc_hello_example() -> None:
    extension = make_extension()
    frame = extension.decode(Frame(Opcode.TEXT, HELLO, rsv1=True), max_size=MiB)
    assert frame == Frame(Opcode.TEXT, b"Hello")


def test_receiver_inflates_rfc_shared_window_example() -> None:
    extension = make_extension()
    extension.decode(Frame(Opcode.TEXT, HELLO, rsv1=True), max_size=MiB)
    frame = extension.decode(Frame(Opcode.TEXT, HELLO_AGAIN, rsv1=True), max_size=MiB)
    assert frame.payload == b"Hello"


def test_receiver_inflates_rfc_fragmented_example() -> None:
    # RFC 7692 §7.2.3.1: the same message split across two frames.
    extension = make_extension()
    first = extension.decode(Frame(Opcode.TEXT, HELLO[:3], fin=False, rsv1=True), max_size=MiB)
    last = extension.decode(Frame(Opcode.CONTINUATION, HELLO[3:]), max_size=MiB)
    assert (first.rsv1, last.rsv1) == (False, False)
    assert first.payload + last.payload == b"Hello"


def test_receiver_inflates_rfc_two_block_example() -> None:
    # RFC 7692 §7.2.3.4: two DEFLATE blocks in one message.
    payload = bytes.fromhex("f248050000 00ffff cac9c90700".replace(" ", ""))
    frame = make_extension().decode(Frame(Opcode.TEXT, payload, rsv1=True), max_size=MiB)
    assert frame.payload == b"Hello"


def test_receiver_inflates_messages_ended_by_bfinal_block() -> None:
    # RFC 7692 §7.2.3.3: a sender may end a message with a block whose BFINAL bit is set.
    extension = make_extension()
    for _ in range(2):
        frame = extension.decode(
            Frame(Opcode.TEXT, bytes.fromhex("f348cdc9c90700"), rsv1=True), max_size=MiB
        )
        assert frame.payload == b"Hello"


def test_receiver_rejects_data_after_bfinal_block() -> None:
    with pytest.raises(ProtocolViolation, match="after the final DEFLATE block"):
        make_extension().decode(
            Frame(Opcode.TEXT, bytes.fromhex("f348cdc9c90700") + HELLO, rsv1=True), max_size=MiB
        )


@pytest.mark.parametrize("payload", [b"", b"\x00"])
def test_receiver_inflates_empty_message(payload: bytes) -> None:
    frame = make_extension().decode(Frame(Opcode.BINARY, payload, rsv1=True), max_size=0)
    assert frame == Frame(Opcode.BINARY, b"")


def test_receiver_passes_uncompressed_message_through() -> None:
    extension = make_extension()
    first = Frame(Opcode.TEXT, b"Hel", fin=False)
    last = Frame(Opcode.CONTINUATION, b"lo")
    assert extension.decode(first, max_size=MiB) is first
    assert extension.decode(last, max_size=MiB) is last
    assert not has_zlib_state(extension)


def test_receiver_alternates_compressed_and_uncompressed_messages() -> None:
    extension = make_extension()
    assert extension.decode(Frame(Opcode.TEXT, HELLO, rsv1=True), max_size=MiB).payload == b"Hello"
    assert extension.decode(Frame(Opcode.TEXT, HELLO_AGAIN), max_size=MiB).payload == HELLO_AGAIN
    assert (
        extension.decode(Frame(Opcode.TEXT, HELLO_AGAIN, rsv1=True), max_size=MiB).payload
        == b"Hello"
    )


def test_receiver_rejects_rsv1_on_continuation_frame() -> None:
    extension = make_extension()
    extension.decode(Frame(Opcode.TEXT, HELLO[:3], fin=False, rsv1=True), max_size=MiB)
    with pytest.raises(ProtocolViolation, match="RSV1 set on a continuation frame"):
        extension.decode(Frame(Opcode.CONTINUATION, HELLO[3:], rsv1=True), max_size=MiB)


def test_receiver_rejects_rsv1_on_continuation_of_uncompressed_message() -> None:
    extension = make_extension()
    extension.decode(Frame(Opcode.TEXT, b"Hel", fin=False), max_size=MiB)
    with pytest.raises(ProtocolViolation, match="RSV1 set on a continuation frame"):
        extension.decode(Frame(Opcode.CONTINUATION, b"lo", rsv1=True), max_size=MiB)


def test_receiver_rejects_corrupt_data_as_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation, match="invalid compressed data") as caught:
        make_extension().decode(Frame(Opcode.BINARY, b"\xff\xff\xff\xff", rsv1=True), max_size=MiB)
    assert type(caught.value) is ProtocolViolation
    assert isinstance(caught.value.__cause__, zlib.error)


def test_receiver_rejects_distance_beyond_negotiated_window() -> None:
    # Compressed with a 15-bit window, the second frame repeats the first, 1000 bytes back: too
    # far for 8 bits. (zlib checks the window only for history from earlier frames.)
    chunk = os.urandom(1000)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
    last = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
    extension = make_extension(remote_max_window_bits=8)
    extension.decode(Frame(Opcode.BINARY, first, fin=False, rsv1=True), max_size=MiB)
    with pytest.raises(ProtocolViolation, match="invalid distance too far back"):
        extension.decode(Frame(Opcode.CONTINUATION, last[:-4]), max_size=MiB)


def test_receiver_accepts_message_of_exactly_max_size() -> None:
    sender, receiver = make_pair()
    frame = receiver.decode(sender.encode(Frame(Opcode.BINARY, b"x" * 1000)), max_size=1000)
    assert frame.payload == b"x" * 1000


def test_receiver_rejects_message_one_byte_over_max_size() -> None:
    sender, receiver = make_pair()
    with pytest.raises(MessageTooBig, match="exceeds the limit of 999 bytes"):
        receiver.decode(sender.encode(Frame(Opcode.BINARY, b"x" * 1000)), max_size=999)


@pytest.mark.parametrize("frames", [[b"x" * 1000], [b"x" * 500, b"x" * 500]])
def test_receiver_rejects_uncompressed_message_over_max_size(frames: list[bytes]) -> None:
    # The connection's frame budget allows deflate's overhead; the extension holds the limit.
    receiver = make_extension()
    budget = 999
    with pytest.raises(MessageTooBig, match="uncompressed message exceeds the limit"):
        for frame in fragments(frames):
            budget -= len(receiver.decode(frame, max_size=budget).payload)


def test_receiver_stops_decompression_bomb_without_allocating_it() -> None:
    sender, receiver = make_pair()
    bomb = sender.encode(Frame(Opcode.BINARY, bytes(10 * MiB)))
    assert len(bomb.payload) < 16 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(MessageTooBig):
            receiver.decode(bomb, max_size=MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB


@given(st.binary(max_size=200), st.booleans())
def test_garbage_only_raises_protocol_violation(payload: bytes, fin: bool) -> None:
    with contextlib.suppress(ProtocolViolation):
        make_extension().decode(Frame(Opcode.BINARY, payload, fin=fin, rsv1=True), max_size=1000)


# Encoding


def test_sender_produces_rfc_examples_with_context_takeover() -> None:
    extension = make_extension()
    assert extension.encode(Frame(Opcode.TEXT, b"Hello")) == Frame(Opcode.TEXT, HELLO, rsv1=True)
    assert extension.encode(Frame(Opcode.TEXT, b"Hello")) == Frame(
        Opcode.TEXT, HELLO_AGAIN, rsv1=True
    )


def test_sender_without_context_takeover_starts_each_message_afresh() -> None:
    extension = make_extension(local_no_context_takeover=True)
    assert extension.encode(Frame(Opcode.TEXT, b"Hello")).payload == HELLO
    assert extension.encode(Frame(Opcode.TEXT, b"Hello")).payload == HELLO


def test_sender_compresses_empty_message_to_one_zero_byte() -> None:
    sender, receiver = make_pair()
    frame = sender.encode(Frame(Opcode.BINARY, b""))
    assert frame == Frame(Opcode.BINARY, b"\x00", rsv1=True)
    assert receiver.decode(frame, max_size=0) == Frame(Opcode.BINARY, b"")


def test_sender_sets_rsv1_on_first_frame_of_message_only() -> None:
    extension = make_extension()
    encoded = [extension.encode(frame) for frame in fragments([b"He", b"l", b"lo"], Opcode.TEXT)]
    assert [(frame.opcode, frame.fin, frame.rsv1) for frame in encoded] == [
        (Opcode.TEXT, False, True),
        (Opcode.CONTINUATION, False, False),
        (Opcode.CONTINUATION, True, False),
    ]


def test_sender_fragmented_message_round_trips() -> None:
    sender, receiver = make_pair()
    message = [b"Hello, ", b"", b"world" * 100, b"!"]
    assert transfer(sender, receiver, message) == b"".join(message)
    assert transfer(sender, receiver, message) == b"".join(message)


@pytest.mark.parametrize("no_context_takeover", [False, True])
def test_sender_with_8_bit_window_stays_within_256_bytes(no_context_takeover: bool) -> None:
    # zlib compresses with 9 bits when 8 are negotiated; the receiver inflates with 8 bits, so a
    # match reaching more than 256 bytes back into an earlier frame or message would fail here.
    sender, receiver = make_pair(no_context_takeover=no_context_takeover, window_bits=8)
    for distance in (200, 250, 256, 260, 300, 500):
        chunk = os.urandom(distance)
        assert transfer(sender, receiver, [chunk, chunk, chunk]) == chunk * 3


messages = st.lists(
    st.lists(
        st.binary(max_size=300)
        | st.builds(
            lambda data, count: data * count, st.binary(min_size=1, max_size=40), st.integers(1, 30)
        ),
        min_size=1,
        max_size=4,
    ),
    min_size=1,
    max_size=5,
)


@given(messages, st.booleans(), st.integers(8, 15), st.sampled_from([0, 1, 100, 300, 1024]))
@settings(deadline=None)
def test_decode_inverts_encode(
    message_list: list[list[bytes]], no_context_takeover: bool, window_bits: int, threshold: int
) -> None:
    sender, receiver = make_pair(
        no_context_takeover=no_context_takeover, window_bits=window_bits, threshold=threshold
    )
    for message in message_list:
        assert transfer(sender, receiver, message) == b"".join(message)


# Compression threshold

TEXT = b"the quick brown fox jumps over the lazy dog; " * 40  # 1,800 bytes, compressible


def test_default_threshold_is_1_kib_like_node_ws() -> None:
    assert DEFAULT_COMPRESSION_THRESHOLD == 1024
    server = ServerPerMessageDeflate().negotiate([[]])
    assert server is not None
    assert server[1].compression_threshold == 1024
    assert ClientPerMessageDeflate().accept([]).compression_threshold == 1024


def test_sender_sends_message_below_threshold_uncompressed() -> None:
    sender = make_extension(compression_threshold=1024)
    small = Frame(Opcode.TEXT, TEXT[:1023])
    assert sender.encode(small) == small
    assert sender._compressor is None


def test_sender_compresses_message_at_threshold() -> None:
    sender, receiver = make_pair(threshold=1024)
    encoded = sender.encode(Frame(Opcode.TEXT, TEXT[:1024]))
    assert encoded.rsv1
    assert len(encoded.payload) < 200
    assert receiver.decode(encoded, max_size=MiB) == Frame(Opcode.TEXT, TEXT[:1024])


@pytest.mark.parametrize("payload", [b"", b"a", b"Hello"])
def test_sender_with_threshold_0_compresses_every_message(payload: bytes) -> None:
    sender, receiver = make_pair(threshold=0)
    encoded = sender.encode(Frame(Opcode.BINARY, payload))
    assert encoded.rsv1
    assert receiver.decode(encoded, max_size=MiB).payload == payload


def test_sender_compresses_fragmented_message_whatever_its_first_frame() -> None:
    sender, receiver = make_pair(threshold=1024)
    encoded = [sender.encode(frame) for frame in fragments([b"He", b"llo"], Opcode.TEXT)]
    assert [frame.rsv1 for frame in encoded] == [True, False]
    assert b"".join(receiver.decode(frame, max_size=MiB).payload for frame in encoded) == b"Hello"


@pytest.mark.parametrize("no_context_takeover", [False, True])
def test_mixed_messages_keep_both_windows_in_step(no_context_takeover: bool) -> None:
    # A message sent uncompressed touches neither window, so the next compressed one still
    # refers to what the receiver has. An independent zlib inflater plays the peer.
    sender, receiver = make_pair(no_context_takeover=no_context_takeover, threshold=1024)
    peer = zlib.decompressobj(-15)
    sizes = [1800, 10, 1500, 1023, 0, 1024, 5, 1800, 1800]
    for index, size in enumerate(sizes):
        payload = (TEXT * 2)[index : index + size]
        encoded = sender.encode(Frame(Opcode.TEXT, payload))
        assert encoded.rsv1 is (size >= 1024)
        assert receiver.decode(encoded, max_size=MiB).payload == payload
        if encoded.rsv1:
            if no_context_takeover:
                peer = zlib.decompressobj(-15)
            assert peer.decompress(encoded.payload + b"\x00\x00\xff\xff") == payload
        else:
            assert encoded.payload == payload
    # With context takeover, later repeats are encoded as references into the window.
    if not no_context_takeover:
        assert len(sender.encode(Frame(Opcode.TEXT, TEXT)).payload) < 30


def test_extension_refuses_negative_threshold() -> None:
    with pytest.raises(ValueError, match="compression_threshold must be 0 or more"):
        make_extension(compression_threshold=-1)
    with pytest.raises(ValueError, match="compression_threshold must be 0 or more"):
        ServerPerMessageDeflate(compression_threshold=-1)
    with pytest.raises(ValueError, match="compression_threshold must be 0 or more"):
        ClientPerMessageDeflate(compression_threshold=-1)


# Memory


def test_new_extension_holds_no_zlib_objects() -> None:
    assert not has_zlib_state(make_extension())


def test_idle_extension_takes_under_6_kib() -> None:
    tracemalloc.start()
    try:
        extensions = [make_extension() for _ in range(100)]
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(extensions) == 100
    assert size / 100 < 6 * 1024


def test_extension_without_context_takeover_releases_zlib_objects_after_each_message() -> None:
    sender, receiver = make_pair(no_context_takeover=True)
    for frame in fragments([b"Hello, ", b"world"]):
        encoded = sender.encode(frame)
        receiver.decode(encoded, max_size=MiB)
        assert has_zlib_state(sender) is has_zlib_state(receiver) is (not frame.fin)


def test_extension_with_context_takeover_keeps_zlib_objects_between_messages() -> None:
    sender, receiver = make_pair()
    transfer(sender, receiver, [b"Hello"])
    assert sender._compressor is not None
    assert receiver._decompressor is not None


@pytest.mark.parametrize(
    "options",
    [
        {"local_max_window_bits": 7},
        {"remote_max_window_bits": 16},
        {"compress_level": 10},
        {"memory_level": 0},
    ],
)
def test_extension_refuses_out_of_range_settings(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be from"):
        make_extension(**options)


# Negotiation: client


def test_default_client_offers_client_max_window_bits_like_browsers() -> None:
    assert ClientPerMessageDeflate().offer() == [("client_max_window_bits", None)]


def test_client_offers_every_parameter() -> None:
    client = ClientPerMessageDeflate(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=11,
    )
    assert client.offer() == [
        ("server_no_context_takeover", None),
        ("client_no_context_takeover", None),
        ("server_max_window_bits", "10"),
        ("client_max_window_bits", "11"),
    ]


def test_client_offers_nothing_else_when_client_max_window_bits_is_none() -> None:
    assert ClientPerMessageDeflate(client_max_window_bits=None).offer() == []


@pytest.mark.parametrize(
    "options",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": False},
        {"client_max_window_bits": 16},
        {"compress_level": -2},
    ],
)
def test_client_refuses_out_of_range_settings(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be from"):
        ClientPerMessageDeflate(**options)  # type: ignore[arg-type]


def test_client_accepts_empty_response_with_defaults() -> None:
    extension = ClientPerMessageDeflate().accept([])
    assert (extension.local_no_context_takeover, extension.remote_no_context_takeover) == (
        False,
        False,
    )
    # The client compresses with its (smaller) default window and decodes with the full one.
    assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (12, 15)


def test_client_accepts_response_narrowing_every_parameter() -> None:
    response: ExtensionParameters = [
        ("server_no_context_takeover", None),
        ("client_no_context_takeover", None),
        ("server_max_window_bits", "9"),
        ("client_max_window_bits", "10"),
    ]
    extension = ClientPerMessageDeflate().accept(response)
    assert (extension.local_no_context_takeover, extension.remote_no_context_takeover) == (
        True,
        True,
    )
    assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (10, 9)


def test_client_keeps_its_own_promises_when_server_is_silent() -> None:
    client = ClientPerMessageDeflate(client_no_context_takeover=True, client_max_window_bits=12)
    extension = client.accept([])
    assert extension.local_no_context_takeover
    assert extension.local_max_window_bits == 12


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ([("foo", None)], "unknown parameter"),
        ([("server_no_context_takeover", None), ("server_no_context_takeover", None)], "duplicate"),
        ([("server_no_context_takeover", "1")], "takes no value"),
        ([("server_max_window_bits", None)], "integer from 8 to 15"),
        ([("server_max_window_bits", "7")], "integer from 8 to 15"),
        ([("server_max_window_bits", "010")], "integer from 8 to 15"),
        ([("client_max_window_bits", None)], "integer from 8 to 15"),
        ([("client_max_window_bits", "16")], "integer from 8 to 15"),
    ],
)
def test_client_rejects_malformed_response(response: ExtensionParameters, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        ClientPerMessageDeflate().accept(response)


def test_client_rejects_client_max_window_bits_it_did_not_offer() -> None:
    client = ClientPerMessageDeflate(client_max_window_bits=None)
    with pytest.raises(NegotiationError, match="not offered"):
        client.accept([("client_max_window_bits", "10")])


def test_client_rejects_client_max_window_bits_larger_than_offered() -> None:
    client = ClientPerMessageDeflate(client_max_window_bits=10)
    with pytest.raises(NegotiationError, match="client_max_window_bits=11 to an offer of 10"):
        client.accept([("client_max_window_bits", "11")])


def test_client_rejects_response_ignoring_server_no_context_takeover() -> None:
    client = ClientPerMessageDeflate(server_no_context_takeover=True)
    with pytest.raises(NegotiationError, match="server_no_context_takeover"):
        client.accept([])


@pytest.mark.parametrize("response", [[], [("server_max_window_bits", "11")]])
def test_client_rejects_response_ignoring_server_max_window_bits(
    response: ExtensionParameters,
) -> None:
    client = ClientPerMessageDeflate(server_max_window_bits=10)
    with pytest.raises(NegotiationError, match="server_max_window_bits"):
        client.accept(response)


def test_client_accepts_server_narrowing_what_was_not_requested() -> None:
    # RFC 7692 §7.1.1.1 and §7.1.2.1: the server may add these on its own.
    extension = ClientPerMessageDeflate().accept(
        [("server_no_context_takeover", None), ("server_max_window_bits", "8")]
    )
    assert extension.remote_no_context_takeover
    assert extension.remote_max_window_bits == 8


# Negotiation: server


def test_server_accepts_browser_offer() -> None:
    outcome = ServerPerMessageDeflate().negotiate([[("client_max_window_bits", None)]])
    assert outcome is not None
    response, extension = outcome
    assert response == []
    assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (12, 15)


def test_server_accepts_offer_without_parameters() -> None:
    outcome = ServerPerMessageDeflate().negotiate([[]])
    assert outcome is not None
    assert outcome[0] == []


@pytest.mark.parametrize(
    "offer",
    [
        [("foo", None)],
        [("client_max_window_bits", None), ("client_max_window_bits", None)],
        [("client_no_context_takeover", "true")],
        [("server_max_window_bits", None)],
        [("server_max_window_bits", "7")],
        [("server_max_window_bits", "16")],
        [("server_max_window_bits", "09")],
        [("client_max_window_bits", "0x9")],
    ],
)
def test_server_declines_malformed_offer(offer: ExtensionParameters) -> None:
    # RFC 7692 §5: the server MUST decline such an offer, which is not an error.
    assert ServerPerMessageDeflate().negotiate([offer]) is None


def test_server_declines_offer_with_unknown_parameter_for_next_offer() -> None:
    offers: list[ExtensionParameters] = [
        [("x-unknown", None)],
        [("client_no_context_takeover", None), ("client_max_window_bits", None)],
    ]
    outcome = ServerPerMessageDeflate().negotiate(offers)
    assert outcome is not None
    assert outcome[0] == [("client_no_context_takeover", None)]


def test_server_declines_offer_it_cannot_limit_when_client_window_is_configured() -> None:
    server = ServerPerMessageDeflate(client_max_window_bits=10)
    assert server.negotiate([[]]) is None
    outcome = server.negotiate([[], [("client_max_window_bits", None)]])
    assert outcome is not None
    assert outcome[0] == [("client_max_window_bits", "10")]


@pytest.mark.parametrize(
    ("configured", "offer", "response"),
    [
        ({}, [("server_no_context_takeover", None)], [("server_no_context_takeover", None)]),
        ({"server_no_context_takeover": True}, [], [("server_no_context_takeover", None)]),
        ({}, [("client_no_context_takeover", None)], [("client_no_context_takeover", None)]),
        ({"client_no_context_takeover": True}, [], [("client_no_context_takeover", None)]),
        ({}, [("server_max_window_bits", "12")], [("server_max_window_bits", "12")]),
        ({"server_max_window_bits": 10}, [], [("server_max_window_bits", "10")]),
        (
            {"server_max_window_bits": 10},
            [("server_max_window_bits", "12")],
            [("server_max_window_bits", "10")],
        ),
        (
            {"server_max_window_bits": 12},
            [("server_max_window_bits", "9")],
            [("server_max_window_bits", "9")],
        ),
        ({}, [("client_max_window_bits", "11")], [("client_max_window_bits", "11")]),
        ({}, [("client_max_window_bits", "15")], []),
        (
            {"client_max_window_bits": 9},
            [("client_max_window_bits", "11")],
            [("client_max_window_bits", "9")],
        ),
        (
            {"client_max_window_bits": 12},
            [("client_max_window_bits", "11")],
            [("client_max_window_bits", "11")],
        ),
    ],
)
def test_server_answers_with_narrowest_parameters(
    configured: dict[str, bool | int], offer: ExtensionParameters, response: ExtensionParameters
) -> None:
    outcome = ServerPerMessageDeflate(**configured).negotiate([offer])  # type: ignore[arg-type]
    assert outcome is not None
    assert outcome[0] == response


# Negotiation: both ends

PARAMETERS = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


def combinations(*choices: list[object]) -> list[dict[str, object]]:
    """Every combination of values for the four parameters."""
    return [dict(zip(PARAMETERS, values, strict=True)) for values in itertools.product(*choices)]


CLIENT_SETTINGS = combinations([False, True], [False, True], [None, 8, 12], [None, True, 9, 15])
SERVER_SETTINGS = combinations([False, True], [False, True], [None, 10], [None, 11])


def smallest(*bits: object) -> int:
    return min([15, *(value for value in bits if type(value) is int)])


@pytest.mark.parametrize("server_settings", SERVER_SETTINGS)
def test_client_and_server_agree_on_every_combination(server_settings: dict[str, object]) -> None:
    server = ServerPerMessageDeflate(**server_settings)  # type: ignore[arg-type]
    for client_settings in CLIENT_SETTINGS:
        client = ClientPerMessageDeflate(**client_settings)  # type: ignore[arg-type]
        outcome = server.negotiate([client.offer()])
        if outcome is None:
            # Declined only when the server must limit a client that did not offer to be limited.
            assert client_settings["client_max_window_bits"] is None
            assert server_settings["client_max_window_bits"] is not None
            continue
        response, server_side = outcome
        client_side = client.accept(response)

        assert client_side.local_no_context_takeover == server_side.remote_no_context_takeover
        assert client_side.remote_no_context_takeover == server_side.local_no_context_takeover
        # Each end may compress with a smaller window than the peer decodes with.
        assert client_side.local_max_window_bits <= server_side.remote_max_window_bits
        assert client_side.remote_max_window_bits >= server_side.local_max_window_bits

        assert server_side.local_no_context_takeover == (
            client_settings["server_no_context_takeover"]
            or server_settings["server_no_context_takeover"]
        )
        assert server_side.remote_no_context_takeover == (
            client_settings["client_no_context_takeover"]
            or server_settings["client_no_context_takeover"]
        )
        assert server_side.local_max_window_bits == min(
            smallest(
                client_settings["server_max_window_bits"],
                server_settings["server_max_window_bits"],
            ),
            12,
        )
        assert client_side.local_max_window_bits == min(
            smallest(
                client_settings["client_max_window_bits"],
                server_settings["client_max_window_bits"],
            ),
            12,
        )

        for _ in range(2):
            assert transfer(client_side, server_side, [b"Hello, ", b"server"]) == b"Hello, server"
            assert transfer(server_side, client_side, [b"Hello, client"]) == b"Hello, client"


def test_server_compresses_with_its_configured_window_without_announcing_it() -> None:
    server = ServerPerMessageDeflate(compress_window_bits=10)
    outcome = server.negotiate([[("client_max_window_bits", None)]])
    assert outcome is not None
    response, extension = outcome
    assert response == []
    assert extension.local_max_window_bits == 10
    client_side = ClientPerMessageDeflate().accept(response)
    message = bytes(range(256)) * 64
    assert transfer(extension, client_side, [message]) == message
