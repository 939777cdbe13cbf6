"""websockets echo server for the benchmark, on its asyncio API (see common.py)."""

from __future__ import annotations

from common import MAX_MESSAGE_SIZE, Stop, run
from websockets.asyncio.server import ServerConnection, serve


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def start(port: int, deflate: bool) -> tuple[int, Stop]:
    server = await serve(
        echo,
        "127.0.0.1",
        port,
        max_size=MAX_MESSAGE_SIZE,
        compression="deflate" if deflate else None,
    )

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return server.sockets[0].getsockname()[1], stop


if __name__ == "__main__":
    run(start, __doc__)
