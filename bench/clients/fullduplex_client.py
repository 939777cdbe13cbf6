"""fullduplex's client in the benchmark (cell h), on the high-level API (see common.py)."""

from __future__ import annotations

from common import MAX_MESSAGE_SIZE, Library, Stats, run

import fullduplex


async def open_connection(url: str) -> fullduplex.ClientConnection:
    return await fullduplex.connect(url, max_size=MAX_MESSAGE_SIZE, compression=None)


async def pump(ws: fullduplex.ClientConnection, payload: str, pipeline: int, stats: Stats) -> None:
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


async def close(ws: fullduplex.ClientConnection) -> None:
    await ws.close()


if __name__ == "__main__":
    run(Library("fullduplex", open_connection, pump, close))
