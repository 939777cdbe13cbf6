"""JSON events over plain sessions, and one hub shared with Socket.IO: a raw WebSocket client
and a Socket.IO client in the same room see each other's messages and presence."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import fullduplex
from fullduplex.realtime import Hub, JSONEventConnection, JSONEventServer
from fullduplex.realtime.socketio import AsyncClient, Server, Socket
from fullduplex.transports import Router
from fullduplex.transports.engineio import EngineIOEndpoint
from fullduplex.transports.sockjs import SockJSEndpoint

REPO = Path(__file__).resolve().parents[2]
SHARED_ROOM_CLIENT = Path(__file__).with_name("shared_room_client.js")
SOCKJS_CLIENT = REPO / "src" / "fullduplex" / "transports" / "sockjs" / "client" / "node_modules"


@asynccontextmanager
async def chat() -> AsyncIterator[str]:
    hub = Hub("chat")
    events = JSONEventServer(hub)
    sio = Server()
    room_chat = sio.of("/chat", hub=hub)

    async def join(member: JSONEventConnection | Socket, room: str, nick: str) -> list[str]:
        member.data["nick"] = nick
        await member.join(room, info={"nick": nick})
        return sorted(info["nick"] for info in (await hub.presence(room)).values())

    async def say(member: JSONEventConnection | Socket, room: str, text: Any) -> str:
        await hub.broadcast("said", member.data["nick"], text, to=[room])
        return "sent"

    for name, handler in {"join": join, "say": say}.items():
        events.on(name, handler)
        room_chat.on(name, handler)
    endpoint = EngineIOEndpoint(sio.serve)
    app = Router()
    app.websocket("/events", events.serve)
    app.mount("/socket.io", endpoint)
    app.mount("/sockjs", SockJSEndpoint(events.serve))
    async with fullduplex.serve(app, "127.0.0.1", 0) as server:
        yield f"127.0.0.1:{server.port}"
        await sio.close()
        await endpoint.aclose()


async def test_plain_and_socket_io_clients_share_rooms_presence_and_history() -> None:
    async with chat() as address:
        said: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        sio_client = AsyncClient(f"http://{address}", namespaces=("/chat",))
        sio_client.on("said", lambda *args: said.put_nowait(args), namespace="/chat")
        async with sio_client, fullduplex.connect(f"ws://{address}/events") as ws:
            assert await sio_client.call("join", "lobby", "sio", namespace="/chat") == ["sio"]
            await ws.send(json.dumps({"event": "join", "args": ["lobby", "plain"], "ack": 1}))
            assert json.loads(await ws.recv()) == {"ack": 1, "args": [["plain", "sio"]]}
            await ws.send(json.dumps({"event": "say", "args": ["lobby", "hi from plain"]}))
            sender, text = (await asyncio.wait_for(said.get(), 5))[:2]
            assert (sender, text) == ("plain", "hi from plain")
            echoed = json.loads(await ws.recv())
            assert echoed["event"] == "said" and echoed["args"] == ["plain", "hi from plain"]
            await sio_client.call("say", "lobby", b"\x00\x01", namespace="/chat")
            message = json.loads(await ws.recv())
            assert message["args"][1] == {"$binary": "AAE="}
            assert "offset" in message


async def test_bad_messages_close_the_session() -> None:
    async with chat() as address:
        for bad in ["not json", "[1]", '{"event": 1}', '{"event": "x", "ack": true}', b"\x00"]:
            async with fullduplex.connect(f"ws://{address}/events") as ws:
                await ws.send(bad)
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except fullduplex.ConnectionClosed as closed:
                    assert closed.code in (1003, 1007)
                else:
                    raise AssertionError(f"{bad!r} did not close the session")


async def test_client_cannot_trigger_the_connect_hook() -> None:
    connects: list[str] = []
    events = JSONEventServer()
    events.on("connect", lambda connection: connects.append(connection.id))
    app = Router()
    app.websocket("/events", events.serve)
    async with (
        fullduplex.serve(app, "127.0.0.1", 0) as server,
        fullduplex.connect(f"ws://127.0.0.1:{server.port}/events") as ws,
    ):
        await ws.send(json.dumps({"event": "connect", "args": [], "ack": 1}))
        await ws.send(json.dumps({"event": "unknown", "args": [], "ack": 2}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"ack": 2, "args": []}
    assert len(connects) == 1


@pytest.mark.parametrize("transport", ["websocket", "xhr-streaming", "xhr-polling"])
async def test_sockjs_client_and_socket_io_client_share_a_room(
    require_tool: Callable[[str, str | os.PathLike[str]], str], transport: str
) -> None:
    node = require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_tool("sockjs-client", SOCKJS_CLIENT)
    require_tool("socket.io-client", REPO / "tests" / "node_modules" / "socket.io-client")
    async with chat() as address:
        process = await asyncio.create_subprocess_exec(
            node,
            str(SHARED_ROOM_CLIENT),
            f"http://{address}",
            transport,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 25)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, output.decode(errors="replace")
