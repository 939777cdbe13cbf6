"""The benchmark's Socket.IO server on fullduplex: ``echo`` acknowledges its arguments,
``fanout`` broadcasts ``tick`` with its argument to every connected client.

Usage: python bench/realtime/servers/fullduplex_server.py --port 0   (prints ``ready PORT``)
"""

from __future__ import annotations

import argparse
from typing import Any

import fullduplex
from fullduplex.realtime.socketio import Server, Socket
from fullduplex.transports import Router
from fullduplex.transports.engineio import EngineIOEndpoint

sio = Server()


@sio.on("echo")
async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
    return args


@sio.on("fanout")
async def fanout(socket: Socket, payload: Any) -> None:
    await sio.emit("tick", payload)


async def main(port: int) -> None:
    app = Router()
    endpoint = EngineIOEndpoint(sio.serve)
    app.mount("/socket.io", endpoint)
    # Without permessage-deflate, as the other two servers (and engine.io's default).
    async with fullduplex.serve(app, "127.0.0.1", port, compression=None) as server:
        print(f"ready {server.port}", flush=True)
        try:
            await server.serve_forever()
        finally:
            await sio.close()
            await endpoint.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    fullduplex.run(main(parser.parse_args().port))
