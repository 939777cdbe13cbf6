"""Presence over real connections: a socket.io-client process that vanishes without a close
(stopped with SIGSTOP: no FIN, no pong) is gone from the member list as soon as the
heartbeat notices (300 + 200 ms; the test allows 5 s on a loaded machine), not after a
presence expiry (30 s)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from fullduplex.realtime.socketio import AsyncClient

from .support import REPO, example_server

CLIENT = Path(__file__).with_name("vanishing_client.js")


async def test_member_list_is_right_just_after_a_client_vanishes(
    require_tool: Callable[[str, str | os.PathLike[str]], str],
) -> None:
    node = require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_tool("socket.io-client", REPO / "tests" / "node_modules" / "socket.io-client")
    async with example_server() as url, AsyncClient(url) as watcher:
        await watcher.call("join", "room")
        process = await asyncio.create_subprocess_exec(
            node, str(CLIENT), url, "room", stdout=asyncio.subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            vanishing = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
            members = await watcher.call("presence", "room")
            assert members == sorted([watcher.sid(), vanishing])
            process.send_signal(signal.SIGSTOP)
            stopped_at = asyncio.get_running_loop().time()
            # Polled: the member list has no event of its own.
            while vanishing in await watcher.call("presence", "room"):
                assert asyncio.get_running_loop().time() - stopped_at < 5.0
                await asyncio.sleep(0.05)
            assert await watcher.call("presence", "room") == [watcher.sid()]
        finally:
            process.kill()
            await process.wait()
