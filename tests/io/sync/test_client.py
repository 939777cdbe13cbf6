"""The blocking client, `fullduplex.sync`, against fullduplex servers on 127.0.0.1.

The servers run on an event loop in another thread, as a blocking program's peer would. Every
blocking call here has a timeout, so that a bug fails its test instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from fullduplex import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
    Request,
    Response,
    ServerConnection,
    State,
    serve,
    sync,
)
from fullduplex.io.sync.loop import LoopStopped, LoopThread

from ...conftest import TestCA

TIMEOUT_S = 10

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextmanager
def server_thread(handler: Handler, **options: Any) -> Iterator[int]:
    """Run ``serve(handler, ...)`` on an event loop in another thread; yield its port."""
    loop = asyncio.new_event_loop()
    port: asyncio.Future[int] = loop.create_future()
    stop = asyncio.Event()

    async def run() -> None:
        try:
            async with serve(handler, "127.0.0.1", 0, **options) as server:
                port.set_result(server.port)
                await stop.wait()
        except BaseException as exc:
            if not port.done():
                port.set_exception(exc)
            raise

    async def get_port() -> int:
        return await port

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),))
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(get_port(), loop).result(TIMEOUT_S)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(TIMEOUT_S)
        loop.close()


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def loop_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("fullduplex sync client")}


@pytest.fixture
def echo_port() -> Iterator[int]:
    with server_thread(echo, subprotocols=["chat"]) as port:
        yield port


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    before = loop_threads()
    yield
    gc.collect()  # a connection dropped without close stops its thread from its finalizer
    for thread in loop_threads() - before:
        thread.join(TIMEOUT_S)
    assert loop_threads() - before == set()


def wait_until_receiving(ws: sync.Connection) -> None:
    """Return once a thread waits in ``ws.recv()`` for a message that has not arrived.

    That thread's `recv` runs as a task on the connection's loop; it waits once its coroutine
    is suspended there. Each check is a call on that loop, so the loop runs between checks.
    """
    recv_code = sync.Connection._recv.__code__

    async def receiving() -> bool:
        for task in asyncio.all_tasks():
            coroutine = task.get_coro()
            if (
                inspect.iscoroutine(coroutine)
                and coroutine.cr_code is recv_code
                and inspect.getcoroutinestate(coroutine) == inspect.CORO_SUSPENDED
            ):
                return True
        return False

    while not ws._loop_thread.run(receiving()):  # bounded by the test's timeout
        pass


def test_client_sends_and_receives_text_and_binary(echo_port: int) -> None:
    with sync.connect(f"ws://127.0.0.1:{echo_port}/") as ws:
        assert ws.state is State.OPEN
        assert ws.response.status == 101
        ws.send("héllo")
        ws.send(b"\x00\xff")
        ws.send(["frag", "mented"])
        assert ws.recv(timeout=TIMEOUT_S) == "héllo"
        assert ws.recv(timeout=TIMEOUT_S) == b"\x00\xff"
        assert ws.recv(timeout=TIMEOUT_S) == "fragmented"
    assert ws.state is State.CLOSED
    assert ws.close_code == 1000


def test_recv_times_out_without_losing_the_message() -> None:
    async def late(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("late")
        await ws.wait_closed()

    with server_thread(late) as port, sync.connect(f"ws://127.0.0.1:{port}/") as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.05)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0)
        ws.send("go")
        assert ws.recv(timeout=TIMEOUT_S) == "late"


def test_iteration_ends_at_a_normal_close_after_the_last_message() -> None:
    async def three_then_close(ws: ServerConnection) -> None:
        for index in range(3):
            await ws.send(f"message {index}")
        await ws.close(1000, "done")

    with server_thread(three_then_close) as port, sync.connect(f"ws://127.0.0.1:{port}/") as ws:
        assert list(ws) == ["message 0", "message 1", "message 2"]
        assert (ws.close_code, ws.close_reason) == (1000, "done")
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=TIMEOUT_S)


def test_iteration_raises_after_an_abnormal_close() -> None:
    async def fail(ws: ServerConnection) -> None:
        await ws.send("before")
        await ws.close(4000, "application error")

    with server_thread(fail) as port, sync.connect(f"ws://127.0.0.1:{port}/") as ws:
        received = []
        with pytest.raises(ConnectionClosedError) as caught:
            for message in ws:
                received.append(message)
        assert received == ["before"]
        assert caught.value.code == 4000


def test_send_is_thread_safe(echo_port: int) -> None:
    threads, per_thread = 8, 50
    with sync.connect(f"ws://127.0.0.1:{echo_port}/", max_size=None) as ws:

        def sender(index: int) -> None:
            for count in range(per_thread):
                # Large enough for writes to be split; a mixed-up frame would fail the check.
                ws.send(f"{index}:{count}:" + "x" * (1000 * index))

        workers = [threading.Thread(target=sender, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        received = [ws.recv(timeout=TIMEOUT_S) for _ in range(threads * per_thread)]
        for worker in workers:
            worker.join(TIMEOUT_S)
    by_thread: dict[str, list[int]] = {}
    for message in received:
        assert isinstance(message, str)
        index, count, padding = message.split(":")
        assert padding == "x" * (1000 * int(index))
        by_thread.setdefault(index, []).append(int(count))
    assert by_thread == {str(i): list(range(per_thread)) for i in range(threads)}


def test_recv_in_one_thread_while_another_sends(echo_port: int) -> None:
    with sync.connect(f"ws://127.0.0.1:{echo_port}/") as ws:
        received: list[Any] = []
        reader = threading.Thread(target=lambda: received.extend(ws.recv(TIMEOUT_S) for _ in "ab"))
        reader.start()
        wait_until_receiving(ws)
        ws.send("a")
        ws.send("b")
        reader.join(TIMEOUT_S)
        assert received == ["a", "b"]


def test_ping_returns_the_round_trip_time_and_pong_is_one_way(echo_port: int) -> None:
    with sync.connect(f"ws://127.0.0.1:{echo_port}/") as ws:
        assert 0 <= ws.ping(b"data", timeout=TIMEOUT_S) < TIMEOUT_S
        assert ws.ping(timeout=TIMEOUT_S) >= 0
        ws.pong(b"heartbeat")
        ws.send("still open")
        assert ws.recv(timeout=TIMEOUT_S) == "still open"


def test_ping_times_out_when_no_pong_comes() -> None:
    async def stop_reading(ws: ServerConnection) -> None:
        assert ws.transport is not None
        ws.transport.pause_reading()
        await ws.wait_closed()

    with (
        server_thread(stop_reading, close_timeout=1) as port,
        sync.connect(f"ws://127.0.0.1:{port}/", close_timeout=1) as ws,
        pytest.raises(TimeoutError),
    ):
        ws.ping(timeout=0.1)


def test_client_offers_subprotocols_headers_and_compression() -> None:
    seen: list[Request] = []

    def look(ws: ServerConnection, request: Request) -> None:
        seen.append(request)

    with (
        server_thread(echo, subprotocols=["chat"], process_request=look) as port,
        sync.connect(
            f"ws://127.0.0.1:{port}/",
            subprotocols=["superchat", "chat"],
            extra_headers=[("Authorization", "Bearer token")],
            compression="deflate",
        ) as ws,
    ):
        assert ws.subprotocol == "chat"
        assert [type(e).__name__ for e in ws.protocol.extensions] == ["PerMessageDeflate"]
        assert seen[0].headers.get("Authorization") == "Bearer token"
        assert ws.remote_address[1] == port
        assert ws.local_address[0] == "127.0.0.1"


def test_client_applies_the_size_limit() -> None:
    async def big(ws: ServerConnection) -> None:
        await ws.send(os.urandom(2000))
        await ws.wait_closed()

    with server_thread(big) as port, sync.connect(f"ws://127.0.0.1:{port}/", max_size=1000) as ws:
        with pytest.raises(ConnectionClosedError) as caught:
            ws.recv(timeout=TIMEOUT_S)
        assert caught.value.code == 1009


def test_client_connects_over_tls(tls: TestCA) -> None:
    with (
        server_thread(echo, ssl=tls.server_context) as port,
        sync.connect(f"wss://127.0.0.1:{port}/", ssl=tls.client_context) as ws,
    ):
        ws.send("secret")
        assert ws.recv(timeout=TIMEOUT_S) == "secret"


def test_refused_handshake_raises_and_leaves_no_thread() -> None:
    def refuse(ws: ServerConnection, request: Request) -> Response:
        return Response(403, [], b"no")

    with server_thread(echo, process_request=refuse) as port:
        with pytest.raises(InvalidStatus) as caught:
            sync.connect(f"ws://127.0.0.1:{port}/").open()
        assert caught.value.response.status == 403


def test_unreachable_server_raises_os_error() -> None:
    with server_thread(echo) as port:
        pass  # closed: nobody listens on that port any more
    with pytest.raises(OSError):
        sync.connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT_S).open()


def test_bad_options_raise_before_any_thread_starts() -> None:
    with pytest.raises(TypeError):
        sync.connect("ws://127.0.0.1:1/", no_such_option=True)
    with pytest.raises(ValueError):
        sync.connect("http://127.0.0.1:1/")


def test_close_then_recv_returns_the_messages_received_before() -> None:
    delivered = threading.Event()

    async def echo_once(ws: ServerConnection) -> None:
        await ws.send(await ws.recv())
        # The client answers this ping after reading the echo, which went out before it.
        await ws.ping()
        delivered.set()
        await ws.wait_closed()

    with server_thread(echo_once) as port:
        ws = sync.connect(f"ws://127.0.0.1:{port}/").open()
        ws.send("kept")
        assert delivered.wait(TIMEOUT_S)
        ws.close(4000, "bye")
        ws.close()  # only waits
        assert ws.state is State.CLOSED
        assert ws.recv(timeout=TIMEOUT_S) == "kept"
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=TIMEOUT_S)
        with pytest.raises(ConnectionClosedError):
            ws.send("too late")
        ws.__exit__(None, None, None)


def test_calls_after_the_block_raise_connection_closed(echo_port: int) -> None:
    with sync.connect(f"ws://127.0.0.1:{echo_port}/") as ws:
        pass
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=TIMEOUT_S)
    with pytest.raises(ConnectionClosedOK):
        ws.send("x")
    ws.close()  # nothing left to do


def test_a_forgotten_connection_stops_its_thread_when_collected(echo_port: int) -> None:
    ws = sync.connect(f"ws://127.0.0.1:{echo_port}/").open()
    ws.send("x")
    del ws  # `no_thread_left_behind` checks that its thread ended


def test_sync_is_importable_as_a_submodule_of_fullduplex() -> None:
    import fullduplex.sync
    from fullduplex.sync import ClientConnection, connect

    assert fullduplex.sync is sync
    assert (connect, ClientConnection) == (sync.connect, sync.ClientConnection)


def test_loop_thread_refuses_work_once_stopped() -> None:
    loop_thread = LoopThread("fullduplex sync client test")

    async def answer() -> int:
        return 42

    assert loop_thread.run(answer()) == 42
    loop_thread.stop()
    loop_thread.stop()
    assert loop_thread.is_stopped
    with pytest.raises(LoopStopped):
        loop_thread.run(answer())


def test_loop_thread_refuses_to_wait_for_itself() -> None:
    loop_thread = LoopThread("fullduplex sync client test")

    async def nested() -> str:
        async def inner() -> None:
            pass

        try:
            loop_thread.run(inner())
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    try:
        assert "cannot block" in loop_thread.run(nested())
    finally:
        loop_thread.stop()
