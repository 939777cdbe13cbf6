"""The real socket.io-client 4.8 (Node) against examples/socketio_test_server.py, in each
transport mode: auth, events, acks, binary, rooms, namespaces, reconnection and recovery
(the checks are in sio_client.js)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .support import CLIENT_TEST_HEARTBEAT, REPO, example_server

CLIENT = Path(__file__).with_name("sio_client.js")
CLIENT_PACKAGE = REPO / "tests" / "node_modules" / "socket.io-client" / "package.json"


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
async def test_socket_io_client_passes_every_check(
    require_tool: Callable[[str, str | os.PathLike[str]], str], mode: str
) -> None:
    node = require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_tool("socket.io-client", CLIENT_PACKAGE)
    async with example_server(*CLIENT_TEST_HEARTBEAT) as url:
        process = await asyncio.create_subprocess_exec(
            node,
            str(CLIENT),
            url,
            mode,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(60):
                output, errors = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    results = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    failed = {r["check"]: r.get("detail") for r in results if not r["ok"]}
    assert not failed, json.dumps(failed, indent=1) + errors.decode(errors="replace")
    assert len(results) == 8, output.decode() + errors.decode(errors="replace")
