"""Start examples/socketio_test_server.py as a process on a free port, and stop it by its PID."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "socketio_test_server.py"
# The protocol suites' runner; scripts/install-socketio-suites.sh installs the suites (CI
# installs them with shared/tools/socketio/setup.sh beside the repository: the same layout).
SOCKETIO_RUNNER = REPO / "scripts" / "socketio-suites" / "run.sh"
SOCKETIO_NODE_DIR = Path(os.environ.get("SOCKETIO_NODE_DIR", "/tmp/socketio-node"))

__all__ = [
    "REPO",
    "EXAMPLE",
    "SOCKETIO_RUNNER",
    "SOCKETIO_NODE_DIR",
    "CLIENT_TEST_HEARTBEAT",
    "example_server",
]


# The client tests check Socket.IO, not the heartbeat (the suites do): a heartbeat that a
# loaded machine cannot miss keeps them about what they test.
CLIENT_TEST_HEARTBEAT = ("--heartbeat", "2000", "10000")


@contextlib.asynccontextmanager
async def example_server(*options: str) -> AsyncIterator[str]:
    """Run the example on port 0 with ``options``; yields its URL (``http://127.0.0.1:PORT``)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "0",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(15):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, f"the example did not start: {line!r}"
        yield match.group(0)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
