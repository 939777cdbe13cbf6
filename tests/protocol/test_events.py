"""Events: tuples with named fields that compare like dataclasses and have no order."""

from __future__ import annotations

import copy
import pickle

import pytest

from fullduplex.exceptions import ProtocolViolation
from fullduplex.protocol.events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    PingReceived,
    PongReceived,
    TextReceived,
)


def test_event_equals_only_an_event_of_its_own_class_with_equal_fields() -> None:
    assert TextReceived("hi") == TextReceived("hi")
    assert TextReceived("hi") != TextReceived("ho")
    assert PingReceived(b"x") != PongReceived(b"x")
    assert TextReceived("hi") != ("hi",)


def test_equal_events_hash_alike_and_differ_from_other_classes() -> None:
    assert hash(CloseReceived(1000, "bye")) == hash(CloseReceived(1000, "bye"))
    assert len({PingReceived(b"x"), PongReceived(b"x"), PingReceived(b"x")}) == 2
    assert hash(BinaryReceived(b"x")) != hash((b"x",))


def test_events_have_no_order() -> None:
    with pytest.raises(TypeError):
        _ = TextReceived("a") < TextReceived("b")
    with pytest.raises(TypeError):
        sorted([CloseReceived(1001), CloseReceived(1000)])


def test_event_fields_are_named_read_only_and_shown_in_the_repr() -> None:
    event = CloseReceived(1000)
    assert (event.code, event.reason) == (1000, "")
    assert repr(event) == "CloseReceived(code=1000, reason='')"
    with pytest.raises(AttributeError):
        event.code = 1001  # type: ignore[misc]
    code, reason = event
    assert (code, reason) == (1000, "")


def test_events_survive_copy_and_pickle() -> None:
    error = ProtocolViolation("bad")
    for event in (TextReceived("é"), CloseReceived(4000, "r"), ConnectionFailed(error)):
        assert copy.copy(event) == event
        assert type(copy.deepcopy(event)) is type(event)
    assert pickle.loads(pickle.dumps(BinaryReceived(b"\x00"))) == BinaryReceived(b"\x00")
