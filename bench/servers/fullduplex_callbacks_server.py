"""fullduplex echo server for the benchmark, on the callback API (see common.py): each
message is answered by a synchronous callback inside the read that brought it."""

from __future__ import annotations

from common import MAX_MESSAGE_SIZE, Stop, run

import fullduplex


async def echo(ws: fullduplex.ServerConnection) -> None:
    ws.on_message(ws.send_nowait)
    await ws.wait_closed()


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
