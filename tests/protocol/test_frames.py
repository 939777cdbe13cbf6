"""Tests for the frame format (RFC 6455 §5): FrameParser, serialize_frame and close payloads."""

from __future__ import annotations

import re
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fullduplex.exceptions import InvalidPayload, MessageTooBig, ProtocolViolation
from fullduplex.protocol._compiled import _apply_mask_python
from fullduplex.protocol.events import BinaryReceived, Event, TextReceived
from fullduplex.protocol.frames import (
    MAX_CONTROL_PAYLOAD,
    CloseCode,
    Frame,
    FrameParser,
    Opcode,
    _serialize_message_python,
    apply_mask,
    parse_close_payload,
    serialize_close_payload,
    serialize_frame,
    serialize_message,
)

from ..wire import encode_frame

MASK = bytes([0x37, 0xFA, 0x21, 0x3D])  # the masking key of RFC 6455 §5.7's examples
UNLIMITED = 2**63 - 1
RESERVED_OPCODES = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]


def serialized(opcode: int, payload: bytes, **options: object) -> bytes:
    """The bytes of the library's own serializer, for the tests of `serialize_frame`."""
    return b"".join(serialize_frame(opcode, payload, **options))  # type: ignore[arg-type]


# Parser input comes from the suite's own encoder (tests/wire.py), never from serialize_frame.
wire = encode_frame


def parse_all(data: bytes, *, expect_masked: bool, max_payload: int = UNLIMITED) -> list[Frame]:
    parser = FrameParser(expect_masked=expect_masked)
    parser.feed(data)
    frames = []
    while (frame := parser.next_frame(max_payload)) is not None:
        frames.append(frame)
    assert parser.buffered == 0
    return frames


# --- RFC 6455 §5.7: the spec's own examples are the oracle ---------------------------------


@pytest.mark.parametrize(
    ("data", "expect_masked", "frame"),
    [
        pytest.param(
            bytes.fromhex("810548656c6c6f"), False, Frame(Opcode.TEXT, b"Hello"), id="unmasked-text"
        ),
        pytest.param(
            bytes.fromhex("818537fa213d7f9f4d5158"),
            True,
            Frame(Opcode.TEXT, b"Hello"),
            id="masked-text",
        ),
        pytest.param(
            bytes.fromhex("890548656c6c6f"), False, Frame(Opcode.PING, b"Hello"), id="unmasked-ping"
        ),
        pytest.param(
            bytes.fromhex("8a8537fa213d7f9f4d5158"),
            True,
            Frame(Opcode.PONG, b"Hello"),
            id="masked-pong",
        ),
    ],
)
def test_parser_reads_rfc_examples(data: bytes, expect_masked: bool, frame: Frame) -> None:
    assert parse_all(data, expect_masked=expect_masked) == [frame]


def test_parser_reads_rfc_fragmented_example() -> None:
    data = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
    assert parse_all(data, expect_masked=False) == [
        Frame(Opcode.TEXT, b"Hel", fin=False),
        Frame(Opcode.CONTINUATION, b"lo"),
    ]


@pytest.mark.parametrize(
    ("opcode", "payload", "mask", "expected"),
    [
        (Opcode.TEXT, b"Hello", None, "810548656c6c6f"),
        (Opcode.TEXT, b"Hello", MASK, "818537fa213d7f9f4d5158"),
        (Opcode.PONG, b"Hello", MASK, "8a8537fa213d7f9f4d5158"),
    ],
)
def test_serializer_writes_rfc_examples(
    opcode: int, payload: bytes, mask: bytes | None, expected: str
) -> None:
    assert serialized(opcode, payload, mask=mask) == bytes.fromhex(expected)


def test_serializer_writes_rfc_256_byte_and_64_kib_headers() -> None:
    assert serialized(Opcode.BINARY, bytes(256)).startswith(bytes.fromhex("827e0100"))
    assert serialized(Opcode.BINARY, bytes(65536)).startswith(bytes.fromhex("827f0000000000010000"))


# --- payload length encodings: 7, 7+16 and 7+64 bits -------------------------------------


@pytest.mark.parametrize(
    ("length", "header_size"),
    [(0, 2), (1, 2), (125, 2), (126, 4), (127, 4), (65535, 4), (65536, 10), (70000, 10)],
)
@pytest.mark.parametrize("mask", [None, MASK], ids=["unmasked", "masked"])
def test_serializer_uses_shortest_header_at_length_boundaries(
    length: int, header_size: int, mask: bytes | None
) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    data = serialized(Opcode.BINARY, payload, mask=mask)
    mask_size = 0 if mask is None else 4
    assert len(data) == header_size + mask_size + length
    assert data[0] == 0x82
    assert data[1] & 0x80 == (0x80 if mask else 0)
    if header_size == 2:
        assert data[1] & 0x7F == length
    elif header_size == 4:
        assert data[1] & 0x7F == 126
        assert struct.unpack("!H", data[2:4]) == (length,)
    else:
        assert data[1] & 0x7F == 127
        assert struct.unpack("!Q", data[2:10]) == (length,)
    assert parse_all(data, expect_masked=mask is not None) == [Frame(Opcode.BINARY, payload)]


@pytest.mark.parametrize(
    ("header", "needed"),
    [
        (b"\x82", 2),  # no length byte yet
        (b"\x82\x7e\x01", 4),  # 16-bit length incomplete
        (b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00", 10),  # 64-bit length incomplete
        (b"\x82\x85\x37\xfa\x21", 6),  # masking key incomplete
    ],
)
def test_parser_waits_for_complete_header(header: bytes, needed: int) -> None:
    parser = FrameParser(expect_masked=bool(header[1:2] and header[1] & 0x80))
    parser.feed(header)
    assert parser.next_frame(UNLIMITED) is None
    assert parser.buffered == len(header)
    assert len(header) < needed


def test_parser_waits_for_complete_payload_then_returns_frame() -> None:
    data = wire(Opcode.BINARY, b"abcdef", mask=MASK)
    parser = FrameParser(expect_masked=True)
    parser.feed(data[:-1])
    assert parser.next_frame(UNLIMITED) is None
    parser.feed(data[-1:])
    assert parser.next_frame(UNLIMITED) == Frame(Opcode.BINARY, b"abcdef")
    assert parser.next_frame(UNLIMITED) is None
    assert parser.buffered == 0


def test_parser_returns_back_to_back_frames_in_order() -> None:
    data = (
        wire(Opcode.TEXT, b"a", fin=False)
        + wire(Opcode.PING, b"p")
        + wire(Opcode.CONTINUATION, b"b")
    )
    assert parse_all(data, expect_masked=False) == [
        Frame(Opcode.TEXT, b"a", fin=False),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.CONTINUATION, b"b"),
    ]


def test_parser_reports_fin_and_every_rsv_bit() -> None:
    frames = parse_all(bytes([0x72, 0x00, 0x42, 0x00, 0x22, 0x00, 0x12, 0x00]), expect_masked=False)
    assert [(f.fin, f.rsv1, f.rsv2, f.rsv3) for f in frames] == [
        (False, True, True, True),
        (False, True, False, False),
        (False, False, True, False),
        (False, False, False, True),
    ]


def test_serializer_sets_rsv1_and_clears_fin() -> None:
    assert serialized(Opcode.TEXT, b"", fin=False, rsv1=True) == b"\x41\x00"


# --- masking (RFC 6455 §5.1, §5.3) ---------------------------------------------------------


def test_server_parser_rejects_unmasked_frame() -> None:
    parser = FrameParser(expect_masked=True)
    parser.feed(wire(Opcode.TEXT, b"hi"))
    with pytest.raises(ProtocolViolation, match="not masked"):
        parser.next_frame(UNLIMITED)


def test_client_parser_rejects_masked_frame() -> None:
    parser = FrameParser(expect_masked=False)
    parser.feed(wire(Opcode.TEXT, b"hi", mask=MASK))
    with pytest.raises(ProtocolViolation, match="masked"):
        parser.next_frame(UNLIMITED)


def test_parser_unmasks_with_all_zero_key() -> None:
    data = wire(Opcode.BINARY, b"plain", mask=b"\x00\x00\x00\x00")
    assert data.endswith(b"plain")
    assert parse_all(data, expect_masked=True) == [Frame(Opcode.BINARY, b"plain")]


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_apply_mask_is_its_own_inverse_and_matches_pure_python(data: bytes, mask: bytes) -> None:
    masked = apply_mask(data, mask)
    assert masked == _apply_mask_python(data, mask)
    assert masked == bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert apply_mask(masked, mask) == data


# --- header rules: opcodes, control frames, limits ------------------------------------------


@pytest.mark.parametrize("opcode", RESERVED_OPCODES)
def test_parser_rejects_reserved_opcode(opcode: int) -> None:
    parser = FrameParser(expect_masked=False)
    parser.feed(bytes([0x80 | opcode, 0x00]))
    with pytest.raises(ProtocolViolation, match="reserved opcode"):
        parser.next_frame(UNLIMITED)
    assert parser.refused_opcode == opcode


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
def test_parser_accepts_control_frame_of_125_bytes(opcode: int) -> None:
    payload = b"\x03\xe8" + b"x" * 123 if opcode == Opcode.CLOSE else b"x" * 125
    assert parse_all(wire(opcode, payload), expect_masked=False) == [Frame(opcode, payload)]


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
def test_parser_rejects_control_frame_over_125_bytes(opcode: int) -> None:
    parser = FrameParser(expect_masked=False)
    parser.feed(wire(opcode, b"x" * 126)[:4])  # the header alone is enough to refuse it
    with pytest.raises(ProtocolViolation, match="exceeds 125"):
        parser.next_frame(UNLIMITED)
    assert parser.refused_opcode == opcode


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
def test_parser_rejects_fragmented_control_frame(opcode: int) -> None:
    parser = FrameParser(expect_masked=False)
    parser.feed(wire(opcode, b"", fin=False))
    with pytest.raises(ProtocolViolation, match="fragmented control frame"):
        parser.next_frame(UNLIMITED)


def test_control_frame_limit_does_not_depend_on_max_payload() -> None:
    assert parse_all(wire(Opcode.PING, b"x" * 100), expect_masked=False, max_payload=10) == [
        Frame(Opcode.PING, b"x" * 100)
    ]


def test_parser_accepts_data_frame_of_exactly_max_payload() -> None:
    frames = parse_all(wire(Opcode.BINARY, bytes(1000)), expect_masked=False, max_payload=1000)
    assert frames == [Frame(Opcode.BINARY, bytes(1000))]


def test_parser_rejects_data_frame_over_max_payload_from_header_alone() -> None:
    parser = FrameParser(expect_masked=True)
    # A header declaring 2**40 bytes: refused before a single payload byte is buffered.
    parser.feed(bytes([0x82, 0xFF]) + struct.pack("!Q", 2**40) + MASK)
    with pytest.raises(MessageTooBig, match="exceeds the limit of 1000"):
        parser.next_frame(1000)
    assert parser.buffered == 0


def test_parser_rejects_64_bit_length_with_most_significant_bit_set() -> None:
    parser = FrameParser(expect_masked=False)
    parser.feed(bytes([0x82, 0x7F]) + struct.pack("!Q", 2**63))
    with pytest.raises(ProtocolViolation, match="most significant bit"):
        parser.next_frame(UNLIMITED)
    # The stream cannot be resynchronized: no frame is ever returned after this one.
    parser.feed(wire(Opcode.PING, b""))
    with pytest.raises(ProtocolViolation):
        parser.next_frame(UNLIMITED)


def test_parser_checks_opcode_before_masking() -> None:
    parser = FrameParser(expect_masked=True)
    parser.feed(bytes([0x83, 0x00]))
    with pytest.raises(ProtocolViolation, match="reserved opcode"):
        parser.next_frame(UNLIMITED)


# --- recovery: a refused frame is skipped, so a later close frame is still read -------------


def test_parser_skips_refused_frame_already_buffered() -> None:
    parser = FrameParser(expect_masked=True)
    parser.feed(
        wire(Opcode.BINARY, bytes(500), mask=MASK) + wire(Opcode.CLOSE, b"\x03\xe8", mask=MASK)
    )
    with pytest.raises(MessageTooBig):
        parser.next_frame(100)
    assert parser.refused_opcode == Opcode.BINARY
    assert parser.next_frame(100) == Frame(Opcode.CLOSE, b"\x03\xe8")


def test_parser_discards_rest_of_refused_frame_as_it_arrives() -> None:
    big = wire(Opcode.BINARY, bytes(range(256)) * 40, mask=MASK)
    close = wire(Opcode.CLOSE, b"\x03\xe8", mask=MASK)
    parser = FrameParser(expect_masked=True)
    parser.feed(big[:14])
    with pytest.raises(MessageTooBig):
        parser.next_frame(100)
    for start in range(14, len(big), 1000):
        parser.feed(big[start : start + 1000])
        assert parser.next_frame(100) is None
        assert parser.buffered == 0
    parser.feed(close[:3])
    parser.feed(close[3:])
    assert parser.next_frame(100) == Frame(Opcode.CLOSE, b"\x03\xe8")


def test_parser_discards_refused_frame_tail_in_same_chunk_as_next_frame() -> None:
    big = wire(Opcode.BINARY, bytes(300), mask=MASK)
    ping = wire(Opcode.PING, b"after", mask=MASK)
    parser = FrameParser(expect_masked=True)
    parser.feed(big[:20])
    with pytest.raises(MessageTooBig):
        parser.next_frame(100)
    parser.feed(big[20:] + ping)
    assert parser.next_frame(100) == Frame(Opcode.PING, b"after")


# --- peek_payload: the received part of an incomplete frame ---------------------------------


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 5, 7])
def test_peek_payload_unmasks_partial_payload_from_any_offset(offset: int) -> None:
    payload = b"0123456789"
    data = wire(Opcode.TEXT, payload, mask=MASK)
    parser = FrameParser(expect_masked=True)
    parser.feed(data[:-2])
    assert parser.next_frame(UNLIMITED) is None
    assert parser.peek_payload(offset) == (Opcode.TEXT, payload[offset:-2])


def test_peek_payload_reads_unmasked_partial_payload_after_extended_length() -> None:
    payload = b"y" * 200
    parser = FrameParser(expect_masked=False)
    parser.feed(wire(Opcode.TEXT, payload)[:50])
    assert parser.peek_payload(0) == (Opcode.TEXT, payload[:46])
    assert parser.peek_payload(46) is None


def test_peek_payload_returns_none_without_payload_bytes() -> None:
    parser = FrameParser(expect_masked=True)
    assert parser.peek_payload(0) is None
    parser.feed(wire(Opcode.TEXT, b"abc", mask=MASK)[:6])
    assert parser.peek_payload(0) is None


# --- close payloads (RFC 6455 §5.5.1, §7.4) ------------------------------------------------

VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_CLOSE_CODES += [3000, 3999, 4000, 4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def test_empty_close_payload_means_no_status_received() -> None:
    assert parse_close_payload(b"") == (CloseCode.NO_STATUS_RCVD, "")


@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_close_payload_with_valid_code_parses(code: int) -> None:
    assert parse_close_payload(struct.pack("!H", code) + "bye ✓".encode()) == (code, "bye ✓")


@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
def test_close_payload_with_invalid_code_is_protocol_violation(code: int) -> None:
    with pytest.raises(ProtocolViolation, match=f"invalid close code {code}") as info:
        parse_close_payload(struct.pack("!H", code))
    assert info.value.close_code == 1002


def test_one_byte_close_payload_is_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation, match="1 byte") as info:
        parse_close_payload(b"\x03")
    assert info.value.close_code == 1002


@pytest.mark.parametrize("reason", [b"\xff", b"\xce\xba\xe1\xbd", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_close_reason_with_invalid_utf8_is_invalid_payload(reason: bytes) -> None:
    with pytest.raises(InvalidPayload) as info:
        parse_close_payload(b"\x03\xe8" + reason)
    assert info.value.close_code == 1007


@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_serialize_close_payload_round_trips(code: int) -> None:
    assert parse_close_payload(serialize_close_payload(code, "why")) == (code, "why")


def test_serialize_close_payload_without_status_is_empty() -> None:
    assert serialize_close_payload(CloseCode.NO_STATUS_RCVD) == b""
    with pytest.raises(ValueError, match="without a code"):
        serialize_close_payload(CloseCode.NO_STATUS_RCVD, "reason")


@pytest.mark.parametrize("code", [c for c in INVALID_CLOSE_CODES if c != 1005])
def test_serialize_close_payload_refuses_unsendable_code(code: int) -> None:
    with pytest.raises(ValueError, match="may not be sent"):
        serialize_close_payload(code)


def test_serialize_close_payload_accepts_123_byte_reason_and_refuses_124() -> None:
    assert len(serialize_close_payload(1000, "é" * 61 + "x")) == MAX_CONTROL_PAYLOAD
    with pytest.raises(ValueError, match="124 UTF-8 bytes"):
        serialize_close_payload(1000, "é" * 62)


def test_opcode_knows_control_opcodes() -> None:
    assert [op.is_control for op in Opcode] == [False, False, False, True, True, True]


# --- properties -----------------------------------------------------------------------------

BOUNDARY_SIZES = [0, 1, 125, 126, 127, 65535, 65536]

data_payloads = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(BOUNDARY_SIZES).map(
        lambda size: bytes(range(256)) * (size // 256) + bytes(size % 256)
    ),
)


@st.composite
def frames(draw: st.DrawFn) -> tuple[Frame, bytes | None]:
    """A frame that serialize_frame can write, and the mask to write it with."""
    opcode = draw(st.sampled_from(list(Opcode)))
    if opcode.is_control:
        payload = draw(st.binary(max_size=MAX_CONTROL_PAYLOAD))
        fin = True
    else:
        payload = draw(data_payloads)
        fin = draw(st.booleans())
    rsv1 = draw(st.booleans())
    mask = draw(st.none() | st.binary(min_size=4, max_size=4))
    return Frame(opcode, payload, fin, rsv1), mask


@given(frames())
def test_serializer_agrees_with_the_suites_own_encoder(
    frame_and_mask: tuple[Frame, bytes | None],
) -> None:
    frame, mask = frame_and_mask
    options = {"fin": frame.fin, "rsv1": frame.rsv1, "mask": mask}
    assert serialized(frame.opcode, frame.payload, **options) == encode_frame(
        frame.opcode, frame.payload, **options
    )


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(frames(), st.lists(st.integers(min_value=0), max_size=8))
@settings(deadline=None)
def test_parse_inverts_serialize_for_any_chunking(
    frame_and_mask: tuple[Frame, bytes | None], cuts: list[int]
) -> None:
    frame, mask = frame_and_mask
    data = serialized(frame.opcode, frame.payload, fin=frame.fin, rsv1=frame.rsv1, mask=mask)
    parser = FrameParser(expect_masked=mask is not None)
    parsed = []
    for chunk in split(data, cuts):
        parser.feed(chunk)
        while (result := parser.next_frame(UNLIMITED)) is not None:
            parsed.append(result)
    assert parsed == [frame]
    assert parser.buffered == 0


@given(
    st.lists(frames(), max_size=5), st.booleans(), st.lists(st.integers(min_value=0), max_size=8)
)
@settings(deadline=None)
def test_parse_inverts_serialize_for_frame_sequences(
    frames_and_masks: list[tuple[Frame, bytes | None]], masked: bool, cuts: list[int]
) -> None:
    mask = MASK if masked else None
    sent = [frame for frame, _ in frames_and_masks]
    data = b"".join(
        serialized(f.opcode, f.payload, fin=f.fin, rsv1=f.rsv1, mask=mask) for f in sent
    )
    parser = FrameParser(expect_masked=masked)
    parsed = []
    for chunk in split(data, cuts):
        parser.feed(chunk)
        while (result := parser.next_frame(UNLIMITED)) is not None:
            parsed.append(result)
    assert parsed == sent


@given(
    st.binary(max_size=200),
    st.booleans(),
    st.integers(min_value=0, max_value=300),
    st.lists(st.integers(min_value=0), max_size=4),
)
def test_parser_only_raises_protocol_violation_on_garbage(
    data: bytes, expect_masked: bool, max_payload: int, cuts: list[int]
) -> None:
    parser = FrameParser(expect_masked=expect_masked)
    for chunk in split(data, cuts):
        parser.feed(chunk)
        for _ in range(len(data) + 1):  # every frame is at least 2 bytes: this ends the loop
            try:
                frame = parser.next_frame(max_payload)
            except ProtocolViolation:
                continue
            if frame is None:
                break
            assert frame.opcode in set(Opcode)
            assert len(frame.payload) <= (MAX_CONTROL_PAYLOAD if frame.opcode >= 8 else max_payload)


# --- next_messages: whole messages in one plain frame, straight to events --------------------

MESSAGE_TYPES = (TextReceived, BinaryReceived)

TEXT_AND_BINARY = [
    (Opcode.TEXT, b"", TextReceived("")),
    (Opcode.BINARY, b"", BinaryReceived(b"")),
    (Opcode.TEXT, "héllo 𝄞".encode(), TextReceived("héllo 𝄞")),
    (Opcode.BINARY, bytes(range(126)), BinaryReceived(bytes(range(126)))),
    (Opcode.TEXT, "€".encode() * 70, TextReceived("€" * 70)),
    (Opcode.BINARY, b"\xff" * 3, BinaryReceived(b"\xff" * 3)),
]


def wire_as_peer(opcode: int, payload: bytes, *, masked: bool, **options: bool) -> bytes:
    """A frame as the peer of a server (``masked``) or of a client sends it."""
    return wire(opcode, payload, mask=MASK if masked else None, **options)


def as_message(frame: Frame) -> Frame | Event:
    """What next_messages makes of ``frame``: an event for a whole plain message, else itself."""
    if frame.fin and not (frame.rsv1 or frame.rsv2 or frame.rsv3):
        if frame.opcode == Opcode.BINARY:
            return BinaryReceived(frame.payload)
        if frame.opcode == Opcode.TEXT:
            try:
                return TextReceived(frame.payload.decode())
            except UnicodeDecodeError:
                pass
    return frame


def parse_with(
    chunks: list[bytes], *, expect_masked: bool, max_payload: int, use_next_messages: bool
) -> tuple[list[Any], int]:
    """Everything a parser returns for ``chunks``: messages, frames and errors, in order, and
    the bytes it still holds. Without next_messages, frames are turned into messages here."""
    parser = FrameParser(expect_masked=expect_masked)
    results: list[Any] = []
    for chunk in chunks:
        parser.feed(chunk)
        for _ in range(len(chunk) + 1):  # every frame is at least 2 bytes: this ends the loop
            if use_next_messages:
                parser.next_messages(max_payload, results, *MESSAGE_TYPES)
            try:
                frame = parser.next_frame(max_payload)
            except ProtocolViolation as exc:
                results.append((type(exc), str(exc)))
                continue
            if frame is None:
                break
            results.append(frame if use_next_messages else as_message(frame))
    return results, parser.buffered


@pytest.mark.usefixtures("parse_messages_implementation")
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_next_messages_reads_messages_split_at_every_byte_boundary(masked: bool) -> None:
    data = b"".join(wire_as_peer(op, payload, masked=masked) for op, payload, _ in TEXT_AND_BINARY)
    expected = [event for _, _, event in TEXT_AND_BINARY]
    for cut in range(len(data) + 1):
        parser = FrameParser(expect_masked=masked)
        events: list[Event] = []
        parser.feed(data[:cut])
        first = parser.next_messages(UNLIMITED, events, *MESSAGE_TYPES)
        assert first == len(events)
        parser.feed(data[cut:])
        assert parser.next_messages(UNLIMITED, events, *MESSAGE_TYPES) == len(expected) - first
        assert events == expected, cut
        assert parser.buffered == 0
        assert parser.next_messages(UNLIMITED, events, *MESSAGE_TYPES) == 0


@pytest.mark.usefixtures("parse_messages_implementation")
@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 100_003])
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_next_messages_reads_every_length_encoding(size: int, masked: bool) -> None:
    binary = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    text = "aé€𝄞"[: size % 4] + "x" * (size - len("aé€𝄞"[: size % 4].encode()))
    assert len(text.encode()) == size
    parser = FrameParser(expect_masked=masked)
    parser.feed(
        wire_as_peer(Opcode.BINARY, binary, masked=masked)
        + wire_as_peer(Opcode.TEXT, text.encode(), masked=masked)
    )
    events: list[Event] = []
    assert parser.next_messages(size, events, *MESSAGE_TYPES) == 2
    assert events == [BinaryReceived(binary), TextReceived(text)]
    assert parser.buffered == 0


OTHER_FRAMES = {
    "ping": wire(Opcode.PING, b"ping", mask=MASK),
    "close": wire(Opcode.CLOSE, b"\x03\xe8", mask=MASK),
    "first-fragment": wire(Opcode.TEXT, b"frag", fin=False, mask=MASK),
    "continuation": wire(Opcode.CONTINUATION, b"cont", mask=MASK),
    "rsv1": bytes([0xC1]) + wire(Opcode.TEXT, b"r", mask=MASK)[1:],
    "rsv2": bytes([0xA2]) + wire(Opcode.BINARY, b"r", mask=MASK)[1:],
    "rsv3": bytes([0x91]) + wire(Opcode.TEXT, b"r", mask=MASK)[1:],
    "reserved-opcode": bytes([0x83]) + wire(Opcode.BINARY, b"r", mask=MASK)[1:],
    "invalid-utf8": wire(Opcode.TEXT, b"ok\xff", mask=MASK),
    "surrogate": wire(Opcode.TEXT, b"\xed\xa0\x80", mask=MASK),
    "ends-mid-character": wire(Opcode.TEXT, "é".encode()[:1], mask=MASK),
    "unmasked": wire(Opcode.TEXT, b"plain"),
    "over-max-payload": wire(Opcode.BINARY, bytes(101), mask=MASK),
    "length-msb-set": bytes([0x82, 0xFF]) + struct.pack("!Q", 2**63 | 5) + MASK + bytes(5),
    "length-2**64-1": bytes([0x81, 0xFF]) + struct.pack("!Q", 2**64 - 1) + MASK,
}


@pytest.mark.usefixtures("parse_messages_implementation")
@pytest.mark.parametrize("other", OTHER_FRAMES.values(), ids=OTHER_FRAMES.keys())
def test_next_messages_stops_at_a_frame_for_next_frame_and_leaves_it_intact(other: bytes) -> None:
    before = wire(Opcode.TEXT, b"before", mask=MASK)
    after = wire(Opcode.BINARY, b"after", mask=MASK)
    parser = FrameParser(expect_masked=True)
    parser.feed(before + other + after)
    events: list[Event] = []
    assert parser.next_messages(100, events, *MESSAGE_TYPES) == 1
    assert events == [TextReceived("before")]
    assert parser.buffered == len(other) + len(after)
    assert parser.next_messages(100, events, *MESSAGE_TYPES) == 0
    # next_frame sees the frame exactly as a parser that never called next_messages.
    alone = FrameParser(expect_masked=True)
    alone.feed(other + after)
    try:
        expected: object = alone.next_frame(100)
    except ProtocolViolation as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            parser.next_frame(100)
    else:
        assert parser.next_frame(100) == expected
        assert parser.buffered == alone.buffered


@pytest.mark.usefixtures("parse_messages_implementation")
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_feed_messages_takes_messages_from_a_reused_read_buffer_at_every_cut(masked: bool) -> None:
    # The asyncio layer reads every connection into one shared buffer: whatever feed_messages
    # keeps (events, buffered bytes) must be copied out of it before the next read.
    data = b"".join(wire_as_peer(op, payload, masked=masked) for op, payload, _ in TEXT_AND_BINARY)
    expected = [event for _, _, event in TEXT_AND_BINARY]
    for cut in range(len(data) + 1):
        parser = FrameParser(expect_masked=masked)
        events: list[Event] = []
        read_buffer = bytearray(len(data))
        for chunk in (data[:cut], data[cut:]):
            read_buffer[: len(chunk)] = chunk
            parser.feed_messages(
                memoryview(read_buffer)[: len(chunk)], UNLIMITED, events, *MESSAGE_TYPES
            )
            read_buffer[:] = b"\xff" * len(read_buffer)  # the next read overwrites it
        assert events == expected, cut
        assert parser.buffered == 0


@pytest.mark.usefixtures("parse_messages_implementation")
def test_feed_messages_buffers_what_follows_the_messages() -> None:
    ping = wire(Opcode.PING, b"p", mask=MASK)
    data = wire(Opcode.TEXT, b"one", mask=MASK) + ping + wire(Opcode.TEXT, b"two", mask=MASK)
    parser = FrameParser(expect_masked=True)
    events: list[Event] = []
    assert parser.feed_messages(data, UNLIMITED, events, *MESSAGE_TYPES) == 1
    assert events == [TextReceived("one")]
    assert parser.buffered == len(data) - len(wire(Opcode.TEXT, b"one", mask=MASK))
    assert parser.next_frame(UNLIMITED) == Frame(Opcode.PING, b"p")
    assert parser.next_messages(UNLIMITED, events, *MESSAGE_TYPES) == 1
    assert events == [TextReceived("one"), TextReceived("two")]


@pytest.mark.usefixtures("parse_messages_implementation")
def test_next_messages_waits_for_an_incomplete_frame() -> None:
    data = wire(Opcode.TEXT, b"x" * 300, mask=MASK)
    for cut in (1, 2, 3, 4, 5, 7, 8, len(data) - 1):
        parser = FrameParser(expect_masked=True)
        parser.feed(data[:cut])
        events: list[Event] = []
        assert parser.next_messages(UNLIMITED, events, *MESSAGE_TYPES) == 0
        assert events == []
        assert parser.buffered == cut
        assert parser.next_frame(UNLIMITED) is None


@pytest.mark.usefixtures("parse_messages_implementation")
def test_next_messages_accepts_exactly_max_payload_and_stops_one_byte_over() -> None:
    parser = FrameParser(expect_masked=False)
    parser.feed(wire(Opcode.BINARY, bytes(10)) + wire(Opcode.BINARY, bytes(11)))
    events: list[Event] = []
    assert parser.next_messages(10, events, *MESSAGE_TYPES) == 1
    assert parser.next_messages(0, events, *MESSAGE_TYPES) == 0
    assert parser.next_messages(-1, events, *MESSAGE_TYPES) == 0
    assert parser.next_messages(2**100, events, *MESSAGE_TYPES) == 1
    assert events == [BinaryReceived(bytes(10)), BinaryReceived(bytes(11))]


@pytest.mark.usefixtures("parse_messages_implementation")
def test_next_messages_reads_the_frame_after_a_refused_frame_discarded_as_it_arrives() -> None:
    big = wire(Opcode.BINARY, bytes(300), mask=MASK)
    parser = FrameParser(expect_masked=True)
    parser.feed(big[:20])
    with pytest.raises(MessageTooBig):
        parser.next_frame(100)
    parser.feed(big[20:] + wire(Opcode.TEXT, b"next", mask=MASK))
    events: list[Event] = []
    assert parser.next_messages(100, events, *MESSAGE_TYPES) == 1
    assert events == [TextReceived("next")]
    assert parser.buffered == 0


@st.composite
def peer_frames(draw: st.DrawFn, masked: bool) -> bytes:
    """The bytes of one frame: usually a whole plain message, sometimes anything else."""
    opcode = draw(st.sampled_from([1, 1, 1, 2, 2, 2, 0, 8, 9, 0xA, 0x3]))
    if opcode >= 8:
        payload = draw(st.binary(max_size=MAX_CONTROL_PAYLOAD))
    elif opcode == Opcode.TEXT:
        payload = draw(st.text(max_size=40).map(str.encode) | st.binary(max_size=8) | data_payloads)
    else:
        payload = draw(data_payloads)
    fin = draw(st.sampled_from([True, True, True, False]))
    rsv = draw(st.sampled_from([0, 0, 0, 0, 0, 0x40, 0x20, 0x10]))
    is_masked = masked != (draw(st.integers(0, 19)) == 0)  # now and then the wrong way
    mask = draw(st.binary(min_size=4, max_size=4)) if is_masked else None
    data = bytearray(wire(opcode, payload, fin=fin, mask=mask))
    data[0] |= rsv
    return bytes(data)


@given(
    st.data(),
    st.booleans(),
    st.sampled_from([UNLIMITED, 2**100, 0, 5, 125, 126, 300]),
    st.lists(st.integers(min_value=0), max_size=8),
)
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_next_messages_consumes_frames_exactly_as_next_frame_does(
    parse_messages_implementation: str,
    data: st.DataObject,
    masked: bool,
    max_payload: int,
    cuts: list[int],
) -> None:
    stream = b"".join(data.draw(st.lists(peer_frames(masked), max_size=8)))
    chunks = split(stream, cuts)
    expected = parse_with(
        chunks, expect_masked=masked, max_payload=max_payload, use_next_messages=False
    )
    assert (
        parse_with(chunks, expect_masked=masked, max_payload=max_payload, use_next_messages=True)
        == expected
    )


@given(
    st.binary(max_size=200),
    st.booleans(),
    st.integers(min_value=-1, max_value=300),
    st.lists(st.integers(min_value=0), max_size=4),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_next_messages_on_garbage_agrees_with_next_frame(
    parse_messages_implementation: str,
    data: bytes,
    expect_masked: bool,
    max_payload: int,
    cuts: list[int],
) -> None:
    chunks = split(data, cuts)
    expected = parse_with(
        chunks, expect_masked=expect_masked, max_payload=max_payload, use_next_messages=False
    )
    assert (
        parse_with(
            chunks, expect_masked=expect_masked, max_payload=max_payload, use_next_messages=True
        )
        == expected
    )


@given(
    st.data(),
    st.booleans(),
    st.sampled_from([UNLIMITED, 0, 5, 125, 126, 300]),
    st.lists(st.integers(min_value=0), max_size=8),
)
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_feed_bare_messages_takes_what_feed_messages_takes(
    parse_messages_implementation: str,
    data: st.DataObject,
    masked: bool,
    max_payload: int,
    cuts: list[int],
) -> None:
    stream = b"".join(data.draw(st.lists(peer_frames(masked), max_size=8)))
    with_events, bare = FrameParser(expect_masked=masked), FrameParser(expect_masked=masked)
    for chunk in split(stream, cuts):
        events: list[Event] = []
        messages: list[str | bytes] = []
        with_events.feed_messages(chunk, max_payload, events, *MESSAGE_TYPES)
        is_left_over = bare.feed_bare_messages(chunk, max_payload, messages)
        assert messages == [event.data for event in events]  # type: ignore[attr-defined]
        assert is_left_over == (with_events.buffered > 0)
        assert bare.buffered == with_events.buffered
        # Both go on alike: next_frame, then the bare or event messages behind each frame.
        for _ in range(len(chunk) + 1):
            outcomes = []
            for parser in (with_events, bare):
                try:
                    outcomes.append(parser.next_frame(max_payload))
                except ProtocolViolation as exc:
                    outcomes.append((type(exc), str(exc)))
            assert outcomes[0] == outcomes[1]
            if outcomes[0] is None:
                break
            events, messages = [], []
            with_events.next_messages(max_payload, events, *MESSAGE_TYPES)
            bare.next_messages(max_payload, messages, None, None)
            assert messages == [event.data for event in events]  # type: ignore[attr-defined]


@pytest.mark.parametrize("implementation", [serialize_message, _serialize_message_python])
@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 100_003])
def test_serialize_message_is_one_frame_at_every_length_encoding(
    implementation: Any, size: int
) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)
    binary = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert implementation(text) == b"".join(serialize_frame(Opcode.TEXT, text.encode()))
    assert implementation(binary) == b"".join(serialize_frame(Opcode.BINARY, binary))


@given(st.text() | st.binary())
def test_serialize_message_inverts_parsing_by_a_client(message: str | bytes) -> None:
    frames = parse_all(serialize_message(message), expect_masked=False)
    opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
    payload = message.encode() if isinstance(message, str) else message
    assert frames == [Frame(opcode, payload)]
    assert _serialize_message_python(message) == serialize_message(message)


@pytest.mark.parametrize("implementation", [serialize_message, _serialize_message_python])
def test_serialize_message_refuses_what_is_not_exactly_str_or_bytes(implementation: Any) -> None:
    for message in (bytearray(b"x"), memoryview(b"x"), 1, None):
        with pytest.raises(TypeError, match="use str or bytes"):
            implementation(message)
    with pytest.raises(UnicodeEncodeError):
        implementation("lone \ud800 surrogate")
