"""websockets' client in the benchmark (cell h), on its asyncio API (see common.py)."""

from __future__ import annotations

from common import MAX_MESSAGE_SIZE, Library, Stats, run
from websockets.asyncio.client import ClientConnection, connect


async def open_connection(url: str) -> ClientConnection:
    return await connect(url, max_size=MAX_MESSAGE_SIZE, compression=None)


async def pump(ws: ClientConnection, payload: str, pipeline: int, stats: Stats) -> None:
    for _ in range(pipeline):
        await ws.send(payload)
    in_flight = pipeline
    async for message in ws:
        if message != payload:
            stats.error("echo differs from what was sent")
        stats.received += 1
        in_flight -= 1
        if not stats.stopping.is_set():
            await ws.send(payload)
            in_flight += 1
        elif in_flight == 0:
            return


async def close(ws: ClientConnection) -> None:
    await ws.close()


if __name__ == "__main__":
    run(Library("websockets", open_connection, pump, close))
