"""The benchmark's Socket.IO server on python-socketio, under uvicorn with uvloop and
httptools: ``echo`` acknowledges its arguments, ``fanout`` broadcasts ``tick`` to everyone.

Usage: python bench/realtime/servers/python_socketio_server.py --port 0   (prints ``ready PORT``)
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

import socketio
import uvicorn

sio = socketio.AsyncServer(async_mode="asgi")


@sio.on("echo")
async def echo(sid: str, *args: Any) -> tuple[Any, ...]:
    return args  # a tuple is sent back as the ack's arguments


@sio.on("fanout")
async def fanout(sid: str, payload: Any) -> None:
    await sio.emit("tick", payload)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    # Bind and listen here, so that the port is known (and connections queue) before uvicorn runs.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    config = uvicorn.Config(
        socketio.ASGIApp(sio),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        backlog=4096,
    )
    print(f"ready {listener.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
