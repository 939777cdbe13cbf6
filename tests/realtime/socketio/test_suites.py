"""The official engine.io-protocol (24 tests) and socket.io-protocol (32 tests) suites against
examples/socketio_test_server.py, run with ``../shared/tools/socketio/run.sh``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .support import SOCKETIO_NODE_DIR, SOCKETIO_TOOLS, example_server

TIMEOUT_S = 400
pytestmark = pytest.mark.timeout_s(TIMEOUT_S)


async def test_both_protocol_suites_pass_in_full(
    require_tool: Callable[[str, str | os.PathLike[str]], str], tmp_path: Path
) -> None:
    require_tool("node", shutil.which("node") or "/usr/bin/node")
    run_sh = require_tool("socketio-tools", SOCKETIO_TOOLS / "run.sh")
    require_tool(
        "socketio-suites", SOCKETIO_NODE_DIR / "suites" / "node_modules" / ".bin" / "mocha"
    )
    async with example_server() as url:
        process = await asyncio.create_subprocess_exec(
            "bash",
            run_sh,
            url,
            str(tmp_path),
            env={**os.environ, "SOCKETIO_NODE_DIR": str(SOCKETIO_NODE_DIR)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(330):
                output, _ = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    report = output.decode(errors="replace")
    counts = {}
    for suite in ("engine.io", "socket.io"):
        results = json.loads((tmp_path / f"{suite}-suite.json").read_text())
        counts[suite] = (results["passed"], results["failed"])
    assert counts == {"engine.io": (24, 0), "socket.io": (32, 0)}, report
