"""Events, EventTarget, event handler attributes, DOMException and Blob, as the DOM, HTML and
File API standards describe them (the parts a WebSocket uses)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from fullduplex import InvalidState
from fullduplex.io.dom import (
    Blob,
    CloseEvent,
    DOMException,
    DOMSyntaxError,
    Event,
    EventHandler,
    EventTarget,
    InvalidAccessError,
    InvalidStateError,
    MessageEvent,
    to_usv_string,
)


class Target(EventTarget):
    onping = EventHandler("ping")


def calls(log: list[str], name: str) -> Any:
    return lambda event: log.append(name)


def test_listeners_run_in_registration_order_and_once_listeners_run_once() -> None:
    target, log = Target(), list[str]()
    target.addEventListener("ping", calls(log, "a"))
    target.addEventListener("ping", calls(log, "once"), once=True)
    target.addEventListener("ping", calls(log, "b"))
    target.dispatchEvent(Event("ping"))
    target.dispatchEvent(Event("ping"))
    assert log == ["a", "once", "b", "a", "b"]


def test_the_same_listener_is_registered_once_per_capture_flag() -> None:
    target, log = Target(), list[str]()
    listener = calls(log, "x")
    target.addEventListener("ping", listener)
    target.addEventListener("ping", listener)
    target.addEventListener("ping", listener, capture=True)
    target.addEventListener("ping", None)
    target.dispatchEvent(Event("ping"))
    assert log == ["x", "x"]
    target.removeEventListener("ping", listener)
    target.removeEventListener("ping", listener, capture=True)
    target.dispatchEvent(Event("ping"))
    assert log == ["x", "x"]


def test_capturing_listeners_run_first_at_the_target() -> None:
    target, log = Target(), list[str]()
    target.addEventListener("ping", calls(log, "bubbling"))
    target.addEventListener("ping", calls(log, "capturing"), capture=True)
    target.dispatchEvent(Event("ping"))
    assert log == ["capturing", "bubbling"]


def test_a_listener_removed_during_dispatch_is_not_called() -> None:
    target, log = Target(), list[str]()
    later = calls(log, "later")
    target.addEventListener("ping", lambda event: target.removeEventListener("ping", later))
    target.addEventListener("ping", later)
    target.addEventListener(
        "ping", lambda event: target.addEventListener("ping", calls(log, "new"))
    )
    target.dispatchEvent(Event("ping"))
    assert log == []
    target.dispatchEvent(Event("ping"))
    assert log == ["new"]


def test_stop_immediate_propagation_skips_the_remaining_listeners() -> None:
    target, log = Target(), list[str]()
    target.addEventListener("ping", lambda event: event.stopImmediatePropagation())
    target.addEventListener("ping", calls(log, "skipped"))
    target.dispatchEvent(Event("ping"))
    assert log == []


def test_objects_with_handle_event_are_listeners() -> None:
    class Listener:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def handleEvent(self, event: Event) -> None:
            self.events.append(event)

    target, listener = Target(), Listener()
    target.addEventListener("ping", listener)
    event = Event("ping")
    target.dispatchEvent(event)
    assert listener.events == [event]


def test_dispatch_event_sets_the_event_fields_and_returns_not_canceled() -> None:
    target = Target()
    seen: list[tuple[Any, ...]] = []

    def look(event: Event) -> None:
        seen.append((event.target, event.currentTarget, event.eventPhase, event.isTrusted))
        event.preventDefault()

    target.addEventListener("ping", look)
    assert target.dispatchEvent(Event("ping")) is True  # not cancelable
    cancelable = Event("ping", cancelable=True)
    assert target.dispatchEvent(cancelable) is False
    assert cancelable.defaultPrevented
    assert seen == [(target, target, Event.AT_TARGET, False)] * 2
    assert (cancelable.currentTarget, cancelable.eventPhase) == (None, Event.NONE)
    assert cancelable.target is target


def test_dispatching_an_event_being_dispatched_is_an_invalid_state() -> None:
    target = Target()
    errors: list[BaseException] = []

    def redispatch(event: Event) -> None:
        try:
            target.dispatchEvent(event)
        except InvalidStateError as exc:
            errors.append(exc)

    target.addEventListener("ping", redispatch)
    target.dispatchEvent(Event("ping"))
    assert len(errors) == 1


def test_event_handler_attribute_keeps_its_place_among_listeners() -> None:
    target, log = Target(), list[str]()
    assert target.onping is None
    assert isinstance(Target.onping, EventHandler)
    target.addEventListener("ping", calls(log, "first"))
    target.onping = calls(log, "handler")
    target.addEventListener("ping", calls(log, "last"))
    target.onping = calls(log, "replaced handler")
    target.dispatchEvent(Event("ping"))
    assert log == ["first", "replaced handler", "last"]
    log.clear()
    target.onping = None
    target.onping = calls(log, "handler again")
    target.dispatchEvent(Event("ping"))
    assert log == ["first", "last", "handler again"]


def test_event_handler_attribute_takes_non_callables_as_none() -> None:
    target, log = Target(), list[str]()
    target.onping = calls(log, "handler")
    target.onping = "not callable"
    assert target.onping is None
    target.dispatchEvent(Event("ping"))
    assert log == []


def test_listener_exceptions_are_logged_and_dispatch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    target, log = Target(), list[str]()

    def fail(event: Event) -> None:
        raise ValueError("listener bug")

    target.addEventListener("ping", fail)
    target.addEventListener("ping", calls(log, "after"))
    with caplog.at_level(logging.ERROR, logger="fullduplex"):
        target.dispatchEvent(Event("ping"))
    assert log == ["after"]
    assert "listener bug" in caplog.text


async def test_coroutine_listeners_run_as_tasks_of_the_running_loop() -> None:
    target = Target()
    done = asyncio.Event()

    async def listener(event: Event) -> None:
        await asyncio.sleep(0)
        done.set()

    target.addEventListener("ping", listener)
    target.dispatchEvent(Event("ping"))
    assert not done.is_set()  # dispatch does not wait for it
    await asyncio.wait_for(done.wait(), 5)


def test_coroutine_listener_without_a_running_loop_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = Target()

    async def listener(event: Event) -> None:
        raise AssertionError("never runs")

    target.addEventListener("ping", listener)
    with caplog.at_level(logging.ERROR, logger="fullduplex"):
        target.dispatchEvent(Event("ping"))
    assert "no event loop runs" in caplog.text


def test_event_classes_take_their_init_dictionaries_as_keywords() -> None:
    event = Event("x", bubbles=True, cancelable=True, composed=True)
    assert (event.type, event.bubbles, event.cancelable, event.composed) == ("x", True, True, True)
    assert event.timeStamp > 0
    message = MessageEvent("message", data="hi", origin="ws://h", lastEventId="7")
    assert (message.data, message.origin, message.lastEventId) == ("hi", "ws://h", "7")
    assert (message.source, message.ports) == (None, ())
    close = CloseEvent("close", wasClean=True, code=1000, reason="bye")
    assert (close.wasClean, close.code, close.reason) == (True, 1000, "bye")
    assert CloseEvent("close").code == 0
    assert "code=1000" in repr(close)


def test_dom_exceptions_have_names_codes_and_python_bases() -> None:
    generic = DOMException("custom", "NotFoundError")
    assert (generic.name, generic.message, generic.code) == ("NotFoundError", "custom", 0)
    assert DOMException().name == "Error"
    assert (DOMSyntaxError("x").name, DOMSyntaxError("x").code) == ("SyntaxError", 12)
    assert (InvalidStateError().name, InvalidStateError().code) == ("InvalidStateError", 11)
    assert (InvalidAccessError().name, InvalidAccessError().code) == ("InvalidAccessError", 15)
    assert isinstance(DOMSyntaxError(), ValueError)
    assert isinstance(InvalidAccessError(), ValueError)
    assert isinstance(InvalidStateError(), InvalidState)
    assert not isinstance(DOMSyntaxError(), SyntaxError)
    assert repr(DOMSyntaxError("bad")) == "DOMSyntaxError('bad', 'SyntaxError')"


async def test_blob_joins_its_parts_and_reads_back() -> None:
    blob = Blob(
        [b"ab", bytearray(b"c"), memoryview(b"d"), "é\ud800", Blob([b"!"])], type="Text/Plain"
    )
    content = b"abcd\xc3\xa9\xef\xbf\xbd!"
    assert (blob.size, blob.type, bytes(blob)) == (len(content), "text/plain", content)
    assert await blob.bytes() == await blob.arrayBuffer() == content
    assert await blob.text() == "abcdé\ufffd!"
    assert Blob(type="bad\x00type").type == ""
    assert Blob().size == 0
    assert repr(Blob([b"x"])) == "<Blob size=1 type=''>"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("plain", "plain"),
        ("\ud83d\ude00", "😀"),  # a surrogate pair is one character
        ("a\udc00b", "a\ufffdb"),
        ("\ud800\ud800", "\ufffd\ufffd"),
    ],
)
def test_usv_conversion_replaces_lone_surrogates(given: str, expected: str) -> None:
    assert to_usv_string(given) == expected
