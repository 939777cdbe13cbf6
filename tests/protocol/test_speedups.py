"""The compiled helpers (fullduplex.protocol._speedups) against the pure-Python code they replace.

Every test here needs the built extension, in both passes of the suite; the choice between the
two is tested in test_compiled.py, which needs no extension. `parse_messages` is also checked
against the pure `FrameParser.next_messages` loop in tests/protocol/test_frames.py; here are its
argument checks and reference counts.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import weakref
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.protocol._compiled import _apply_mask_python, _unmask_payload_python
from fullduplex.protocol.events import BinaryReceived, Event, TextReceived
from fullduplex.protocol.frames import _deliver_messages_python, _serialize_message_python

from ..wire import encode_frame


@pytest.fixture(scope="module")
def speedups() -> ModuleType:
    try:
        from fullduplex.protocol import _speedups
    except ImportError:
        message = (
            "fullduplex.protocol._speedups is not built (no C compiler or no Python headers?); "
            "rebuild with: FULLDUPLEX_BUILD_SPEEDUPS=require .venv/bin/pip install -e ."
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    return _speedups


def unaligned(data: bytes, offset: int) -> memoryview:
    """A memoryview of ``data`` that starts ``offset`` bytes into a larger buffer."""
    return memoryview(bytearray(offset) + data)[offset:]


def test_apply_mask_matches_pure_python_for_every_short_length_and_alignment(
    speedups: ModuleType,
) -> None:
    rng = random.Random(6455)
    for length in range(101):
        data = rng.randbytes(length)
        mask = rng.randbytes(4)
        expected = _apply_mask_python(data, mask)
        for offset in range(8):
            assert speedups.apply_mask(unaligned(data, offset), mask) == expected, (
                length,
                offset,
            )


def test_apply_mask_matches_pure_python_for_one_mebibyte(speedups: ModuleType) -> None:
    rng = random.Random(7692)
    data = rng.randbytes(2**20 + 3)
    mask = rng.randbytes(4)
    for payload in (data, bytearray(data), unaligned(data, 5)):
        assert speedups.apply_mask(payload, mask) == _apply_mask_python(payload, mask)


@given(
    data=st.binary(max_size=300), mask=st.binary(min_size=4, max_size=4), offset=st.integers(0, 7)
)
def test_apply_mask_matches_pure_python_for_any_payload(
    speedups: ModuleType, data: bytes, mask: bytes, offset: int
) -> None:
    assert speedups.apply_mask(unaligned(data, offset), mask) == _apply_mask_python(data, mask)


def test_apply_mask_twice_restores_the_payload(speedups: ModuleType) -> None:
    data = bytes(range(256)) * 5
    mask = b"\x37\xfa\x21\x3d"
    assert speedups.apply_mask(speedups.apply_mask(data, mask), mask) == data


def test_apply_mask_accepts_every_bytes_like_type(speedups: ModuleType) -> None:
    data = b"Hello, fullduplex!"
    mask = b"\x01\x02\x03\x04"
    expected = _apply_mask_python(data, mask)
    assert speedups.apply_mask(bytearray(data), bytearray(mask)) == expected
    assert speedups.apply_mask(memoryview(data), memoryview(mask)) == expected
    assert speedups.apply_mask(data=data, mask=mask) == expected


def test_apply_mask_copies_a_non_contiguous_buffer(speedups: ModuleType) -> None:
    data = bytes(range(200))
    mask = b"\xaa\xbb\xcc\xdd"
    strided = memoryview(data)[::3]
    assert speedups.apply_mask(strided, mask) == _apply_mask_python(strided, mask)


def test_apply_mask_returns_bytes_even_for_an_empty_payload(speedups: ModuleType) -> None:
    result = speedups.apply_mask(bytearray(), b"abcd")
    assert result == b""
    assert type(result) is bytes


def test_apply_mask_rejects_a_mask_that_is_not_four_bytes(speedups: ModuleType) -> None:
    for mask in (b"", b"abc", b"abcde"):
        with pytest.raises(ValueError, match="mask must be 4 bytes"):
            speedups.apply_mask(b"payload", mask)


def test_apply_mask_rejects_arguments_that_are_not_bytes_like(speedups: ModuleType) -> None:
    with pytest.raises(TypeError):
        speedups.apply_mask("text", b"abcd")
    with pytest.raises(TypeError):
        speedups.apply_mask(b"data", 1234)
    with pytest.raises(TypeError, match="missing required argument 'mask'"):
        speedups.apply_mask(b"data")
    with pytest.raises(TypeError, match="unexpected keyword argument 'key'"):
        speedups.apply_mask(b"data", key=b"abcd")
    with pytest.raises(TypeError, match="multiple values for argument 'data'"):
        speedups.apply_mask(b"data", b"abcd", data=b"data")
    with pytest.raises(TypeError, match="takes 2 positional arguments"):
        speedups.apply_mask(b"data", b"abcd", b"more")


# --- unmask_payload -------------------------------------------------------------------------


def test_unmask_payload_matches_pure_python_for_every_start_and_length(
    speedups: ModuleType,
) -> None:
    rng = random.Random(1455)
    for key_offset in range(3):
        buffer = bytearray(rng.randbytes(key_offset + 4 + 70))
        for start in range(key_offset + 4, len(buffer) + 1):
            for end in (start, start + 1, start + 9, len(buffer)):
                end = min(end, len(buffer))
                expected = _unmask_payload_python(buffer, key_offset, start, end)
                assert speedups.unmask_payload(buffer, key_offset, start, end) == expected


def test_unmask_payload_restores_what_apply_mask_masked(speedups: ModuleType) -> None:
    payload = bytes(range(256)) * 4099
    buffer = bytearray(b"hdr" + MASK_KEY + _apply_mask_python(payload, MASK_KEY))
    assert speedups.unmask_payload(buffer, 3, 7, len(buffer)) == payload
    assert speedups.unmask_payload(buffer, 3, 7 + 5, 7 + 300) == payload[5:300]


def test_unmask_payload_rejects_a_range_outside_the_buffer(speedups: ModuleType) -> None:
    buffer = bytearray(10)
    for key_offset, start, end in [(0, 3, 5), (0, 5, 4), (0, 4, 11), (7, 11, 11), (-1, 4, 5)]:
        with pytest.raises(ValueError):
            speedups.unmask_payload(buffer, key_offset, start, end)
    with pytest.raises(OverflowError):
        speedups.unmask_payload(buffer, 2**70, 4, 5)
    with pytest.raises(TypeError, match="takes 4 positional arguments"):
        speedups.unmask_payload(buffer, 0, 4)
    with pytest.raises(TypeError):
        speedups.unmask_payload("text", 0, 4, 4)


# --- parse_messages -------------------------------------------------------------------------

MASK_KEY = b"\x0f\xf0\xaa\x55"


def masked_stream(*frames: tuple[int, bytes]) -> bytearray:
    return bytearray(b"".join(encode_frame(op, data, mask=MASK_KEY) for op, data in frames))


def test_parse_messages_returns_the_position_after_the_frames_it_took(
    speedups: ModuleType,
) -> None:
    buffer = bytearray(b"junk") + masked_stream((1, b"one"), (2, b"two"), (9, b"ping"))
    events: list[Event] = []
    end = speedups.parse_messages(buffer, 4, 0x80, 100, events, TextReceived, BinaryReceived)
    assert events == [TextReceived("one"), BinaryReceived(b"two")]
    assert end == 4 + 2 * (2 + 4 + 3)
    assert type(events[0]) is TextReceived and type(events[1]) is BinaryReceived
    assert (
        speedups.parse_messages(buffer, end, 0x80, 100, events, TextReceived, BinaryReceived) == end
    )


def test_parse_messages_holds_no_extra_reference(speedups: ModuleType) -> None:
    # Lengths from 2: CPython shares its empty and one-character strings and bytes.
    buffer = masked_stream(*[(1 + i % 2, b"x" * i) for i in range(2, 202)])
    counts = sys.getrefcount(TextReceived), sys.getrefcount(BinaryReceived)
    events: list[Event] = []
    speedups.parse_messages(buffer, 0, 0x80, 1000, events, TextReceived, BinaryReceived)
    assert len(events) == 200
    for index in range(200):
        # One reference each, held by the list and the event. getrefcount adds its argument's;
        # counted outside the assert, whose rewriting keeps references of its own.
        references = sys.getrefcount(events[index]), sys.getrefcount(events[index][0])
        assert references == (2, 2)
    bad = masked_stream((1, b"ok"), (1, b"\xff"))
    speedups.parse_messages(bad, 0, 0x80, 1000, events, TextReceived, BinaryReceived)
    del events
    assert (sys.getrefcount(TextReceived), sys.getrefcount(BinaryReceived)) == counts


@pytest.mark.parametrize(
    ("position", "mask_bit", "message"),
    [(-1, 0x80, "position must not be negative"), (99, 0x80, "past the end"), (0, 1, "mask_bit")],
)
def test_parse_messages_rejects_invalid_values(
    speedups: ModuleType, position: int, mask_bit: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        speedups.parse_messages(
            bytearray(10), position, mask_bit, 100, [], TextReceived, BinaryReceived
        )


def test_parse_messages_rejects_arguments_of_the_wrong_type(speedups: ModuleType) -> None:
    good = [bytearray(), 0, 0, 100, [], TextReceived, BinaryReceived]
    for index, bad, message in [
        (0, "text", "a bytes-like object is required"),
        (4, (), "events must be a list"),
        (5, str, "text_type must be a tuple subclass"),
        (6, BinaryReceived(b""), "binary_type must be a tuple subclass"),
    ]:
        arguments = list(good)
        arguments[index] = bad
        with pytest.raises(TypeError, match=message):
            speedups.parse_messages(*arguments)
    with pytest.raises(TypeError, match="takes 7 positional arguments"):
        speedups.parse_messages(*good[:6])


def test_parse_messages_appends_bare_messages_without_event_types(speedups: ModuleType) -> None:
    buffer = masked_stream((1, b"one"), (2, b"two"), (1, "\u00e9t\u00e9".encode()), (9, b"p"))
    messages: list[str | bytes] = []
    end = speedups.parse_messages(buffer, 0, 0x80, 100, messages, None, None)
    assert messages == ["one", b"two", "\u00e9t\u00e9"]
    assert end == len(buffer) - (2 + 4 + 1)
    # One reference each, held by the list (getrefcount adds its argument's).
    references = [sys.getrefcount(messages[index]) for index in range(3)]
    assert references == [2, 2, 2]


@given(st.text() | st.binary())
def test_frame_message_matches_pure_python(speedups: ModuleType, message: str | bytes) -> None:
    assert speedups.frame_message(message) == _serialize_message_python(message)


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 2**20 + 1])
def test_frame_message_matches_pure_python_at_every_length_encoding(
    speedups: ModuleType, size: int
) -> None:
    for message in ("x" * size, "\u20ac" * (size // 3), bytes(size)):
        assert speedups.frame_message(message) == _serialize_message_python(message)


def test_frame_message_refuses_what_pure_python_refuses(speedups: ModuleType) -> None:
    for message in (bytearray(b"x"), memoryview(b"x"), 1, None):
        with pytest.raises(TypeError, match="use str or bytes"):
            speedups.frame_message(message)
    with pytest.raises(UnicodeEncodeError):
        speedups.frame_message("\ud800")


# --- deliver_messages -----------------------------------------------------------------------


class Owner:
    """What deliver_messages checks before each message: ``state`` is ``OPEN``."""

    def __init__(self) -> None:
        self.state = "open"


def deliver_every_way(
    speedups: ModuleType, buffer: bytearray, nbytes: int, max_payload: int, stop_after: int
) -> list[tuple[object, list[str | bytes]]]:
    """Run the compiled deliver_messages, the compiled MessageDeliverer (the same, its first
    five arguments bound) and the pure deliver_messages alike; return what each returned and
    delivered. The callback closes its owner after ``stop_after`` messages."""

    def bound(*arguments: Any) -> object:
        return speedups.MessageDeliverer(*arguments[:5])(*arguments[5:])

    outcomes = []
    for deliver in (speedups.deliver_messages, bound, _deliver_messages_python):
        owner = Owner()
        delivered: list[str | bytes] = []

        def callback(message: str | bytes, owner: Owner = owner, into: list = delivered) -> None:  # type: ignore[type-arg]
            into.append(message)
            if len(into) == stop_after:
                owner.state = "closing"

        result = deliver(callback, owner, "open", 0x80, max_payload, buffer, nbytes)
        outcomes.append((result, delivered))
    return outcomes


@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1, 2, 9]), st.binary(max_size=300), st.booleans()),
        max_size=8,
    ),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=1, max_value=9),
)
def test_deliver_messages_matches_pure_python(
    speedups: ModuleType,
    frames: list[tuple[int, bytes, bool]],
    cut: int,
    max_payload: int,
    stop_after: int,
) -> None:
    buffer = bytearray(
        b"".join(encode_frame(op, data, fin=fin, mask=MASK_KEY) for op, data, fin in frames)
    )
    nbytes = min(cut, len(buffer)) if cut < 400 else len(buffer)
    compiled, bound, pure = deliver_every_way(speedups, buffer, nbytes, max_payload, stop_after)
    assert compiled == bound == pure


def test_deliver_messages_stops_where_parse_messages_stops(speedups: ModuleType) -> None:
    buffer = masked_stream((1, b"one"), (2, b"two"), (1, b"\xff"), (1, b"after"))
    events: list[str | bytes] = []
    end = speedups.parse_messages(buffer, 0, 0x80, 100, events, None, None)
    delivered: list[str | bytes] = []
    owner = Owner()
    assert (
        speedups.deliver_messages(delivered.append, owner, "open", 0x80, 100, buffer, len(buffer))
        == end
    )
    assert delivered == events == ["one", b"two"]


def test_deliver_messages_reads_no_further_than_nbytes(speedups: ModuleType) -> None:
    buffer = masked_stream((1, b"one"), (1, b"two"))
    delivered: list[str | bytes] = []
    taken = speedups.deliver_messages(
        delivered.append, Owner(), "open", 0x80, 100, buffer, len(buffer) - 1
    )
    assert (taken, delivered) == (len(buffer) // 2, ["one"])


def test_deliver_messages_returns_the_callbacks_exception_and_holds_no_reference(
    speedups: ModuleType,
) -> None:
    buffer = masked_stream(*[(1, b"message %d" % n) for n in range(10)])
    seen: list[str | bytes] = []

    def fail_on_third(message: str | bytes) -> None:
        seen.append(message)
        if len(seen) == 3:
            raise KeyError(message)

    result = speedups.deliver_messages(
        fail_on_third, Owner(), "open", 0x80, 100, buffer, len(buffer)
    )
    assert type(result) is tuple
    position, error = result
    assert position == len(buffer) * 3 // 10
    assert type(error) is KeyError and error.args == ("message 2",)
    assert error.__traceback__ is not None
    del result, error  # which hold the third message, in its args and its traceback
    references = [sys.getrefcount(seen[index]) for index in range(3)]
    assert references == [2, 2, 2]


def test_deliver_messages_lets_a_base_exception_through(speedups: ModuleType) -> None:
    buffer = masked_stream((1, b"one"))

    def interrupt(message: str | bytes) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        speedups.deliver_messages(interrupt, Owner(), "open", 0x80, 100, buffer, len(buffer))


def test_message_deliverer_checks_its_arguments_when_made_and_when_called(
    speedups: ModuleType,
) -> None:
    with pytest.raises(ValueError, match="mask_bit"):
        speedups.MessageDeliverer(print, Owner(), "open", 1, 100)
    with pytest.raises(TypeError):
        speedups.MessageDeliverer(print, Owner(), "open", 0x80)
    deliver = speedups.MessageDeliverer(print, Owner(), "open", 0x80, 100)
    with pytest.raises(ValueError, match="exceeds the buffer"):
        deliver(bytearray(4), 5)
    with pytest.raises(TypeError, match="2 positional arguments"):
        deliver(bytearray(4))
    with pytest.raises(TypeError, match="2 positional arguments"):
        deliver(bytearray(4), nbytes=4)


def test_message_deliverer_in_a_reference_cycle_is_collected(speedups: ModuleType) -> None:
    # A connection holds its deliverer, which holds the connection (its owner).
    owner = Owner()
    owner.deliver = speedups.MessageDeliverer(print, owner, "open", 0x80, 100)  # type: ignore[attr-defined]
    collected = weakref.ref(owner)
    del owner
    gc.collect()
    assert collected() is None


def test_plain_reads_in_a_reference_cycle_is_collected(speedups: ModuleType) -> None:
    # A connection's transport holds its PlainReads, which holds the connection.
    owner = Owner()
    owner.reads = speedups.PlainReads(owner)  # type: ignore[attr-defined]
    collected = weakref.ref(owner)
    del owner
    gc.collect()
    assert collected() is None


def test_deliver_messages_rejects_invalid_arguments(speedups: ModuleType) -> None:
    good = [print, Owner(), "open", 0x80, 100, bytearray(4), 4]
    with pytest.raises(ValueError, match="exceeds the buffer"):
        speedups.deliver_messages(*good[:6], 5)
    with pytest.raises(ValueError, match="nbytes must not be negative"):
        speedups.deliver_messages(*good[:6], -1)
    with pytest.raises(ValueError, match="mask_bit"):
        speedups.deliver_messages(*good[:3], 1, *good[4:])
    with pytest.raises(TypeError, match="takes 7 positional arguments"):
        speedups.deliver_messages(*good[:6])
    with pytest.raises(TypeError):
        speedups.deliver_messages(*good[:5], "text", 0)
    with pytest.raises(AttributeError):
        speedups.deliver_messages(print, object(), "open", 0x80, 100, masked_stream((1, b"x")), 7)


# --- parse_request_head: the compiled fast path of http_server._parse_head_python ---------

PLAIN_HEADS = [
    b"GET / HTTP/1.1\r\nHost: a",
    b"GET /socket.io/?EIO=4&transport=polling&sid=Ab-_9 HTTP/1.1\r\nHost: 127.0.0.1:8000",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 20",
    b"POST /p HTTP/1.1\r\nhOsT:  a \t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Empty:\r\nX-Tabs:\t\tv\t",
    b"GET / HTTP/1.0",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9 \x80\xff",
    b"GET /a%20b?c=d#e HTTP/1.1\r\nHost: a\r\nhost: b\r\nCONNECTION: close, Upgrade\r\nUPGRADE: x",
]

REFUSED_HEADS = [
    b"GET / HTTP/1.1\r\nHost : a",  # space before the colon
    b"GET / HTTP/1.1\r\nHost: a\r\n folded",  # obs-fold
    b"GET / HTTP/1.1\r\nHost: a\nX: b",  # bare LF
    b"GET / HTTP/1.1\r\nHost: a\rX: b",  # bare CR
    b"GET / HTTP/1.1\r\nHost: a\x00b",  # NUL
    b"GET / HTTP/1.1\r\nHost: a\x7f",  # DEL
    b"GET / HTTP/1.1\r\n: a",  # empty name
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # an empty line inside the head
    b"GET / HTTP/2.0\r\nHost: a",
    b"GET / HTTP/1.1 \r\nHost: a",
    b"GET /  HTTP/1.1\r\nHost: a",
    b"GET\t/ HTTP/1.1\r\nHost: a",
    b" GET / HTTP/1.1\r\nHost: a",
    b"GET / HTTP/1.1\rX\r\nHost: a",
    b"G(T / HTTP/1.1\r\nHost: a",
]


def _python_head(head: bytes, max_headers: int) -> object:
    from fullduplex.exceptions import InvalidRequest
    from fullduplex.protocol.http_server import _parse_head_python

    try:
        return _parse_head_python(bytearray(head), len(head), max_headers)
    except InvalidRequest:
        return None


@pytest.mark.parametrize("head", PLAIN_HEADS)
def test_parse_request_head_matches_pure_python(speedups: ModuleType, head: bytes) -> None:
    buffer = bytearray(head + b"\r\n\r\nbody")
    expected = _python_head(head, 100)
    assert expected is not None
    assert speedups.parse_request_head(buffer, len(head), 100) == expected


@pytest.mark.parametrize("head", REFUSED_HEADS)
def test_parse_request_head_leaves_what_python_refuses_to_python(
    speedups: ModuleType, head: bytes
) -> None:
    assert _python_head(head, 100) is None
    assert speedups.parse_request_head(bytearray(head), len(head), 100) is None


def test_parse_request_head_leaves_too_many_fields_to_python(speedups: ModuleType) -> None:
    head = b"GET / HTTP/1.1\r\n" + b"\r\n".join(b"X-%d: v" % i for i in range(5))
    assert speedups.parse_request_head(head, len(head), 5) == _python_head(head, 5)
    assert speedups.parse_request_head(head, len(head), 4) is None
    assert _python_head(head, 4) is None


_HEAD_PIECES = st.sampled_from(
    [
        b"GET",
        b"POST",
        b" ",
        b"/",
        b"?a=b",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"\r\n",
        b"\r",
        b"\n",
        b"Host",
        b"Content-Length",
        b"content-length",
        b"Transfer-Encoding",
        b"Connection",
        b"Expect",
        b":",
        b": ",
        b"\t",
        b"5",
        b"chunked",
        b"close",
        b"\x00",
        b"\x7f",
        b"\xe9",
        b"x",
    ]
)


@given(pieces=st.lists(_HEAD_PIECES, max_size=40), max_headers=st.integers(0, 6))
def test_parse_request_head_never_disagrees_with_pure_python(
    speedups: ModuleType, pieces: list[bytes], max_headers: int
) -> None:
    head = b"".join(pieces)
    compiled = speedups.parse_request_head(bytearray(head), len(head), max_headers)
    if compiled is not None:
        assert compiled == _python_head(head, max_headers)


def test_parse_request_head_reads_only_up_to_end(speedups: ModuleType) -> None:
    buffer = bytearray(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n")
    assert speedups.parse_request_head(buffer, 23, 100)[3] == ["Host", "a"]
    with pytest.raises(ValueError):
        speedups.parse_request_head(buffer, len(buffer) + 1, 100)


@given(
    method=st.sampled_from(["GET", "POST", "G T", ""]),
    target=st.sampled_from(["/", "/a?b=c", "/\xe9", "*", ""]),
    version=st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "http/1.1", "HTTP/1.1 "]),
    fields=st.lists(
        st.tuples(
            st.sampled_from(
                ["Host", "hOST", "Content-Length", "Expect", "Connection", "Upgrade", "X y", ""]
            ),
            st.text(alphabet=st.sampled_from(" \tab5,:\xe9\x00\x7f\r\n"), max_size=6),
        ),
        max_size=5,
    ),
    max_headers=st.integers(0, 6),
)
def test_parse_request_head_agrees_with_pure_python_on_structured_heads(
    speedups: ModuleType,
    method: str,
    target: str,
    version: str,
    fields: list[tuple[str, str]],
    max_headers: int,
) -> None:
    text = f"{method} {target} {version}" + "".join(f"\r\n{n}:{v}" for n, v in fields)
    head = text.encode("latin-1")
    expected = _python_head(head, max_headers)
    compiled = speedups.parse_request_head(bytearray(head), len(head), max_headers)
    assert compiled is None or compiled == expected
    if expected is None:
        assert compiled is None
