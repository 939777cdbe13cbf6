"""The Node ``engine.io-client`` (pinned in tests/package.json) against fullduplex's server.

Three modes, as the client offers them: polling only, WebSocket only, and polling then the
upgrade to WebSocket; in each, text and binary messages (one of 100 kB) come back in order,
some sent before the upgrade, some while it runs and some after (`eio_client.js`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import fullduplex
from fullduplex.transports import Router
from fullduplex.transports.engineio import EngineIOEndpoint, EngineIOSession

from .server import echo

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "eio_client.js"
NODE_MODULES = HERE.parents[1] / "node_modules"


@pytest.mark.parametrize(
    ("mode", "transports"),
    [
        ("polling", ["polling"]),
        ("websocket", ["websocket"]),
        ("upgrade", ["polling", "websocket"]),
    ],
)
async def test_engine_io_client_echoes_text_and_binary(
    require_tool: Callable[[str, str | os.PathLike[str]], str],
    mode: str,
    transports: list[str],
) -> None:
    node = require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_tool("engine.io-client", NODE_MODULES / "engine.io-client" / "package.json")
    seen: list[EngineIOSession] = []

    async def handler(session: EngineIOSession) -> None:
        seen.append(session)
        await echo(session)

    endpoint = EngineIOEndpoint(handler, ping_interval_ms=300, ping_timeout_ms=200)
    app = Router()
    app.mount("/engine.io", endpoint)
    async with fullduplex.serve(app, "127.0.0.1", 0) as server:
        process = await asyncio.create_subprocess_exec(
            node,
            str(CLIENT),
            f"http://127.0.0.1:{server.port}",
            mode,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            output, errors = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert output, errors.decode(errors="replace")
        result = json.loads(output.decode().splitlines()[-1])
        assert result["ok"], result["error"]
        assert result["transports"] == transports
        assert len(seen) == 1
        await asyncio.wait_for(seen[0].wait_closed(), 2)
        assert seen[0].transport == transports[-1]
        assert seen[0].close_code == 1000
        await endpoint.aclose()
        assert not endpoint.sessions


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
async def test_engine_io_client_sees_the_server_close_the_session(
    require_tool: Callable[[str, str | os.PathLike[str]], str], mode: str
) -> None:
    node = require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_tool("engine.io-client", NODE_MODULES / "engine.io-client" / "package.json")
    seen: list[EngineIOSession] = []

    async def closes_on_request(session: EngineIOSession) -> None:
        seen.append(session)
        async for message in session:
            if message == "close-me":
                await session.close(1000, "asked")
                return
            await session.send(message)

    endpoint = EngineIOEndpoint(closes_on_request, ping_interval_ms=300, ping_timeout_ms=200)
    app = Router()
    app.mount("/engine.io", endpoint)
    async with fullduplex.serve(app, "127.0.0.1", 0) as server:
        process = await asyncio.create_subprocess_exec(
            node,
            str(CLIENT),
            f"http://127.0.0.1:{server.port}",
            mode,
            "server-close",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            output, errors = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await endpoint.aclose()
    assert output, errors.decode(errors="replace")
    result = json.loads(output.decode().splitlines()[-1])
    assert result["ok"], result["error"]
    assert result["closeReason"] == "transport close"
    assert (seen[0].close_code, seen[0].close_reason) == (1000, "asked")
