"""Socket.IO mounted as an ASGI application inside Starlette, under real uvicorn: the official
socket.io-protocol suite and the Node socket.io-client checks, as on `fullduplex.serve`."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fullduplex.asgi import mount

from ...asgi.uvicorn_server import uvicorn_serving
from .support import EXAMPLE, SOCKETIO_NODE_DIR, SOCKETIO_RUNNER

uvicorn = pytest.importorskip("uvicorn", reason="pip install -e '.[test]'")
starlette_applications = pytest.importorskip("starlette.applications")
starlette_routing = pytest.importorskip("starlette.routing")

pytestmark = pytest.mark.timeout_s(300)
CLIENT = Path(__file__).with_name("sio_client.js")


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("socketio_test_server_asgi", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def under_uvicorn(**settings: Any) -> AsyncIterator[str]:
    _, endpoints, sio = load_example().build(**settings)
    engine, socketio = endpoints
    app = starlette_applications.Starlette(
        routes=[
            starlette_routing.Mount("/engine.io", app=mount(engine)),
            starlette_routing.Mount("/socket.io", app=mount(socketio)),
        ]
    )
    # Engine.IO without permessage-deflate, as engine.io: under uvicorn that is uvicorn's
    # setting, not the endpoint's (see EngineIOEndpoint).
    async with uvicorn_serving(app, ws_per_message_deflate=False) as (_, port):
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await sio.close()
            for endpoint in endpoints:
                await endpoint.aclose()


async def run(*command: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(100):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode or 0, output.decode(errors="replace")


async def test_socket_io_suite_passes_under_uvicorn(
    require_tool: Callable[[str, str | os.PathLike[str]], str], tmp_path: Path
) -> None:
    require_tool(
        "socketio-suites", SOCKETIO_NODE_DIR / "suites" / "node_modules" / ".bin" / "mocha"
    )
    async with under_uvicorn() as url:
        env = {
            **os.environ,
            "SOCKETIO_NODE_DIR": str(SOCKETIO_NODE_DIR),
            "SOCKETIO_ONLY": "socket.io",
        }
        _, report = await run("bash", str(SOCKETIO_RUNNER), url, str(tmp_path), env=env)
    results = json.loads((tmp_path / "socket.io-suite.json").read_text())
    failed = {test["title"] for test in results["tests"] if test["state"] != "passed"}
    assert not failed, report
    assert results["passed"] + results["failed"] == 32, report


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
async def test_socket_io_client_under_uvicorn(
    require_tool: Callable[[str, str | os.PathLike[str]], str], mode: str
) -> None:
    node = require_tool("node", shutil.which("node") or "/usr/bin/node")
    # The heartbeat is the suites' business; here a loaded machine must not miss it.
    async with under_uvicorn(ping_interval_ms=2000, ping_timeout_ms=10000) as url:
        _, output = await run(node, str(CLIENT), url, mode)
    results = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    failed = {r["check"]: r.get("detail") for r in results if not r["ok"]}
    assert not failed, json.dumps(failed, indent=1)
    assert len(results) == 8, output
