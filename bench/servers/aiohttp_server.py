"""aiohttp echo server for the benchmark (see common.py).

aiohttp negotiates permessage-deflate by default (``compress=True``); the benchmark turns it
off except in the deflate cell.
"""

from __future__ import annotations

from aiohttp import WSMsgType, web
from common import MAX_MESSAGE_SIZE, Stop, run


def make_app(deflate: bool) -> web.Application:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_SIZE, compress=deflate)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    return app


async def start(port: int, deflate: bool) -> tuple[int, Stop]:
    runner = web.AppRunner(make_app(deflate))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner.addresses[0][1], runner.cleanup


if __name__ == "__main__":
    run(start, __doc__)
