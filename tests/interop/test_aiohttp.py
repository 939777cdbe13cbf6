"""Interoperability with aiohttp's WebSocket server (`web.WebSocketResponse`) and client
(`ClientSession.ws_connect`).

aiohttp cannot send a fragmented message, so only fullduplex fragments. With ``autoping`` on,
aiohttp answers pings itself and swallows pongs, so the ping case turns it off: the peer then
answers pings with `pong()` (what autoping does) and sees the pong to its own ping.
aiohttp answers every close frame with 1000 and no reason, and does not expose the reason of
the close frame that answers its own.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .conftest import Case, Interop, Peer


def describe_aiohttp(interop: Interop) -> Peer:
    return interop.peer(
        "aiohttp",
        can_ping=True,
        can_fragment=False,
        close_echo=lambda code, reason: (1000, ""),
    )


async def run_aiohttp_peer(
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, peer: Peer, info: dict[str, str]
) -> None:
    """The echo peer (see conftest), on an aiohttp connection, until it closes."""
    awaited_pong: bytes | None = None
    while True:
        message = await ws.receive()
        if message.type is WSMsgType.BINARY:
            await ws.send_bytes(message.data)
        elif message.type is WSMsgType.TEXT and not message.data.startswith("!"):
            await ws.send_str(message.data)
        elif message.type is WSMsgType.TEXT:
            command, _, argument = message.data.partition(" ")
            if command == "!info":
                await ws.send_str("info " + json.dumps(info))
            elif command == "!close":
                code, _, reason = argument.partition(" ")
                await ws.close(code=int(code), message=reason.encode())
                assert ws.close_code is not None
                peer.close_seen.set_result((ws.close_code, None))
                return
            elif command == "!ping":
                awaited_pong = argument.encode()
                await ws.ping(awaited_pong)
        elif message.type is WSMsgType.PING:
            await ws.pong(message.data)
        elif message.type is WSMsgType.PONG:
            assert message.data == awaited_pong
            await ws.send_str(f"pong {message.data.decode()}")
        elif message.type is WSMsgType.CLOSE:
            # With autoclose, aiohttp has already answered the close frame.
            peer.close_seen.set_result((message.data, message.extra))
        elif message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
            return
        else:
            raise AssertionError(f"aiohttp reported {message}")


async def test_fullduplex_server_talks_to_aiohttp_client(case: Case, interop: Interop) -> None:
    peer = describe_aiohttp(interop)

    async def run_client(url: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url,
                protocols=case.subprotocols,
                compress=15,
                max_msg_size=interop.max_size,
                autoping=case.name != "ping",
                ssl=interop.client_ssl(case) or True,
            ) as ws,
        ):
            compress = ws.compress
            info = {
                "subprotocol": ws.protocol,
                "extensions": f"permessage-deflate, {compress} window bits" if compress else "",
            }
            await run_aiohttp_peer(ws, peer, info)

    async with asyncio.timeout(interop.timeout_s):
        await interop.serve(case, peer, run_client)


async def test_fullduplex_client_talks_to_aiohttp_server(case: Case, interop: Interop) -> None:
    peer = describe_aiohttp(interop)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            protocols=case.subprotocols,
            compress=True,
            max_msg_size=interop.max_size,
            autoping=case.name != "ping",
        )
        await ws.prepare(request)
        info = {
            "subprotocol": ws.ws_protocol,
            "extensions": ws.headers.get("Sec-WebSocket-Extensions", ""),
        }
        await run_aiohttp_peer(ws, peer, info)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        async with asyncio.timeout(interop.timeout_s):
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=interop.server_ssl(case))
            await site.start()
            _, port = runner.addresses[0]
            await interop.connect(case, peer, port)
    finally:
        await runner.cleanup()
