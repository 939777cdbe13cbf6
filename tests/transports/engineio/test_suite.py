"""The official engine.io-protocol test suite (24 tests) against fullduplex's Engine.IO echo.

The suite is installed by ``scripts/install-socketio-suites.sh`` into ``$SOCKETIO_NODE_DIR``
(default ``/tmp/socketio-node``) and run by ``scripts/socketio-suites/run.sh``; the server is
`server.suite_app`, with the settings the suite hard-codes. Every one of the 24 tests must pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import fullduplex

from .server import suite_app

REPO = Path(__file__).resolve().parents[3]
SOCKETIO_RUNNER = REPO / "scripts" / "socketio-suites" / "run.sh"
NODE_DIR = Path(os.environ.get("SOCKETIO_NODE_DIR", "/tmp/socketio-node"))


async def test_engine_io_protocol_suite_passes_all_24_tests(
    require_tool: Callable[[str, str | os.PathLike[str]], str], tmp_path: Path
) -> None:
    require_tool("node", shutil.which("node") or "/usr/bin/node")
    require_tool("socketio-suites", NODE_DIR / "suites" / "node_modules" / ".bin" / "mocha")
    app, endpoint = suite_app()
    async with fullduplex.serve(app, "127.0.0.1", 0) as server:
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(SOCKETIO_RUNNER),
            f"http://127.0.0.1:{server.port}",
            str(tmp_path),
            env={**os.environ, "SOCKETIO_ONLY": "engine.io", "SOCKETIO_NODE_DIR": str(NODE_DIR)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 320)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await endpoint.aclose()
    report = output.decode(errors="replace")
    results = json.loads((tmp_path / "engine.io-suite.json").read_text())
    failing = [
        test["title"] + ": " + str(test["error"])
        for test in results["tests"]
        if test["state"] != "passed"
    ]
    assert not failing, report
    assert (results["passed"], results["failed"]) == (24, 0), report
    assert report.rstrip().endswith("24 passed, 0 failed"), report
