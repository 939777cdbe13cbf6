"""fullduplex echo server for the benchmark, on the high-level API (see common.py)."""

from __future__ import annotations

from common import MAX_MESSAGE_SIZE, Stop, run

import fullduplex


async def echo(ws: fullduplex.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def start(port: int, deflate: bool) -> tuple[int, Stop]:
    server = await fullduplex.serve(
        echo,
        "127.0.0.1",
        port,
        max_size=MAX_MESSAGE_SIZE,
        compression="deflate" if deflate else None,
    )

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return server.port, stop


if __name__ == "__main__":
    run(start, __doc__)
