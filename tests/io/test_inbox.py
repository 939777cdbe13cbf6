"""The message queue and its alternative, the callback API: `on_message` delivers each
message inside the read, `send_nowait` answers without waiting, and replies made during one
read go out together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from fullduplex import ConnectionClosedError, ConnectionClosedOK, ServerConnection, serve

from .peers import (
    CLOSE,
    MASK,
    PING,
    PONG,
    TEXT,
    Holder,
    RawPeer,
    close_payload,
    encode_frame,
    ws_pair,
)


@asynccontextmanager
async def callback_echo_and_raw_peer(
    **options: Any,
) -> AsyncIterator[tuple[ServerConnection, RawPeer]]:
    """Serve with ``options``; yield the server's connection, which echoes through a message
    callback, and the raw peer at its other end."""
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0, **options) as server:
        peer = await RawPeer.connected(server.port)
        connection = await hold.next()
        connection.on_message(connection.send_nowait)
        try:
            yield connection, peer
        finally:
            await peer.close()


async def test_server_answers_through_a_message_callback() -> None:
    async with ws_pair() as (server_ws, ws):
        server_ws.on_message(server_ws.send_nowait)
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"


async def test_callback_replies_to_one_read_go_out_in_order_and_together() -> None:
    async with callback_echo_and_raw_peer(compression=None) as (_, peer):
        peer.write(b"".join(encode_frame(TEXT, b"%d" % n, mask=MASK) for n in range(50)))
        for n in range(50):
            frame = await peer.read_frame()
            assert frame.payload == b"%d" % n


async def test_messages_queued_before_the_callback_are_handed_over_first() -> None:
    received: list[str | bytes] = []
    done = asyncio.Event()

    def record(message: str | bytes) -> None:
        received.append(message)
        if len(received) == 3:
            done.set()

    async with ws_pair() as (server_ws, ws):
        await ws.send("one")
        await ws.send("two")
        while len(server_ws._messages or ()) < 2:  # bounded by the test's timeout
            await asyncio.sleep(0.01)
        server_ws.on_message(record)
        await ws.send("three")  # arrives after the queued two were handed over
        await asyncio.wait_for(done.wait(), 5)
    assert received == ["one", "two", "three"]


async def test_a_failing_callback_fails_the_connection_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="fullduplex")
    async with ws_pair() as (server_ws, ws):
        server_ws.on_message(lambda message: 1 / 0)  # type: ignore[func-returns-value]
        await ws.send("boom")
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
        assert caught.value.code == 1011
    assert "message callback failed" in caplog.text


async def test_recv_refuses_to_run_beside_a_callback() -> None:
    async with ws_pair() as (server_ws, _):
        server_ws.on_message(server_ws.send_nowait)
        with pytest.raises(RuntimeError):
            await server_ws.recv()


async def test_send_nowait_refuses_other_types_and_a_closed_connection() -> None:
    async with ws_pair() as (_, ws):
        with pytest.raises(TypeError):
            ws.send_nowait(bytearray(b"x"))  # type: ignore[arg-type]
        await ws.close()
        with pytest.raises(ConnectionClosedOK):
            ws.send_nowait("late")


async def test_reading_pauses_while_a_callback_connections_writes_are_paused() -> None:
    async with callback_echo_and_raw_peer(write_limit=1024) as (connection, _):
        assert connection.transport is not None
        connection.pause_writing()
        assert not connection.transport.is_reading()
        connection.resume_writing()
        assert connection.transport.is_reading()


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
