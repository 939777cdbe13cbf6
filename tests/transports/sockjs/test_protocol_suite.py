"""The public SockJS protocol suite (sockjs-protocol 0.3.3 + http-quirks, 69 tests) against
examples/sockjs_test_server.py, started on a free port as a user would start it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SOCKJS_SUITE_DIR = Path(
    os.environ.get("SOCKJS_SUITE_DIR", REPO.parent / "shared" / "tools" / "sockjs")
)
SERVER = REPO / "examples" / "sockjs_test_server.py"
SUITE_TESTS = 69
TIMEOUT_S = 180
# The suite's run and the server's start-up and shutdown.
pytestmark = pytest.mark.timeout_s(TIMEOUT_S + 60)


@pytest.fixture
def test_server() -> Iterator[str]:
    """examples/sockjs_test_server.py on 127.0.0.1, port 0; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, f"the server printed {line!r}"
        yield match.group()
    finally:
        if process.stdout is not None:
            process.stdout.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_server_passes_the_whole_sockjs_protocol_suite(
    require_tool: Callable[[str, str | os.PathLike[str]], str],
    test_server: str,
    tmp_path: Path,
) -> None:
    venv = Path(os.environ.get("SOCKJS_VENV", "/tmp/sockjs-harness-venv"))
    require_tool("sockjs-suite", venv / "bin" / "python")
    run = require_tool("sockjs-suite", SOCKJS_SUITE_DIR / "run.sh")
    result = subprocess.run(
        [run, test_server, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    failing = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert f"{SUITE_TESTS} passed, 0 failed" in result.stdout, (
        failing,
        result.stdout[-2000:],
        (tmp_path / "suite.stderr.txt").read_text()[-4000:] if failing else "",
    )
