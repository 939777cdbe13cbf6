"""Write batching: the first send a connection makes in a loop turn is written at once, even
outside its own reads (each recipient of a broadcast), and what follows in the same turn goes
out together at the turn's end.

The observable is honest and needs no clock: the peer is a blocking socket read on the event
loop's own thread, before the sending coroutine yields. A write deferred to the end of the
turn cannot have happened then, so the read only returns if the write was made at once (else
it fails after its bound, with the loop blocked)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from fullduplex import ServerConnection, serve

from .peers import blocking_client, read_now

Handler = Callable[[ServerConnection], Awaitable[None]]


async def waits_in_recv(ws: ServerConnection) -> None:
    async for _ in ws:
        pass


async def only_sent_to(ws: ServerConnection) -> None:
    await ws.wait_closed()


async def waits_with_a_callback(ws: ServerConnection) -> None:
    ws.on_message(lambda message: None)
    await ws.wait_closed()


def nothing_to_read(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return True


@asynccontextmanager
async def connections(
    handler: Handler, count: int
) -> AsyncIterator[list[tuple[ServerConnection, socket.socket]]]:
    """Yield ``count`` pairs of (server's connection, blocking client socket)."""
    accepted: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def hold(ws: ServerConnection) -> None:
        accepted.put_nowait(ws)
        await handler(ws)

    async with serve(hold, "127.0.0.1", 0, compression=None) as server:
        clients = [await blocking_client(server.port) for _ in range(count)]
        try:
            yield [(await accepted.get(), sock) for sock in clients]
        finally:
            for sock in clients:
                sock.close()


@pytest.mark.parametrize("handler", [waits_in_recv, only_sent_to, waits_with_a_callback])
async def test_sends_from_another_task_are_written_at_once_in_every_turn(
    handler: Handler,
) -> None:
    async with connections(handler, 3) as pairs:
        for turn in range(4):
            for ws, _ in pairs:
                ws.send_nowait(f"broadcast {turn}")
            for _, sock in pairs:
                assert read_now(sock) == b"broadcast %d" % turn
            await asyncio.sleep(0)  # the next broadcast comes in a later loop turn


async def test_sends_that_follow_in_the_same_turn_go_out_at_its_end() -> None:
    async with connections(waits_in_recv, 1) as [(ws, sock)]:
        ws.send_nowait("first")
        assert read_now(sock) == b"first"
        ws.send_nowait("second")
        ws.send_nowait("third")
        assert nothing_to_read(sock)  # coalesced, not written yet
        await asyncio.sleep(0)
        assert read_now(sock) == b"second"
        assert read_now(sock) == b"third"
        await asyncio.sleep(0)
        ws.send_nowait("fourth")  # a new turn: at once again
        assert read_now(sock) == b"fourth"
