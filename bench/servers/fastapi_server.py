"""FastAPI echo route under uvicorn (uvloop, httptools), for bench/asgi.py.

``--ws`` picks uvicorn's WebSocket implementation: ``fullduplex`` (fullduplex.asgi),
``websockets-sansio`` or ``wsproto``. Like the servers of bench/run.py (see common.py) it
takes ``--port PORT`` (0: a free port), prints ``ready PORT LOOP`` once it listens, and stops
on SIGTERM (uvicorn's own handler). Everything else is uvicorn's defaults, but for the largest
message, 16 MiB as in the other servers.
"""

from __future__ import annotations

import argparse
import asyncio
import socket

import uvicorn
import uvloop
from common import MAX_MESSAGE_SIZE
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

IMPLEMENTATIONS = {
    "fullduplex": "fullduplex.asgi:WebSocketProtocol",
    "websockets-sansio": "websockets-sansio",
    "wsproto": "wsproto",
}

app = FastAPI()


@app.websocket("/")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


async def serve(port: int, ws: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        app,
        http="httptools",
        ws=IMPLEMENTATIONS[ws],
        ws_max_size=MAX_MESSAGE_SIZE,
        lifespan="off",
        log_level="warning",
        backlog=4096,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    print("ready", listener.getsockname()[1], "uvloop", flush=True)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ws", choices=list(IMPLEMENTATIONS), default="fullduplex")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.ws))


if __name__ == "__main__":
    main()
