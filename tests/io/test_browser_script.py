"""`WebSocket` in a plain script, outside any event loop: a background thread runs the
connection, and `run_until_closed` dispatches the events in the script's own thread.

The server runs on an event loop in another thread, as a script's peer would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from fullduplex import Event, MessageEvent, WebSocket

from .whatwg_server import Ports, scripted_server

EVENT_TYPES = ("open", "message", "error", "close")


@pytest.fixture
def threaded_ports() -> Iterator[Ports]:
    """The scripted server, on an event loop in another thread (the test has none)."""
    loop = asyncio.new_event_loop()
    ready: asyncio.Future[Ports] = loop.create_future()
    stop = asyncio.Event()

    async def run() -> None:
        async with scripted_server() as ports:
            ready.set_result(ports)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),))
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(_result(ready), loop).result(10)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


async def _result(future: asyncio.Future[Ports]) -> Ports:
    return await future


def test_script_dispatches_events_in_its_thread_in_run_until_closed(
    threaded_ports: Ports,
) -> None:
    ws = WebSocket(f"ws://127.0.0.1:{threaded_ports.port}/echo")
    # The connection opens in the background thread; the open event waits for the script, in
    # the task queue. Polled: the queue has no event to wait for.
    assert ws._tasks is not None
    deadline = time.monotonic() + 10
    while ws._tasks.empty():
        assert time.monotonic() < deadline, "no task was queued: the connection did not open"
        time.sleep(0.001)
    assert ws.readyState == WebSocket.CONNECTING
    threads = set()
    log: list[tuple[str, int]] = []

    def record(event: Event) -> None:
        threads.add(threading.get_ident())
        log.append((event.type, ws.readyState))
        if event.type == "open":
            ws.send("from a script")
        elif event.type == "message":
            ws.close(1000)

    for type_ in EVENT_TYPES:
        ws.addEventListener(type_, record)
    assert ws.run_until_closed(timeout=10)
    assert log == [("open", 1), ("message", 1), ("close", 3)]
    assert threads == {threading.get_ident()}
    assert ws.run_until_closed(timeout=0)  # already closed: returns at once


def test_script_runs_coroutine_handlers_on_the_background_loop(threaded_ports: Ports) -> None:
    ws = WebSocket(f"ws://127.0.0.1:{threaded_ports.port}/greet-and-close")
    ran = threading.Event()

    async def on_message(event: MessageEvent) -> None:
        await asyncio.sleep(0)
        ran.set()

    ws.onmessage = on_message
    assert ws.run_until_closed(timeout=10)
    assert ran.wait(5)


def test_run_until_closed_returns_false_on_timeout(threaded_ports: Ports) -> None:
    ws = WebSocket(f"ws://127.0.0.1:{threaded_ports.mute_port}/")
    assert not ws.run_until_closed(timeout=0.05)
    ws.close()
    assert ws.readyState == WebSocket.CLOSING
    events: list[str] = []
    ws.onerror = lambda event: events.append(event.type)
    ws.onclose = lambda event: events.append(event.type)
    assert ws.run_until_closed(timeout=10)
    assert events == ["error", "close"]
