"""`WebSocket`, the WHATWG interface, against real servers on 127.0.0.1.

The cases follow what web-platform-tests' ``websockets/`` directory checks (constructor and URL
errors, close code and reason validation, readyState transitions, bufferedAmount, binaryType,
event order), restated here against the WebSockets Standard. The URL parser has its own tests
(`test_whatwg_url.py`), as do events and EventTarget (`test_dom.py`).
"""

from __future__ import annotations

import array
import asyncio
import gc
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from fullduplex import (
    Blob,
    CloseEvent,
    DOMException,
    DOMSyntaxError,
    Event,
    InvalidAccessError,
    InvalidState,
    InvalidStateError,
    MessageEvent,
    WebSocket,
    serve,
)

from ..conftest import TestCA
from .peers import Holder, RawPeer, serve_raw
from .whatwg_server import Ports, scripted_server

EVENT_TYPES = ("open", "message", "error", "close")


@pytest.fixture
async def ports() -> AsyncIterator[Ports]:
    async with scripted_server() as ports:
        yield ports


class Recorder:
    """Records each event as dispatched: its type, readyState then, and its fields."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.events: list[tuple[Any, ...]] = []
        self.closed: asyncio.Future[CloseEvent] = asyncio.get_running_loop().create_future()
        for type in EVENT_TYPES:
            ws.addEventListener(type, self.record)

    def record(self, event: Event) -> None:
        entry: tuple[Any, ...] = (event.type, self.ws.readyState)
        if isinstance(event, MessageEvent):
            data = event.data
            entry += (bytes(data) if isinstance(data, Blob) else data,)
        if isinstance(event, CloseEvent):
            entry += (event.code, event.reason, event.wasClean)
            if not self.closed.done():
                self.closed.set_result(event)
        self.events.append(entry)

    async def wait_closed(self, settle_s: float = 0.05) -> list[tuple[Any, ...]]:
        """Wait for the close event, and a little more: nothing may follow it."""
        await self.closed
        await asyncio.sleep(settle_s)
        return self.events


def url(ports: Ports, path: str = "/echo") -> str:
    return f"ws://127.0.0.1:{ports.port}{path}"


async def open_websocket(target: str, *protocols: str) -> tuple[WebSocket, Recorder]:
    ws = WebSocket(target, list(protocols))
    recorder = Recorder(ws)
    opened = asyncio.get_running_loop().create_future()

    def settle(event: Event) -> None:
        if not opened.done():
            opened.set_result(None)

    ws.addEventListener("open", settle)
    ws.addEventListener("close", settle)
    await opened
    return ws, recorder


# --- constructor --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_url",
    [
        "ws://foo bar.com/",
        "wss://foo bar.com/",
        "ftp://127.0.0.1/",
        "mailto:example@example.org",
        "about:blank",
        "ws://127.0.0.1/#",
        "ws://127.0.0.1/#test",
        "#test",
        "/echo",
        "127.0.0.1",
        "ws://",
        "ws://127.0.0.1:65536/",
        "file:///tmp/socket",
    ],
)
async def test_constructor_rejects_a_url_it_cannot_use_with_syntax_error(bad_url: str) -> None:
    with pytest.raises(DOMSyntaxError) as caught:
        WebSocket(bad_url)
    assert caught.value.name == "SyntaxError"
    assert caught.value.code == 12
    assert isinstance(caught.value, DOMException)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("given", "serialized"),
    [
        ("http://127.0.0.1:{port}/echo", "ws://127.0.0.1:{port}/echo"),
        ("https://127.0.0.1:{port}/", "wss://127.0.0.1:{port}/"),
        ("WS://127.0.0.1:{port}", "ws://127.0.0.1:{port}/"),
        ("ws://127.0.0.1:{port}/a/../b c?d e", "ws://127.0.0.1:{port}/b%20c?d%20e"),
        ("ws://0x7f.1:{port}/", "ws://127.0.0.1:{port}/"),
    ],
)
async def test_url_attribute_is_the_parsed_url_with_the_scheme_mapped(
    ports: Ports, given: str, serialized: str
) -> None:
    ws = WebSocket(given.format(port=ports.mute_port))
    assert ws.url == serialized.format(port=ports.mute_port)
    recorder = Recorder(ws)
    ws.close()
    await recorder.wait_closed()


@pytest.mark.parametrize(
    "protocols",
    [
        "",
        "ec ho",
        "echo,chat",
        ["echo", "echo"],
        ["echo", "eCho"],  # web-platform-tests compare case-insensitively
        ["\u00e9cho"],
        ["chat", ""],
        "a(b)",
    ],
)
async def test_constructor_rejects_bad_or_repeated_subprotocols(protocols: Any) -> None:
    with pytest.raises(DOMSyntaxError):
        WebSocket("ws://127.0.0.1:1/", protocols)


async def test_constructor_rejects_subprotocols_that_are_not_strings() -> None:
    with pytest.raises(TypeError):
        WebSocket("ws://127.0.0.1:1/", [b"chat"])  # type: ignore[list-item]


async def test_constructor_starts_connecting_without_being_awaited(ports: Ports) -> None:
    ws = WebSocket(url(ports), "chat")
    assert ws.readyState == WebSocket.CONNECTING == 0
    assert (ws.protocol, ws.extensions, ws.bufferedAmount, ws.binaryType) == ("", "", 0, "blob")
    recorder = Recorder(ws)
    ws.onopen = lambda event: ws.close()
    assert await recorder.wait_closed() == [
        ("open", WebSocket.OPEN),
        ("close", WebSocket.CLOSED, 1005, "", True),
    ]
    assert ws.protocol == "chat"


async def test_constants_are_on_the_class_and_on_instances(ports: Ports) -> None:
    assert (WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED) == (
        0,
        1,
        2,
        3,
    )
    ws = WebSocket(url(ports))
    assert (ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED) == (0, 1, 2, 3)
    with pytest.raises(AttributeError):
        ws.readyState = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ws.url = "ws://elsewhere/"  # type: ignore[misc]
    ws.close()
    await Recorder(ws).wait_closed()


async def test_ssl_context_for_a_ws_url_is_refused() -> None:
    with pytest.raises(ValueError, match="wss"):
        WebSocket("ws://127.0.0.1:1/", ssl=ssl.create_default_context())


# --- open, messages, attributes ------------------------------------------------------------------


async def test_websocket_exchanges_text_and_binary_messages(ports: Ports) -> None:
    ws, recorder = await open_websocket(url(ports))
    assert ws.extensions.startswith("permessage-deflate")
    ws.send("héllo")
    ws.send(b"\x00\x01")
    ws.send(bytearray(b"\x02"))
    ws.send(memoryview(b"\x00\x03\x04")[1:])
    ws.send(Blob([b"\x05", "☃"]))
    ws.send(array.array("H", [1]))  # any bytes-like object, like an ArrayBufferView
    received: list[Any] = []
    ws.onmessage = lambda event: received.append(event) if len(received) < 5 else ws.close()
    await recorder.wait_closed()
    assert [event.data for event in received[:1]] == ["héllo"]
    assert [bytes(event.data) for event in received[1:5]] == [
        b"\x00\x01",
        b"\x02",
        b"\x03\x04",
        b"\x05\xe2\x98\x83",
    ]
    assert all(isinstance(event.data, Blob) for event in received[1:5])
    assert {event.origin for event in received} == {f"ws://127.0.0.1:{ports.port}"}


async def test_binary_type_chooses_blob_or_bytes_and_ignores_other_values(ports: Ports) -> None:
    ws, recorder = await open_websocket(url(ports))
    ws.binaryType = "notBlobOrArrayBuffer"
    assert ws.binaryType == "blob"
    received: list[Any] = []

    def on_message(event: MessageEvent) -> None:
        received.append(event.data)
        if len(received) == 1:
            ws.binaryType = "arraybuffer"
            ws.send(b"second")
        else:
            ws.close()

    ws.onmessage = on_message
    ws.send(b"first")
    await recorder.wait_closed()
    first, second = received
    assert isinstance(first, Blob)
    assert (first.size, first.type, await first.text(), await first.arrayBuffer()) == (
        5,
        "",
        "first",
        b"first",
    )
    assert second == b"second"
    assert type(second) is bytes


async def test_send_replaces_unpaired_surrogates_with_replacement_character(ports: Ports) -> None:
    ws, recorder = await open_websocket(url(ports))
    ws.send("a\udc00xb\ud800xc\udc00\ud800x\ud83d\ude00")
    assert ws.bufferedAmount == len("a\ufffdxb\ufffdxc\ufffd\ufffdx😀".encode())
    ws.onmessage = lambda event: ws.close()
    events = await recorder.wait_closed()
    assert events[1] == ("message", WebSocket.OPEN, "a\ufffdxb\ufffdxc\ufffd\ufffdx😀")


@pytest.mark.parametrize("data", [None, 1, 1.5, {"a": 1}, ["text"]])
async def test_send_refuses_what_is_neither_text_nor_bytes(ports: Ports, data: Any) -> None:
    ws, recorder = await open_websocket(url(ports))
    with pytest.raises(TypeError):
        ws.send(data)
    assert ws.bufferedAmount == 0
    ws.close()
    await recorder.wait_closed()


async def test_send_before_open_raises_invalid_state_error(ports: Ports) -> None:
    ws = WebSocket(url(ports))
    with pytest.raises(InvalidStateError) as caught:
        ws.send("too early")
    assert (caught.value.name, caught.value.code) == ("InvalidStateError", 11)
    assert isinstance(caught.value, InvalidState)
    assert ws.bufferedAmount == 0
    ws.close()
    await Recorder(ws).wait_closed()


async def drained(ws: WebSocket) -> None:
    """Return once ``ws.bufferedAmount`` fell to 0: every byte sent reached the socket."""
    # bufferedAmount has no event of its own; it is checked on each turn of the loop.
    while ws.bufferedAmount:
        await asyncio.sleep(0)


async def test_buffered_amount_counts_utf8_bytes_until_sent(ports: Ports) -> None:
    ws, recorder = await open_websocket(url(ports))
    ws.send("¥¥¥¥¥¥")
    assert ws.bufferedAmount == 12
    ws.send(b"x" * 10)
    assert ws.bufferedAmount == 22
    await drained(ws)
    ws.close()
    await recorder.wait_closed()


async def test_buffered_amount_keeps_data_the_os_has_not_taken() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0, max_size=None, compression=None) as server:
        ws, recorder = await open_websocket(f"ws://127.0.0.1:{server.port}/")
        peer = await hold.next()
        assert peer.transport is not None
        peer.transport.pause_reading()
        # A small, fixed receive buffer: the sender's buffer (4 MiB at most here) fills up.
        sock = peer.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        payload = os.urandom(8 * 1024 * 1024)
        ws.send(payload)
        ws.send("x")
        connection = ws._connection
        assert connection is not None and connection.transport is not None
        # The payload reaches the transport a loop turn or two later; the OS takes what fits
        # in its buffers and, since the peer reads nothing, the transport keeps the rest.
        while not connection.transport.get_write_buffer_size():
            await asyncio.sleep(0)
        unsent = connection.transport.get_write_buffer_size()
        assert 0 < unsent <= ws.bufferedAmount <= len(payload) + 1
        peer.transport.resume_reading()
        assert await peer.recv() == payload
        assert await peer.recv() == "x"
        await drained(ws)
        ws.close()
        await recorder.wait_closed()


async def test_buffered_amount_grows_on_send_after_close_and_nothing_is_sent() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0) as server:
        ws, recorder = await open_websocket(f"ws://127.0.0.1:{server.port}/")
        peer = await hold.next()
        ws.send("sent")
        ws.close()
        ws.send("never sent")
        assert ws.bufferedAmount == 4 + 10
        assert ws.readyState == WebSocket.CLOSING
        events = await recorder.wait_closed()
        ws.send(b"12345")
        assert ws.bufferedAmount == 10 + 5
        assert events[-1] == ("close", WebSocket.CLOSED, 1005, "", True)
        assert await peer.recv() == "sent"
        with pytest.raises(Exception, match="1005"):
            await peer.recv()


# --- close --------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 500, 999, 1001, 1005, 2999, 5000, 0x10000 + 1000])
async def test_close_refuses_codes_other_than_1000_and_3000_to_4999(
    ports: Ports, code: int
) -> None:
    ws = WebSocket(url(ports))
    with pytest.raises(InvalidAccessError) as caught:
        ws.close(code)
    assert (caught.value.name, caught.value.code) == ("InvalidAccessError", 15)
    assert isinstance(caught.value, ValueError)
    assert ws.readyState == WebSocket.CONNECTING
    ws.close()
    await Recorder(ws).wait_closed()


async def test_close_refuses_a_reason_over_123_bytes_or_without_a_code(ports: Ports) -> None:
    ws = WebSocket(url(ports))
    with pytest.raises(DOMSyntaxError):
        ws.close(1000, "é" * 62)  # 124 bytes
    with pytest.raises(InvalidAccessError):
        ws.close(2999, "é" * 62)  # the code is checked first
    with pytest.raises(InvalidAccessError):
        ws.close(reason="a reason needs a code")
    with pytest.raises(TypeError):
        ws.close("1000")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ws.close(True)
    assert ws.readyState == WebSocket.CONNECTING
    ws.close()
    await Recorder(ws).wait_closed()


@pytest.mark.parametrize(
    ("args", "code_seen_by_server", "reason_seen_by_server"),
    [
        ((), 1005, ""),
        ((1000,), 1000, ""),
        ((3000, "é" * 61 + "x"), 3000, "é" * 61 + "x"),
        ((4999, "\ud807"), 4999, "\ufffd"),
    ],
)
async def test_close_sends_the_code_and_reason_given(
    args: tuple[Any, ...], code_seen_by_server: int, reason_seen_by_server: str
) -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0) as server:
        ws, recorder = await open_websocket(f"ws://127.0.0.1:{server.port}/")
        peer = await hold.next()
        ws.close(*args)
        assert ws.readyState == WebSocket.CLOSING
        events = await recorder.wait_closed()
        await peer.wait_closed()
        assert (peer.close_code, peer.close_reason) == (code_seen_by_server, reason_seen_by_server)
        # The server echoes the code, without the reason.
        assert events == [
            ("open", WebSocket.OPEN),
            ("close", WebSocket.CLOSED, code_seen_by_server, "", True),
        ]
        assert type(events[-1][2]) is int


async def test_close_while_connecting_fails_the_connection(ports: Ports) -> None:
    ws = WebSocket(f"ws://127.0.0.1:{ports.mute_port}/")
    recorder = Recorder(ws)
    await ports.mute_accepted.wait()  # the TCP connection is made; the handshake never ends
    assert ws.readyState == WebSocket.CONNECTING
    ws.close()
    assert ws.readyState == WebSocket.CLOSING
    # At once: well before the opening handshake's own timeout (10 s) would end it.
    async with asyncio.timeout(5):
        events = await recorder.wait_closed()
    assert events == [
        ("error", WebSocket.CLOSED),
        ("close", WebSocket.CLOSED, 1006, "", False),
    ]


async def test_close_right_after_the_constructor_fails_the_connection(ports: Ports) -> None:
    ws = WebSocket(url(ports))
    recorder = Recorder(ws)
    ws.close(1000, "never opened")
    assert await recorder.wait_closed() == [
        ("error", WebSocket.CLOSED),
        ("close", WebSocket.CLOSED, 1006, "", False),
    ]


async def test_close_several_times_or_in_the_close_event_dispatches_one_close(
    ports: Ports,
) -> None:
    ws, recorder = await open_websocket(url(ports))
    states = []

    def close_again(event: CloseEvent) -> None:
        ws.close()
        states.append(ws.readyState)

    ws.onclose = close_again
    ws.close()
    ws.close(4000)
    ws.close()
    events = await recorder.wait_closed(settle_s=0.1)
    assert [event[0] for event in events] == ["open", "close"]
    assert states == [WebSocket.CLOSED]


async def test_server_initiated_close_reports_its_code_and_reason(ports: Ports) -> None:
    ws = WebSocket(url(ports, "/greet-and-close?code=4321&reason=done+%E2%98%83"))
    events = await Recorder(ws).wait_closed()
    assert events == [
        ("open", WebSocket.OPEN),
        ("message", WebSocket.OPEN, "hello"),
        ("close", WebSocket.CLOSED, 4321, "done ☃", True),
    ]


async def test_server_close_without_code_reports_1005(ports: Ports) -> None:
    ws = WebSocket(url(ports, "/greet-and-close"))
    events = await Recorder(ws).wait_closed()
    assert events[-1] == ("close", WebSocket.CLOSED, 1005, "", True)


async def test_ready_state_is_closing_once_the_server_started_closing() -> None:
    close_tcp = asyncio.Event()

    async def close_then_wait(peer: RawPeer) -> None:
        peer.send_close(4000, "later")
        await close_tcp.wait()  # the TCP connection stays open meanwhile
        await peer.close()

    async with serve_raw(close_then_wait) as port:
        ws = WebSocket(f"ws://127.0.0.1:{port}/")
        recorder = Recorder(ws)
        for _ in range(500):  # polled: CLOSING has no event of its own
            if ws.readyState == WebSocket.CLOSING:
                break
            await asyncio.sleep(0.01)
        assert ws.readyState == WebSocket.CLOSING
        close_tcp.set()
        assert await recorder.wait_closed() == [
            ("open", WebSocket.OPEN),
            ("close", WebSocket.CLOSED, 4000, "later", True),
        ]


# --- failures and event order -------------------------------------------------------------------


async def test_refused_handshake_dispatches_error_then_close(ports: Ports) -> None:
    ws = WebSocket(url(ports, "/reject"))
    assert await Recorder(ws).wait_closed() == [
        ("error", WebSocket.CLOSED),
        ("close", WebSocket.CLOSED, 1006, "", False),
    ]


async def test_unreachable_server_dispatches_error_then_close(ports: Ports) -> None:
    with socket_bound_but_not_listening() as port:
        ws = WebSocket(f"ws://127.0.0.1:{port}/")
        events = await Recorder(ws).wait_closed()
    assert events == [
        ("error", WebSocket.CLOSED),
        ("close", WebSocket.CLOSED, 1006, "", False),
    ]


async def test_protocol_error_dispatches_message_error_close(ports: Ports) -> None:
    ws = WebSocket(url(ports, "/protocol-error"))
    assert await Recorder(ws).wait_closed() == [
        ("open", WebSocket.OPEN),
        ("message", WebSocket.OPEN, "test"),
        ("error", WebSocket.CLOSED),
        ("close", WebSocket.CLOSED, 1006, "", False),
    ]


async def test_tcp_reset_closes_with_1006_without_error(ports: Ports) -> None:
    ws = WebSocket(url(ports, "/drop"))
    assert await Recorder(ws).wait_closed() == [
        ("open", WebSocket.OPEN),
        ("message", WebSocket.OPEN, "before the end"),
        ("close", WebSocket.CLOSED, 1006, "", False),
    ]


async def test_server_without_the_requested_subprotocol_fails_the_connection(
    ports: Ports,
) -> None:
    ws = WebSocket(url(ports), ["v2.example"])
    assert await Recorder(ws).wait_closed() == [
        ("error", WebSocket.CLOSED),
        ("close", WebSocket.CLOSED, 1006, "", False),
    ]


async def test_server_choosing_an_unoffered_subprotocol_fails_the_connection() -> None:
    extra = [("Sec-WebSocket-Protocol", "surprise")]
    async with serve(Holder(), "127.0.0.1", 0, extra_headers=extra) as server:
        ws = WebSocket(f"ws://127.0.0.1:{server.port}/")
        assert await Recorder(ws).wait_closed() == [
            ("error", WebSocket.CLOSED),
            ("close", WebSocket.CLOSED, 1006, "", False),
        ]


async def test_message_over_max_size_fails_the_connection(ports: Ports) -> None:
    ws = WebSocket(url(ports), max_size=1000)
    recorder = Recorder(ws)
    ws.onopen = lambda event: ws.send("x" * 1001)  # echoed back: too big
    assert await recorder.wait_closed() == [
        ("open", WebSocket.OPEN),
        ("error", WebSocket.CLOSED),
        ("close", WebSocket.CLOSED, 1006, "", False),
    ]


async def test_events_have_the_standard_classes_and_fields(ports: Ports) -> None:
    ws = WebSocket(url(ports, "/protocol-error"))
    seen: list[tuple[Any, ...]] = []

    def inspect(event: Event) -> None:
        seen.append(
            (
                type(event),
                event.type,
                event.target is ws,
                event.currentTarget is ws,
                event.eventPhase,
                event.isTrusted,
                event.bubbles,
                event.cancelable,
            )
        )

    for type_ in EVENT_TYPES:
        ws.addEventListener(type_, inspect)
    await Recorder(ws).wait_closed()
    assert seen == [
        (Event, "open", True, True, Event.AT_TARGET, True, False, False),
        (MessageEvent, "message", True, True, Event.AT_TARGET, True, False, False),
        (Event, "error", True, True, Event.AT_TARGET, True, False, False),
        (CloseEvent, "close", True, True, Event.AT_TARGET, True, False, False),
    ]


# --- handlers -----------------------------------------------------------------------------------


async def test_event_handler_attributes_default_to_none_and_ignore_non_callables(
    ports: Ports,
) -> None:
    ws = WebSocket(url(ports))
    for name in ("onopen", "onmessage", "onerror", "onclose"):
        assert getattr(ws, name) is None
        setattr(ws, name, print)
        assert getattr(ws, name) is print
        setattr(ws, name, 2)
        assert getattr(ws, name) is None
    ws.close()
    await Recorder(ws).wait_closed()


async def test_coroutine_handlers_run_as_tasks(ports: Ports) -> None:
    ws = WebSocket(url(ports))
    recorder = Recorder(ws)
    done = asyncio.Event()
    received = []

    async def on_message(event: MessageEvent) -> None:
        await asyncio.sleep(0)
        received.append(event.data)
        ws.close()

    async def on_close(event: CloseEvent) -> None:
        await asyncio.sleep(0)
        done.set()

    ws.onopen = lambda event: ws.send("async")
    ws.onmessage = on_message
    ws.onclose = on_close
    await recorder.wait_closed()
    await asyncio.wait_for(done.wait(), 5)
    assert received == ["async"]


async def test_a_failing_handler_is_logged_and_the_others_still_run(
    ports: Ports, caplog: pytest.LogCaptureFixture
) -> None:
    ws = WebSocket(url(ports, "/greet-and-close"))
    recorder = Recorder(ws)

    def fail(event: Event) -> None:
        raise RuntimeError("handler bug")

    async def fail_later(event: Event) -> None:
        raise RuntimeError("coroutine handler bug")

    ws.onmessage = fail
    ws.addEventListener("message", fail_later)
    with caplog.at_level(logging.ERROR, logger="fullduplex"):
        events = await recorder.wait_closed()
    assert [event[0] for event in events] == ["open", "message", "close"]
    assert "handler bug" in caplog.text
    assert "coroutine handler bug" in caplog.text


async def test_an_unreferenced_websocket_lives_until_its_close_event(ports: Ports) -> None:
    closed = asyncio.get_running_loop().create_future()

    def start() -> None:
        ws = WebSocket(url(ports, "/greet-and-close?code=4000"))
        ws.onclose = lambda event: closed.set_result(event.code)

    start()
    gc.collect()
    assert await closed == 4000


# --- TLS ----------------------------------------------------------------------------------------


async def test_wss_with_the_given_ssl_context(tls: TestCA) -> None:
    async with scripted_server(ssl=tls.server_context) as ports:
        ws = WebSocket(f"wss://127.0.0.1:{ports.port}/echo", ssl=tls.client_context)
        assert ws.url == f"wss://127.0.0.1:{ports.port}/echo"
        recorder = Recorder(ws)
        ws.onopen = lambda event: ws.send("over TLS")
        ws.onmessage = lambda event: ws.close(1000)
        assert await recorder.wait_closed() == [
            ("open", WebSocket.OPEN),
            ("message", WebSocket.OPEN, "over TLS"),
            ("close", WebSocket.CLOSED, 1000, "", True),
        ]


# --- outside an event loop (more in test_browser_script.py) ---------------------------------


async def test_run_until_closed_inside_an_event_loop_is_an_error(ports: Ports) -> None:
    ws = WebSocket(url(ports))
    with pytest.raises(RuntimeError, match="onclose"):
        ws.run_until_closed()
    ws.close()
    await Recorder(ws).wait_closed()


# --- helpers ------------------------------------------------------------------------------------


@contextmanager
def socket_bound_but_not_listening() -> Iterator[int]:
    """A port nobody listens on (bound, so that nobody else takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
