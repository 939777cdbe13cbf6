"""`EngineIOSession`, driven in memory through its endpoint: messages both ways over polling and
WebSocket, the heartbeat, the upgrade, closing, bounded queues and cleanup.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from fullduplex.exceptions import ConnectionClosed
from fullduplex.transports.engineio import EngineIOSession
from fullduplex.transports.engineio.session import NOOP_DELAY_S

from .memory import (
    handshake,
    http,
    open_websocket,
    poll,
    post,
    target,
    websocket,
)


async def test_held_poll_gets_message_sent_later(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    session = endpoint.sessions[sid]
    while session._pending_poll is None:  # checked each loop turn: holding has no event
        await asyncio.sleep(0)
    assert not held.is_answered
    await session.send("later")
    assert (await held.answer())[2] == b"4later"


async def test_client_gone_from_held_poll_allows_next_poll(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    first = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    session = endpoint.sessions[sid]
    while session._pending_poll is None:  # checked each loop turn: holding has no event
        await asyncio.sleep(0)
    first.disconnect()
    while session._pending_poll is not None:  # nor has letting go
        await asyncio.sleep(0)
    await session.send("x")
    assert await poll(endpoint, sid) == (200, b"4x")
    assert not first.is_answered


async def test_client_close_packet_ends_held_poll_with_noop(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    assert await post(endpoint, sid, b"1") == (200, b"ok")
    assert (await held.answer())[::2] == (200, b"6")
    assert (session.close_code, session.close_reason) == (1000, "transport close")
    assert (await poll(endpoint, sid))[0] == 400


async def test_post_waits_while_application_reads_slowly(make_endpoint: Any) -> None:
    received: list[str | bytes] = []
    release = asyncio.Event()
    all_received = asyncio.Event()

    async def slow(session: EngineIOSession) -> None:
        await release.wait()
        async for message in session:
            received.append(message)
            if len(received) == 50:
                all_received.set()

    endpoint = make_endpoint(slow, max_queue_messages=2)
    sid = (await handshake(endpoint))["sid"]
    flood = b"\x1e".join(b"4%d" % i for i in range(50))
    pending = await http(endpoint, "POST", target(EIO="4", transport="polling", sid=sid), flood)
    session = endpoint.sessions[sid]
    while not session._inbox_space._waiters:  # checked each loop turn: the POST waits for room
        await asyncio.sleep(0)
    assert not pending.is_answered
    assert len(session._inbox) == 2
    release.set()
    assert (await pending.answer())[::2] == (200, b"ok")
    await asyncio.wait_for(all_received.wait(), 2)
    assert received == [str(i) for i in range(50)]


async def test_send_waits_while_client_does_not_poll(make_endpoint: Any) -> None:
    sent: list[int] = []

    async def flood(session: EngineIOSession) -> None:
        for i in range(10):
            await session.send(str(i))
            sent.append(i)
        await session.wait_closed()

    endpoint = make_endpoint(flood, max_queue_messages=3)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    # Checked each loop turn (waiting for room has no event): a send waits with 3 queued.
    while len(session._outbox) < 3 or not session._outbox_space._waiters:
        await asyncio.sleep(0)
    assert sent == [0, 1, 2]
    assert await poll(endpoint, sid) == (200, b"40\x1e41\x1e42")
    while len(session._outbox) < 3 or not session._outbox_space._waiters:
        await asyncio.sleep(0)
    assert sent == [0, 1, 2, 3, 4, 5]


async def test_polling_heartbeat_pings_and_times_out(make_endpoint: Any) -> None:
    endpoint = make_endpoint(ping_interval_ms=30, ping_timeout_ms=150)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    for _ in range(3):
        assert await poll(endpoint, sid) == (200, b"2")
        assert await post(endpoint, sid, b"3") == (200, b"ok")
    await asyncio.wait_for(session.wait_closed(), 1)
    assert (session.close_code, session.close_reason) == (1011, "ping timeout")
    assert (await poll(endpoint, sid))[0] == 400


async def test_websocket_heartbeat_pings_and_times_out(make_endpoint: Any) -> None:
    endpoint = make_endpoint(ping_interval_ms=30, ping_timeout_ms=150)
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    for _ in range(3):
        assert await ws.client_recv() == "2"
        ws.client_send("3")
    assert await ws.client_recv() == "2"
    assert await ws.client_recv() is None
    assert (session.close_code, ws.close_code) == (1011, 1011)


async def test_websocket_echoes_text_and_binary(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    ws, _ = await open_websocket(endpoint)
    ws.client_send("4hello")
    assert await ws.client_recv() == "4hello"
    ws.client_send(b"\x01\x02")
    assert await ws.client_recv() == b"\x01\x02"


async def test_invalid_packet_closes_websocket(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    ws.client_send("abc")
    assert await ws.client_recv() is None
    assert (session.close_code, ws.close_code) == (1002, 1002)


async def test_oversized_websocket_message_closes_with_1009(make_endpoint: Any) -> None:
    endpoint = make_endpoint(max_payload_bytes=10)
    ws, _ = await open_websocket(endpoint)
    ws.client_send("4" + "x" * 10)
    assert await ws.client_recv() is None
    assert ws.close_code == 1009


async def test_client_close_packet_closes_websocket(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    ws.client_send("1")
    assert await ws.client_recv() is None
    assert session.close_code == 1000
    assert not endpoint.sessions


@pytest.mark.parametrize(("websocket_code", "session_code"), [(1000, 1000), (1001, 1006)])
async def test_websocket_closed_without_close_packet_ends_session(
    make_endpoint: Any, websocket_code: int, session_code: int
) -> None:
    endpoint = make_endpoint()
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    ws.client_close(websocket_code)
    await asyncio.wait_for(session.wait_closed(), 1)
    assert (session.close_code, session.close_reason) == (session_code, "transport close")


async def test_upgrade_probes_ends_poll_with_noop_and_switches(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    assert (await held.answer())[::2] == (200, b"6")
    # Until the UPGRADE packet, messages still go out by polling.
    assert session.transport == "polling"
    await session.send("before")
    assert await poll(endpoint, sid) == (200, b"4before")
    assert await poll(endpoint, sid) == (200, b"6")
    ws.client_send("5")
    ws.client_send("4hello")
    assert await ws.client_recv() == "4hello"
    assert session.transport == "websocket"
    assert (await poll(endpoint, sid))[0] == 400
    assert (await post(endpoint, sid, b"4x"))[0] == 400


async def test_upgrade_flushes_packets_queued_during_the_switch(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    await session.send("a")
    await session.send(b"b")
    ws.client_send("5")
    assert await ws.client_recv() == "4a"
    assert await ws.client_recv() == b"b"


async def test_second_websocket_for_same_session_is_closed(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    ws.client_send("5")
    assert await ws.client_recv() == "3probe"
    session = endpoint.sessions[sid]
    while session._websocket is not ws:  # checked each loop turn: the upgrade has no event
        await asyncio.sleep(0)
    second, task = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    assert await second.client_recv() is None
    await task
    ws.client_send("4hello")
    assert await ws.client_recv() == "4hello"


async def test_upgrade_without_upgrade_packet_times_out(make_endpoint: Any) -> None:
    endpoint = make_endpoint(upgrade_timeout_ms=30)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    ws, task = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    assert await ws.client_recv() is None
    await task
    assert session.transport == "polling" and not session.is_closed
    await session.send("still")
    assert await poll(endpoint, sid) == (200, b"4still")


async def test_other_packet_during_probe_abandons_upgrade(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    ws, task = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("4hello")
    assert await ws.client_recv() is None
    await task
    assert endpoint.sessions[sid].transport == "polling"


async def test_application_close_over_polling_sends_rest_then_close(make_endpoint: Any) -> None:
    async def bye(session: EngineIOSession) -> None:
        await session.send("bye")
        await session.close(4000, "done")

    endpoint = make_endpoint(bye)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    assert await poll(endpoint, sid) == (200, b"4bye\x1e1")
    assert (session.close_code, session.close_reason) == (4000, "done")
    with pytest.raises(ConnectionClosed):
        await session.send("x")


async def test_application_close_over_websocket_sends_rest_then_closes(make_endpoint: Any) -> None:
    async def bye(session: EngineIOSession) -> None:
        await session.send("bye")

    endpoint = make_endpoint(bye)
    ws, _ = await open_websocket(endpoint)
    assert await ws.client_recv() == "4bye"
    assert await ws.client_recv() is None
    assert ws.close_code == 1000


async def test_failing_handler_closes_session_with_1011(make_endpoint: Any) -> None:
    async def fails(session: EngineIOSession) -> None:
        raise RuntimeError("boom")

    endpoint = make_endpoint(fails)
    ws, _ = await open_websocket(endpoint)
    assert await ws.client_recv() is None
    assert ws.close_code == 1011


async def test_ended_session_leaves_no_timer_or_task(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    ws.client_send("1")
    await asyncio.wait_for(session.wait_closed(), 1)
    # What still runs (the handler, the WebSocket's close) ends, and leaves nothing behind.
    await asyncio.wait_for(
        asyncio.gather(*endpoint._handler_tasks, *session._closing_tasks, return_exceptions=True),
        1,
    )
    assert session._ping_timer is None and session._pong_deadline is None
    assert session._linger_timer is None and session._upgrade_timer is None
    assert session._writer is None
    assert not session._closing_tasks
    assert not endpoint._handler_tasks
    assert not endpoint.sessions


async def test_poll_held_across_probe_and_upgrade_is_refused(make_endpoint: Any) -> None:
    # The client sent PING probe and UPGRADE at once; the poll it made meanwhile is read
    # before them: by the time the poll runs the session is on WebSocket, so 400.
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    ws.client_send("2probe")
    ws.client_send("5")
    assert (await held.answer())[0] == 400
    assert await ws.client_recv() == "3probe"
    ws.client_send("4hello")
    assert await ws.client_recv() == "4hello"


async def test_session_exposes_sid_request_and_remote_address(make_endpoint: Any) -> None:
    sessions: list[EngineIOSession] = []

    async def keep(session: EngineIOSession) -> None:
        sessions.append(session)
        await session.wait_closed()

    endpoint = make_endpoint(keep)
    sid = (await handshake(endpoint))["sid"]
    await asyncio.sleep(0)  # one loop turn: the application's task starts
    (session,) = sessions
    assert session.sid == sid
    assert session.request.path.startswith("/engine.io/?EIO=4")
    assert session.remote_address == ("127.0.0.1", 50000)
    assert (session.close_code, session.close_reason, session.is_closed) == (None, "", False)
    with pytest.raises(TypeError):
        await session.send(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("packet", [b"0{}", b"5"])
async def test_open_or_upgrade_from_client_over_polling_is_a_parse_error(
    make_endpoint: Any, packet: bytes
) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    assert await post(endpoint, sid, packet) == (200, b"ok")
    assert (session.close_code, session.close_reason) == (1002, "parse error")


async def test_noop_and_unsolicited_pong_change_nothing(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    assert await post(endpoint, sid, b"6\x1e3\x1e2\x1e4ok") == (200, b"ok")
    assert await poll(endpoint, sid) == (200, b"4ok")
    assert not endpoint.sessions[sid].is_closed


async def test_application_close_answers_held_poll_at_once(make_endpoint: Any) -> None:
    sessions: list[EngineIOSession] = []

    async def keep(session: EngineIOSession) -> None:
        sessions.append(session)
        await session.wait_closed()

    endpoint = make_endpoint(keep)
    sid = (await handshake(endpoint))["sid"]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    while endpoint.sessions[sid]._pending_poll is None:  # checked each loop turn: no event
        await asyncio.sleep(0)
    await sessions[0].close(1000)
    assert (await held.answer())[::2] == (200, b"1")
    with pytest.raises(ConnectionClosed):
        await sessions[0].recv()


async def test_polling_client_that_never_polls_again_loses_the_close(
    make_endpoint: Any,
) -> None:
    sessions: list[EngineIOSession] = []

    async def keep(session: EngineIOSession) -> None:
        sessions.append(session)
        await session.wait_closed()

    endpoint = make_endpoint(keep, ping_interval_ms=20, ping_timeout_ms=20)
    await handshake(endpoint)
    await asyncio.sleep(0)  # one loop turn: the application's task starts
    await asyncio.wait_for(sessions[0].close(4001, "bye"), 1)
    assert (sessions[0].close_code, sessions[0].close_reason) == (4001, "bye")


async def test_session_ending_during_probe_closes_the_new_websocket(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    ws, task = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    assert await post(endpoint, sid, b"1") == (200, b"ok")
    assert await ws.client_recv() is None
    await task


async def test_websocket_closes_with_1000_for_a_code_a_close_frame_cannot_carry(
    make_endpoint: Any,
) -> None:
    async def odd(session: EngineIOSession) -> None:
        await session.close(1006, "odd")

    endpoint = make_endpoint(odd)
    ws, _ = await open_websocket(endpoint)
    assert await ws.client_recv() is None
    assert (ws.close_code, ws.close_reason) == (1000, "odd")


async def test_pong_deadline_counts_from_when_the_ping_was_due(make_endpoint: Any) -> None:
    endpoint = make_endpoint(ping_interval_ms=20, ping_timeout_ms=50)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    assert session._ping_timer is not None
    due = session._ping_timer.when()
    # The loop is busy when the PING is due: it goes out late, its deadline does not move.
    time.sleep(0.04)  # the point: blocking the loop, as a busy one would
    await asyncio.sleep(0)  # two loop turns: the late PING timer runs
    await asyncio.sleep(0)
    assert session._pong_deadline is not None
    assert session._pong_deadline.when() == pytest.approx(due + 0.05)


async def test_poll_held_at_probe_gets_noop_no_sooner_than_the_delay(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    loop = asyncio.get_running_loop()
    probed_at = loop.time()
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    assert (await held.answer())[::2] == (200, b"6")
    # Held that long, the poll is still there for a late UPGRADE (frames compressed off the
    # client's event loop) to answer with 400. asyncio may run a timer up to its clock's
    # resolution early.
    clock_resolution_s = time.get_clock_info("monotonic").resolution
    assert loop.time() - probed_at >= NOOP_DELAY_S - clock_resolution_s


async def test_poll_held_at_probe_gets_400_after_upgrade(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    assert not held.is_answered
    ws.client_send("5")
    assert (await held.answer())[0] == 400


async def test_try_send_nowait_queues_for_the_next_poll_while_there_is_room(
    make_endpoint: Any,
) -> None:
    results: list[bool] = []
    done = asyncio.Event()

    async def eager(session: EngineIOSession) -> None:
        results.extend(session.try_send_nowait(str(i)) for i in range(4))
        done.set()
        await session.wait_closed()

    endpoint = make_endpoint(eager, max_queue_messages=3)
    sid = (await handshake(endpoint))["sid"]
    await done.wait()
    assert results == [True, True, True, False]
    assert await poll(endpoint, sid) == (200, b"40\x1e41\x1e42")


async def test_try_send_nowait_refuses_once_the_session_is_closing(make_endpoint: Any) -> None:
    closing = asyncio.Event()
    results: list[bool] = []

    async def closer(session: EngineIOSession) -> None:
        task = asyncio.create_task(session.close())
        await asyncio.sleep(0)  # the close has started: the session is closing
        results.append(session.try_send_nowait("late"))
        closing.set()
        await task

    endpoint = make_endpoint(closer)
    sid = (await handshake(endpoint))["sid"]
    await closing.wait()
    assert results == [False]
    assert await poll(endpoint, sid) == (200, b"1")
