"""Echo endpoint tested by Autobahn|Testsuite's fuzzingclient: Starlette under uvicorn, whose
WebSocket implementation is fullduplex.asgi.WebSocketProtocol.

Usage: python tests/asgi/autobahn_echo_app.py PORT

Echoes text as text and binary as binary on ws://127.0.0.1:PORT/, with permessage-deflate
(uvicorn's default) and a 32 MiB size limit, since cases 9.* send messages of up to 16 MiB.
Keepalive pings are off: a case waits on wstest's side, not on ours. Prints whether the
compiled extension (fullduplex.protocol._speedups) is in use, as tests/autobahn/echo_server.py does.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from fullduplex.asgi import WebSocketProtocol
from fullduplex.protocol import _compiled


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[WebSocketRoute("/", echo)])


def main(port: int) -> None:
    speedups = _compiled.apply_mask.__module__ == "fullduplex.protocol._speedups"
    print(f"fullduplex.protocol._speedups in use: {speedups}", flush=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        ws=WebSocketProtocol,
        ws_max_size=2**25,
        ws_ping_interval=None,
        lifespan="off",
        log_level="warning",
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
