"""The message queue and its alternative, the callback API: `on_message` delivers each
message inside the read, `send_nowait` answers without waiting, and replies made during one
read go out together."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fullduplex import ConnectionClosedError, ConnectionClosedOK, ServerConnection, connect, serve

from .peers import CLOSE, MASK, PING, PONG, TEXT, RawPeer, close_payload, encode_frame


async def callback_echo(ws: ServerConnection) -> None:
    ws.on_message(ws.send_nowait)
    await ws.wait_closed()


async def test_server_answers_through_a_message_callback() -> None:
    async with (
        serve(callback_echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"


async def test_callback_replies_to_one_read_go_out_in_order_and_together() -> None:
    async with serve(callback_echo, "127.0.0.1", 0, compression=None) as server:
        peer = await RawPeer.connected(server.port)
        peer.write(b"".join(encode_frame(TEXT, b"%d" % n, mask=MASK) for n in range(50)))
        for n in range(50):
            frame = await peer.read_frame()
            assert frame.payload == b"%d" % n
        await peer.close()


async def test_messages_queued_before_the_callback_are_handed_over_first() -> None:
    received: list[str | bytes] = []
    callback_set = asyncio.Event()
    done = asyncio.Event()

    async def late(ws: ServerConnection) -> None:
        while len(ws._messages or ()) < 2:  # bounded by the test's timeout
            await asyncio.sleep(0.01)

        def record(message: str | bytes) -> None:
            received.append(message)
            if len(received) == 3:
                done.set()

        ws.on_message(record)
        callback_set.set()
        await ws.wait_closed()

    async with (
        serve(late, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        await ws.send("one")
        await ws.send("two")
        await callback_set.wait()  # "three" arrives after the queued two were handed over
        await ws.send("three")
        await asyncio.wait_for(done.wait(), 5)
    assert received == ["one", "two", "three"]


async def test_a_failing_callback_fails_the_connection_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="fullduplex")

    async def broken(ws: ServerConnection) -> None:
        ws.on_message(lambda message: 1 / 0)  # type: ignore[func-returns-value]
        await ws.wait_closed()

    async with (
        serve(broken, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        await ws.send("boom")
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
        assert caught.value.code == 1011
    assert "message callback failed" in caplog.text


async def test_recv_refuses_to_run_beside_a_callback() -> None:
    outcome: list[BaseException] = []

    async def mixed(ws: ServerConnection) -> None:
        ws.on_message(ws.send_nowait)
        try:
            await ws.recv()
        except RuntimeError as exc:
            outcome.append(exc)

    async with (
        serve(mixed, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        await ws.wait_closed()
    assert len(outcome) == 1


async def test_send_nowait_refuses_other_types_and_a_closed_connection() -> None:
    async with (
        serve(callback_echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        with pytest.raises(TypeError):
            ws.send_nowait(bytearray(b"x"))  # type: ignore[arg-type]
        await ws.close()
        with pytest.raises(ConnectionClosedOK):
            ws.send_nowait("late")


async def test_reading_pauses_while_a_callback_connections_writes_are_paused() -> None:
    async with serve(callback_echo, "127.0.0.1", 0, write_limit=1024) as server:
        peer = await RawPeer.connected(server.port)
        connection = next(iter(server.connections))
        assert connection.transport is not None
        connection.pause_writing()
        assert not connection.transport.is_reading()
        connection.resume_writing()
        assert connection.transport.is_reading()
        await peer.close()


async def test_server_queues_pipelined_messages_in_order_and_all_before_the_closure() -> None:
    received: list[str | bytes] = []
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    was_reading: list[bool] = []

    async def collect(ws: ServerConnection) -> None:
        received.append(await ws.recv())  # the queue exists now: the fast read from here on
        await asyncio.sleep(0.2)  # the burst below arrives meanwhile and fills the queue
        assert ws.transport is not None
        was_reading.append(ws.transport.is_reading())
        async for message in ws:
            received.append(message)
        done.set_result(f"{ws.close_code}")

    async with serve(collect, "127.0.0.1", 0, compression=None, max_queue=8) as server:
        peer = await RawPeer.connected(server.port)
        peer.write(encode_frame(TEXT, b"first", mask=MASK))
        await asyncio.sleep(0.05)
        burst = [encode_frame(TEXT, b"%d" % n, mask=MASK) for n in range(30)]
        burst.insert(10, encode_frame(PING, b"p", mask=MASK))  # a control frame in between
        burst.append(encode_frame(CLOSE, close_payload(1000, ""), mask=MASK))
        peer.write(b"".join(burst))
        assert await asyncio.wait_for(done, 5) == "1000"
        assert received == ["first", *(str(n) for n in range(30))]
        assert was_reading == [False]  # max_queue reached: reading paused until taken
        frame = await peer.read_frame()
        assert (frame.opcode, frame.payload) == (PONG, b"p")
        await peer.close()
