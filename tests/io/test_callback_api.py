"""The connection's public flow-control API for receivers that do without `recv` (sessions
over the callback API): `can_send_now`, `pause_reading` / `resume_reading`, `is_closed` and
the close callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fullduplex import ServerConnection, connect, serve

from .peers import MASK, TEXT, RawPeer, encode_frame


async def test_can_send_now_turns_false_once_the_peer_stops_reading() -> None:
    outcome: list[tuple[bool, bool]] = []

    async def flood(ws: ServerConnection) -> None:
        before = ws.can_send_now()
        # The raw peer reads nothing: the socket buffers fill, then the write buffer does.
        while ws.can_send_now():
            ws.send_nowait(b"x" * 65536)
            await asyncio.sleep(0)
        outcome.append((before, ws.can_send_now()))

    async with serve(flood, "127.0.0.1", 0, write_limit=65536, compression=None) as server:
        peer = await RawPeer.connected(server.port, rcvbuf=4096)
        while not outcome:
            await asyncio.sleep(0.01)
        peer.writer.transport.abort()
    assert outcome == [(True, False)]


async def test_can_send_now_is_false_between_the_fragments_of_a_message() -> None:
    seen: list[bool] = []

    async def fragmented(ws: ServerConnection) -> None:
        async def fragments() -> AsyncIterator[str]:
            yield "one"
            yield "two"
            seen.append(ws.can_send_now())  # "one" is out, "two" waits for its successor
            yield "three"

        await ws.send(fragments())
        seen.append(ws.can_send_now())

    async with (
        serve(fragmented, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        assert await ws.recv() == "onetwothree"
    assert seen == [False, True]


async def test_a_paused_reader_receives_once_it_resumes() -> None:
    async with serve(_callback_echo, "127.0.0.1", 0, compression=None) as server:
        peer = await RawPeer.connected(server.port)
        connection = next(iter(server.connections))
        assert connection.transport is not None
        connection.pause_reading()
        assert not connection.transport.is_reading()
        # Writing pausing and resuming does not undo the application's pause.
        connection.pause_writing()
        connection.resume_writing()
        assert not connection.transport.is_reading()
        peer.write(encode_frame(TEXT, b"held", mask=MASK))
        connection.resume_reading()
        assert connection.transport.is_reading()
        assert (await peer.read_frame()).payload == b"held"
        await peer.close()


async def test_resume_reading_waits_for_the_write_buffer_of_a_callback_connection() -> None:
    async with serve(_callback_echo, "127.0.0.1", 0) as server:
        peer = await RawPeer.connected(server.port)
        connection = next(iter(server.connections))
        assert connection.transport is not None
        connection.pause_reading()
        connection.pause_writing()
        connection.resume_reading()
        assert not connection.transport.is_reading()
        connection.resume_writing()
        assert connection.transport.is_reading()
        await peer.close()


async def test_close_callbacks_run_once_the_connection_is_closed() -> None:
    calls: list[str] = []
    closed = asyncio.Event()

    def kept(_: object) -> None:
        calls.append("kept")
        closed.set()

    def removed(_: object) -> None:
        calls.append("removed")

    async def watched(ws: ServerConnection) -> None:
        ws.add_close_callback(kept)
        ws.add_close_callback(removed)
        ws.remove_close_callback(removed)
        assert not ws.is_closed
        await ws.wait_closed()
        assert ws.is_closed

    async with (
        serve(watched, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        await ws.close()
        await asyncio.wait_for(closed.wait(), 5)
    assert calls == ["kept"]


async def _callback_echo(ws: ServerConnection) -> None:
    ws.on_message(ws.send_nowait)
    await ws.wait_closed()
