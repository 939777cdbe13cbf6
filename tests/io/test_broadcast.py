"""`broadcast`: one message to many connections, framed once for the plain ones; those
closing are skipped, those that cannot take it now are returned."""

from __future__ import annotations

import asyncio

import pytest

from fullduplex import ServerConnection, broadcast, connect, serve

from .peers import RawPeer, blocking_client, read_now


async def test_broadcast_reaches_plain_and_compressing_connections_and_skips_closed_ones() -> None:
    accepted: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def hold(ws: ServerConnection) -> None:
        accepted.put_nowait(ws)
        await ws.wait_closed()

    options = dict(compression="deflate", compression_threshold=0)
    async with serve(hold, "127.0.0.1", 0, **options) as server:
        plain = [await blocking_client(server.port) for _ in range(2)]
        plain_connections = [await accepted.get() for _ in plain]
        async with connect(f"ws://127.0.0.1:{server.port}/", compression="deflate") as client:
            compressing = await accepted.get()
            assert compressing.protocol.extensions and not compressing.protocol.sends_plain_frames
            closing_peer = await RawPeer.connected(server.port)
            closing = await accepted.get()
            closing.fail()  # its close frame is sent: nothing more may be
            try:
                recipients = [plain_connections[0], closing, compressing, plain_connections[1]]
                assert broadcast(recipients, "to all") == []
                for sock in plain:  # written at once, before this coroutine yields
                    assert read_now(sock) == b"to all"
                assert await client.recv() == "to all"
                assert broadcast(recipients, b"\x00\x01") == []
                assert [read_now(sock) for sock in plain] == [b"\x00\x01"] * 2
                assert await client.recv() == b"\x00\x01"
            finally:
                await closing_peer.close()
                for sock in plain:
                    sock.close()


async def test_broadcast_returns_the_connections_that_cannot_take_it_now() -> None:
    accepted: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def hold(ws: ServerConnection) -> None:
        accepted.put_nowait(ws)
        await ws.wait_closed()

    options = dict(compression=None, write_limit=16 * 1024, close_timeout=0.5)
    async with serve(hold, "127.0.0.1", 0, **options) as server:
        stalled_peer = await RawPeer.connected(server.port, rcvbuf=4096)  # never reads
        stalled = await accepted.get()
        reader = await blocking_client(server.port)
        reading = await accepted.get()
        try:
            while stalled.can_send_now():  # bounded: the peer reads nothing, the buffer fills
                stalled.send_nowait(b"x" * 60_000)
                await asyncio.sleep(0)
            assert broadcast([stalled, reading], "news") == [stalled]
            assert read_now(reader) == b"news"
        finally:
            stalled_peer.writer.transport.abort()
            reader.close()


async def test_broadcast_refuses_what_is_neither_str_nor_bytes() -> None:
    with pytest.raises(TypeError):
        broadcast([], bytearray(b"no"))  # type: ignore[arg-type]
