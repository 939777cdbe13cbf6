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
HOW_TO_INSTALL = f"{SOCKETIO_TOOLS / 'setup.sh'} (installs the suites into {SOCKETIO_NODE_DIR})"


def require_suites() -> None:
    """Skip without the suites (with the command that installs them); fail under CI=true."""
    mocha = SOCKETIO_NODE_DIR / "suites" / "node_modules" / ".bin" / "mocha"
    if (SOCKETIO_TOOLS / "run.sh").exists() and mocha.exists():
        return
    message = f"the socket.io protocol suites are not installed; run {HOW_TO_INSTALL}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


async def test_both_protocol_suites_pass_in_full(
    require_tool: Callable[[str, str | os.PathLike[str]], str], tmp_path: Path
) -> None:
    require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_suites()
    async with example_server() as url:
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(SOCKETIO_TOOLS / "run.sh"),
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
