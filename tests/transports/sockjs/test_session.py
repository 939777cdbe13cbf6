"""The SockJS session state machine: frames in order, queues, heartbeats, the disconnect delay.

The endpoint drives a session the way these tests do: a receiving request `attach`es, takes
frames with `pull` and `detach`es; a sending request calls `deliver`.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from fullduplex.exceptions import ConnectionClosed, ConnectionClosedOK
from fullduplex.protocol.http11 import Request
from fullduplex.transports.sockjs import SockJSSession
from fullduplex.transports.sockjs.session import (
    INTERRUPTED_CODE,
    QUEUE_OVERFLOW_CODE,
    TIMED_OUT_CODE,
    SessionState,
)


def make_session(**options: object) -> SockJSSession:
    return SockJSSession(
        Request("/echo/0/s/xhr"), ("127.0.0.1", 1), transport="xhr-polling", **options
    )  # type: ignore[arg-type]


async def poll(session: SockJSSession) -> str:
    """One polling request: attach, take one frame, detach."""
    assert session.attach("xhr-polling")
    try:
        async with asyncio.timeout(5):
            return await session.pull()
    finally:
        session.detach()


async def test_session_sends_the_open_frame_first_then_queued_messages_in_one_frame() -> None:
    session = make_session()
    await session.send("early")
    assert await poll(session) == "o"
    await session.send("a")
    await session.send("b")
    assert await poll(session) == 'a["early","a","b"]'


async def test_longpoll_delivers_messages_sent_between_polls_in_order() -> None:
    session = make_session()
    assert await poll(session) == "o"
    for round_ in range(3):
        for index in range(5):
            await session.send(f"{round_}.{index}")
        frame = await poll(session)
        assert frame == "a[" + ",".join(f'"{round_}.{i}"' for i in range(5)) + "]"


async def test_held_poll_wakes_on_send() -> None:
    session = make_session()
    assert await poll(session) == "o"
    held = asyncio.ensure_future(poll(session))
    await asyncio.sleep(0)
    assert not held.done()
    await session.send("x")
    assert await held == 'a["x"]'


async def test_second_receiving_request_cannot_attach() -> None:
    session = make_session()
    assert session.attach("xhr-streaming")
    assert not session.attach("xhr-polling")
    session.detach()
    assert session.attach("xhr-polling")
    assert session.transport == "xhr-polling"


async def test_idle_receiver_gets_a_heartbeat() -> None:
    session = make_session(heartbeat_s=0.01)
    assert await poll(session) == "o"
    assert await poll(session) == "h"


async def test_close_sends_queued_messages_then_the_close_frame_to_every_request() -> None:
    session = make_session()
    assert await poll(session) == "o"
    await session.send("last")
    await session.close(3000, "Go away!")
    assert await poll(session) == 'a["last"]'
    assert await poll(session) == 'c[3000,"Go away!"]'
    assert await poll(session) == 'c[3000,"Go away!"]'
    with pytest.raises(ConnectionClosed):
        await session.send("late")


async def test_close_before_the_first_request_still_sends_the_open_frame_first() -> None:
    session = make_session()
    await session.close(3000, "Go away!")
    assert await poll(session) == "o"
    assert await poll(session) == 'c[3000,"Go away!"]'


async def test_recv_returns_delivered_messages_then_raises_once_closed() -> None:
    session = make_session()
    await session.deliver(["a", "b"])
    await session.close()
    assert await session.recv() == "a"
    assert await session.recv() == "b"
    with pytest.raises(ConnectionClosedOK):
        await session.recv()
    assert session.close_code == 1000


async def test_session_not_polled_within_the_disconnect_delay_is_closed_and_forgotten() -> None:
    forgotten: list[SockJSSession] = []
    session = make_session(disconnect_delay_s=0.02, on_expired=forgotten.append)
    assert await poll(session) == "o"
    await session.send("lost")
    with pytest.raises(ConnectionClosed) as closed:
        await session.recv()
    assert closed.value.code == TIMED_OUT_CODE
    assert forgotten == [session]
    assert session.state is SessionState.FORGOTTEN


async def test_attached_request_keeps_the_session_alive() -> None:
    forgotten: list[SockJSSession] = []
    session = make_session(disconnect_delay_s=0.02, on_expired=forgotten.append)
    assert session.attach("xhr-streaming")
    # Nothing to wait for: the session must outlive its disconnect delay while attached.
    await asyncio.sleep(0.06)
    assert forgotten == [] and session.state is SessionState.OPEN
    session.detach()
    await session.wait_closed()
    assert forgotten == [session]


async def test_closed_session_is_forgotten_after_the_disconnect_delay() -> None:
    loop = asyncio.get_running_loop()
    expired: asyncio.Future[SockJSSession] = loop.create_future()
    session = make_session(disconnect_delay_s=0.02, on_expired=expired.set_result)
    closed_at = loop.time()
    await session.close(3000, "bye")
    assert await expired is session
    # asyncio may run a timer up to its clock's resolution early.
    clock_resolution_s = time.get_clock_info("monotonic").resolution
    assert loop.time() - closed_at >= 0.02 - clock_resolution_s
    assert session.close_code == 3000


async def test_interrupt_drops_the_queue_and_closes_with_1002() -> None:
    session = make_session()
    assert await poll(session) == "o"
    await session.send("x")
    session.interrupt()
    assert await poll(session) == 'c[1002,"Connection interrupted"]'
    assert session.close_code == INTERRUPTED_CODE


async def test_full_queue_blocks_send_until_a_request_takes_it() -> None:
    session = make_session(max_queue_bytes=10)
    assert await poll(session) == "o"
    await session.send("x" * 8)
    blocked = asyncio.ensure_future(session.send("y" * 8))
    await asyncio.sleep(0)  # one loop turn: the send runs until it waits for room
    assert not blocked.done()
    assert await poll(session) == f'a["{"x" * 8}"]'
    await blocked
    assert await poll(session) == f'a["{"y" * 8}"]'


async def test_full_queue_closes_the_session_with_the_close_policy() -> None:
    session = make_session(max_queue_bytes=10, overflow="close")
    await session.send("x" * 8)
    with pytest.raises(ConnectionClosed) as closed:
        await session.send("y" * 8)
    assert closed.value.code == QUEUE_OVERFLOW_CODE


async def test_one_message_larger_than_the_bound_is_still_queued() -> None:
    session = make_session(max_queue_bytes=10)
    await session.send("z" * 100)
    assert await poll(session) == "o"
    assert await poll(session) == f'a["{"z" * 100}"]'


async def test_full_incoming_queue_holds_back_the_peer() -> None:
    session = make_session(max_queue_bytes=4)
    await session.deliver(["abc"])
    blocked = asyncio.ensure_future(session.deliver(["def"]))
    await asyncio.sleep(0)  # one loop turn: the delivery runs until it waits for room
    assert not blocked.done()
    assert await session.recv() == "abc"
    await blocked
    assert await session.recv() == "def"


async def test_session_refuses_binary_messages() -> None:
    with pytest.raises(TypeError):
        await make_session().send(b"bytes")


def test_overflow_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="overflow"):
        make_session(overflow="drop")
