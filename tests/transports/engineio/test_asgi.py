"""`EngineIOEndpoint` under uvicorn, through `fullduplex.asgi.mount` inside Starlette's Mount.

The same proofs as on `fullduplex.serve`: the official engine.io-protocol suite (24 tests) and
the Node engine.io-client in its three modes. Per-message deflate is off in uvicorn, as in
engine.io (see `EngineIOEndpoint`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from fullduplex.asgi import mount
from fullduplex.transports.engineio import EngineIOEndpoint

from ...asgi.uvicorn_server import uvicorn_serving
from .server import echo
from .test_node_client import CLIENT, NODE_MODULES
from .test_suite import NODE_DIR, SOCKETIO_RUNNER

uvicorn = pytest.importorskip("uvicorn", reason="pip install -e '.[test]'")
starlette_applications = pytest.importorskip("starlette.applications")
starlette_routing = pytest.importorskip("starlette.routing")

RequireTool = Callable[[str, str | os.PathLike[str]], str]


@asynccontextmanager
async def under_uvicorn(endpoint: EngineIOEndpoint) -> AsyncIterator[str]:
    """Serve ``endpoint`` at ``/engine.io`` under uvicorn; yield its origin."""
    app = starlette_applications.Starlette(
        routes=[starlette_routing.Mount("/engine.io", app=mount(endpoint))]
    )
    async with uvicorn_serving(app, ws_per_message_deflate=False) as (_, port):
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await endpoint.aclose()


async def run(*command: str, env: dict[str, str] | None = None, timeout: float) -> str:
    """Run ``command``; return its standard output (and error), killing it after ``timeout``."""
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return output.decode(errors="replace")


async def test_engine_io_protocol_suite_passes_all_24_tests_under_uvicorn(
    require_tool: RequireTool, tmp_path: Path
) -> None:
    require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_tool("socketio-suites", NODE_DIR / "suites" / "node_modules" / ".bin" / "mocha")
    endpoint = EngineIOEndpoint(
        echo, ping_interval_ms=300, ping_timeout_ms=200, max_payload_bytes=1_000_000, cors="*"
    )
    async with under_uvicorn(endpoint) as origin:
        env = {**os.environ, "SOCKETIO_ONLY": "engine.io", "SOCKETIO_NODE_DIR": str(NODE_DIR)}
        report = await run(
            "bash", str(SOCKETIO_RUNNER), origin, str(tmp_path), env=env, timeout=320
        )
    results = json.loads((tmp_path / "engine.io-suite.json").read_text())
    assert (results["passed"], results["failed"]) == (24, 0), report


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
async def test_engine_io_client_echoes_under_uvicorn(require_tool: RequireTool, mode: str) -> None:
    node = require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_tool("engine.io-client", NODE_MODULES / "engine.io-client" / "package.json")
    endpoint = EngineIOEndpoint(echo, ping_interval_ms=300, ping_timeout_ms=200)
    async with under_uvicorn(endpoint) as origin:
        output = await run(node, str(CLIENT), origin, mode, timeout=20)
    result = json.loads(output.splitlines()[-1])
    assert result["ok"], output
