"""Interoperability with the `websockets` library (its asyncio implementation), in both roles."""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

import fullduplex
from fullduplex.protocol.connection import DEFAULT_MAX_MESSAGE_SIZE as DEFAULT_MAX_SIZE

if TYPE_CHECKING:
    from .conftest import Case, Interop, Peer


def describe_websockets(interop: Interop) -> Peer:
    return interop.peer(
        "websockets",
        can_ping=True,
        can_fragment=True,
        close_echo=lambda code, reason: (code, reason),
    )


async def run_websockets_peer(ws: ClientConnection | ServerConnection, peer: Peer) -> None:
    """The echo peer (see conftest), on a websockets connection, until it closes."""
    try:
        async for message in ws:
            if not isinstance(message, str) or not message.startswith("!"):
                await ws.send(message)
                continue
            command, _, argument = message.partition(" ")
            if command == "!info":
                assert ws.response is not None
                info = {
                    "subprotocol": ws.subprotocol,
                    "extensions": ws.response.headers.get("Sec-WebSocket-Extensions"),
                }
                await ws.send("info " + json.dumps(info))
            elif command == "!close":
                code, _, reason = argument.partition(" ")
                await ws.close(int(code), reason)
            elif command == "!ping":
                pong_received = await ws.ping(argument)
                await pong_received
                await ws.send(f"pong {argument}")
            elif command == "!fragments":
                await ws.send(["peer-", "frag", "mented"])
                await ws.send([b"\xff", b"\xfe"])
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    assert ws.close_code is not None
    peer.close_seen.set_result((ws.close_code, ws.close_reason))


async def test_fullduplex_server_talks_to_websockets_client(case: Case, interop: Interop) -> None:
    peer = describe_websockets(interop)

    async def run_client(url: str) -> None:
        async with connect(
            url,
            subprotocols=list(case.subprotocols) or None,
            ssl=interop.client_ssl(case),
            max_size=interop.max_size,
        ) as ws:
            await run_websockets_peer(ws, peer)

    async with asyncio.timeout(interop.timeout_s):
        await interop.serve(case, peer, run_client)


async def test_fullduplex_client_talks_to_websockets_server(case: Case, interop: Interop) -> None:
    peer = describe_websockets(interop)

    async def handler(ws: ServerConnection) -> None:
        await run_websockets_peer(ws, peer)

    async with (
        asyncio.timeout(interop.timeout_s),
        serve(
            handler,
            "127.0.0.1",
            0,
            subprotocols=list(case.subprotocols) or None,
            ssl=interop.server_ssl(case),
            max_size=interop.max_size,
        ) as server,
    ):
        await interop.connect(case, peer, server.sockets[0].getsockname()[1])


async def test_fullduplex_server_accepts_compressed_message_of_max_size(interop: Interop) -> None:
    message = os.urandom(DEFAULT_MAX_SIZE)

    async def handler(ws: fullduplex.ServerConnection) -> None:
        await ws.send(str(len(await ws.recv())))

    async with (
        asyncio.timeout(interop.timeout_s),
        fullduplex.serve(handler, "127.0.0.1", 0, max_size=DEFAULT_MAX_SIZE) as server,
        connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws,
    ):
        await ws.send(message)
        assert await ws.recv() == str(DEFAULT_MAX_SIZE)


async def test_fullduplex_client_accepts_compressed_message_of_max_size(interop: Interop) -> None:
    message = os.urandom(DEFAULT_MAX_SIZE)

    async def handler(ws: ServerConnection) -> None:
        await ws.send(message)
        await ws.wait_closed()

    async with (
        asyncio.timeout(interop.timeout_s),
        serve(handler, "127.0.0.1", 0) as server,
        fullduplex.connect(
            f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/", max_size=DEFAULT_MAX_SIZE
        ) as ws,
    ):
        assert ws.protocol.extensions  # the server deflates
        assert await ws.recv() == message
