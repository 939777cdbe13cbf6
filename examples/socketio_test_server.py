"""What the Socket.IO and Engine.IO protocol suites expect, served by fullduplex.

The same as the reference server (engine.io and socket.io on Node) on one port:

- ``/engine.io/``: an Engine.IO echo (every message back to its sender);
- ``/socket.io/``: Socket.IO with namespaces ``/`` and ``/custom``, each emitting ``auth`` (the
  client's auth payload) on connect, answering ``message`` with ``message-back`` and
  acknowledging ``message-with-ack`` with its arguments; plus ``join`` / ``leave`` (room, ack)
  and ``to-room`` (room, payload, ack), which broadcasts ``room-message`` to the room, and
  ``presence`` (room, ack: the ids of the sockets in it).
  Namespace ``/recovery`` has the same handlers with connection-state recovery on (the suites
  expect none on ``/`` and ``/custom``: their CONNECT answer must hold only ``sid``).

Settings as the suites hard-code them: ping interval 300 ms, ping timeout 200 ms,
``maxPayload`` 1000000, CORS ``*``, Socket.IO connect timeout 1000 ms.

Usage: python examples/socketio_test_server.py [PORT [--heartbeat INTERVAL_MS TIMEOUT_MS]]
       (127.0.0.1, default port 9700; the heartbeat defaults to the suites' 300 and 200 ms)
Then:  scripts/socketio-suites/run.sh http://127.0.0.1:9700
       (the suites installed once by scripts/install-socketio-suites.sh)
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import fullduplex
from fullduplex.realtime.socketio import Namespace, Recovery, Server, Socket
from fullduplex.transports import Router
from fullduplex.transports.base import Session
from fullduplex.transports.engineio import EngineIOEndpoint

__all__ = ["build", "main"]

SUITE_SETTINGS: dict[str, Any] = {
    "ping_interval_ms": 300,
    "ping_timeout_ms": 200,
    "max_payload_bytes": 1_000_000,
    "cors": "*",
}


async def echo(session: Session) -> None:
    """The Engine.IO suite's server: every message back to its sender."""
    async for message in session:
        await session.send(message)


def add_suite_handlers(namespace: Namespace) -> None:
    """The events the suites (and tests/realtime/socketio's clients) use."""

    @namespace.on("connect")
    async def connect(socket: Socket) -> None:
        await socket.emit("auth", socket.handshake.auth)

    @namespace.on("message")
    async def message(socket: Socket, *args: Any) -> None:
        await socket.emit("message-back", *args)

    @namespace.on("message-with-ack")
    async def message_with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @namespace.on("join")
    async def join(socket: Socket, room: str) -> str:
        await socket.join(room)
        return room

    @namespace.on("leave")
    async def leave(socket: Socket, room: str) -> str:
        await socket.leave(room)
        return room

    @namespace.on("presence")
    async def presence(socket: Socket, room: str) -> list[str]:
        return sorted(await namespace.presence(room))

    @namespace.on("to-room")
    async def to_room(socket: Socket, room: str, payload: Any) -> str:
        await namespace.to(room).emit("room-message", payload)
        return room


def build(**settings: Any) -> tuple[Router, list[EngineIOEndpoint], Server]:
    """The router, its two Engine.IO endpoints (to close on shutdown) and the Socket.IO server.

    ``settings`` override `SUITE_SETTINGS` (e.g. a longer heartbeat for client tests on a
    loaded machine).
    """
    settings = {**SUITE_SETTINGS, **settings}
    sio = Server(connect_timeout_s=1.0)
    add_suite_handlers(sio.of("/"))
    add_suite_handlers(sio.of("/custom"))
    add_suite_handlers(sio.of("/recovery", recovery=Recovery(max_disconnection_s=30)))
    engine = EngineIOEndpoint(echo, **settings)
    socketio = EngineIOEndpoint(sio.serve, **settings)
    app = Router()
    app.mount("/engine.io", engine)
    app.mount("/socket.io", socketio)
    return app, [engine, socketio], sio


async def main(port: int, **settings: Any) -> None:
    """Serve until interrupted."""
    app, endpoints, sio = build(**settings)
    # The Engine.IO endpoints turn permessage-deflate off on their mounts, as the reference
    # server (engine.io's default perMessageDeflate: false).
    async with fullduplex.serve(app, "127.0.0.1", port) as server:
        print(f"Engine.IO and Socket.IO on http://127.0.0.1:{server.port}/", flush=True)
        try:
            await server.serve_forever()
        finally:
            await sio.close()
            for endpoint in endpoints:
                await endpoint.aclose()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        port = int(sys.argv[1]) if len(sys.argv) > 1 else 9700
        # --heartbeat INTERVAL_MS TIMEOUT_MS: another heartbeat than the suites' 300/200 ms.
        heartbeat = {}
        if "--heartbeat" in sys.argv:
            at = sys.argv.index("--heartbeat")
            heartbeat = {
                "ping_interval_ms": int(sys.argv[at + 1]),
                "ping_timeout_ms": int(sys.argv[at + 2]),
            }
        fullduplex.run(main(port, **heartbeat))
