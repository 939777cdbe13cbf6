"""aiohttp's client in the benchmark (cell h) (see common.py).

Each connection has its own session, so that aiohttp's connection pool limit (100 per
session) does not cap the number of connections; aiohttp's client offers no compression by
default.
"""

from __future__ import annotations

import aiohttp
from common import MAX_MESSAGE_SIZE, Library, Stats, run

Connection = tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]


async def open_connection(url: str) -> Connection:
    session = aiohttp.ClientSession()
    try:
        return session, await session.ws_connect(url, max_msg_size=MAX_MESSAGE_SIZE)
    except BaseException:
        await session.close()
        raise


async def pump(connection: Connection, payload: str, pipeline: int, stats: Stats) -> None:
    _, ws = connection
    for _ in range(pipeline):
        await ws.send_str(payload)
    in_flight = pipeline
    async for message in ws:
        if message.type is not aiohttp.WSMsgType.TEXT or message.data != payload:
            stats.error(f"echo differs from what was sent: {message.type}")
        stats.received += 1
        in_flight -= 1
        if not stats.stopping.is_set():
            await ws.send_str(payload)
            in_flight += 1
        elif in_flight == 0:
            return


async def close(connection: Connection) -> None:
    session, ws = connection
    await ws.close()
    await session.close()


if __name__ == "__main__":
    run(Library("aiohttp", open_connection, pump, close))
