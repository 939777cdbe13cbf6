"""RFC 6455 / RFC 7692 conformance: the whole Autobahn|Testsuite, as a server and as a client.

shared/tools/autobahn/run.sh (or $AUTOBAHN_DIR/run.sh) runs with AUTOBAHN_STRICT=1 against
tests/autobahn/echo_server.py and against tests/autobahn/client.py, and each test requires
every case of its mode to pass: no FAILED, no UNIMPLEMENTED, and a clean closing handshake.
The two runs go on at the same time: each spends most of its time waiting on the other side
of a connection, so together they take little longer than one. Reports go to
build/autobahn/{server,client}/ (open index.html there); the two summaries are also copied to
build/autobahn/{server,client}-summary.md.

FULLDUPLEX_AUTOBAHN_QUICK=1 runs the quick preset (no 9.*, 12.*, 13.*: seconds instead of
minutes) while developing.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
AUTOBAHN_DIR = Path(os.environ.get("AUTOBAHN_DIR", REPO.parent / "shared" / "tools" / "autobahn"))
WSTEST = Path(os.environ.get("AUTOBAHN_PREFIX", "/opt/autobahn")) / "bin" / "wstest"
REPORTS = REPO / "build" / "autobahn"
IS_QUICK = os.environ.get("FULLDUPLEX_AUTOBAHN_QUICK") == "1"
FULL_SUITE_CASES = 517
QUICK_SUITE_CASES = 247
# A full run takes about 10 minutes on an idle machine; past this, something hangs.
RUN_TIMEOUT_S = 2400

ALLOWED_BEHAVIOR = {"OK", "NON-STRICT", "INFORMATIONAL"}
ALLOWED_BEHAVIOR_CLOSE = {"OK", "INFORMATIONAL"}

RequireTool = Callable[..., str]


def agent_name() -> str:
    return f"fullduplex-{importlib.metadata.version('fullduplex')}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process started with start_new_session=True, and everything it started."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start(command: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, its output going to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass
class SuiteRun:
    """One run.sh, in server or client mode, going on in the background."""

    mode: str
    outdir: Path
    process: subprocess.Popen[bytes]

    def wait(self) -> tuple[int, str]:
        """Wait for run.sh to finish; return its exit status and its output."""
        try:
            status = self.process.wait(timeout=RUN_TIMEOUT_S + 120)
        except subprocess.TimeoutExpired:
            stop(self.process)
            status = self.process.returncode
        return status, (self.outdir / "run.log").read_text(errors="replace")


def start_suite(mode: str, arguments: list[str], **env: str) -> SuiteRun:
    outdir = REPORTS / mode
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    command = [str(AUTOBAHN_DIR / "run.sh"), mode, *arguments]
    process = start(command, outdir / "run.log", **env)
    return SuiteRun(mode, outdir, process)


def start_echo_server(log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start tests/autobahn/echo_server.py; return its URL once it listens, and its process."""
    port = free_port()
    echo_server = REPO / "tests" / "autobahn" / "echo_server.py"
    server = start([sys.executable, str(echo_server), str(port)], log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"ws://127.0.0.1:{port}", server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                stop(server)
                pytest.fail(f"echo_server.py did not start listening:\n{log.read_text()}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def autobahn_runs(require_tool: RequireTool) -> Iterator[dict[str, SuiteRun]]:
    """Both runs of the suite, started together; the echo server lives as long as they do."""
    require_tool("wstest", WSTEST)
    require_tool("run.sh", AUTOBAHN_DIR / "run.sh")
    REPORTS.mkdir(parents=True, exist_ok=True)
    env = {"AUTOBAHN_STRICT": "1", "AUTOBAHN_TIMEOUT": str(RUN_TIMEOUT_S), "AUTOBAHN_ALLOW": ""}
    env |= {"AUTOBAHN_CASES": "*", "AUTOBAHN_EXCLUDE": "", "AUTOBAHN_QUICK": str(int(IS_QUICK))}
    agent = agent_name()
    with contextlib.ExitStack() as cleanup:
        url, server = start_echo_server(REPORTS / "echo_server.log")
        cleanup.callback(stop, server)
        client = [sys.executable, str(REPO / "tests" / "autobahn" / "client.py")]
        runs = {
            "server": start_suite("server", [url, str(REPORTS / "server"), agent], **env),
            "client": start_suite(
                "client",
                [str(REPORTS / "client"), agent, "--", *client],
                AUTOBAHN_PORT=str(free_port()),
                **env,
            ),
        }
        for run in runs.values():
            cleanup.callback(stop, run.process)
        yield runs
        if server.poll() is not None:
            log = (REPORTS / "echo_server.log").read_text(errors="replace")
            pytest.fail(f"echo_server.py died during the run:\n{log}")


def check_report(run: SuiteRun) -> None:
    """Assert that run.sh passed and that every case of its index.json is acceptable."""
    status, output = run.wait()
    summary = run.outdir / "summary.md"
    if summary.exists():
        shutil.copyfile(summary, REPORTS / f"{run.mode}-summary.md")
        print(f"\nAutobahn|Testsuite, fullduplex as the {run.mode} ({run.outdir}):\n")
        print(summary.read_text())
    details = f"see {run.outdir}/index.html; run.sh said:\n{output[-3000:]}"
    index = run.outdir / "index.json"
    assert index.exists(), f"run.sh exited with {status} and wrote no report; {details}"
    cases = json.loads(index.read_text())[agent_name()]
    bad = {
        case_id: f"{result['behavior']}/{result['behaviorClose']}"
        for case_id, result in cases.items()
        if result["behavior"] not in ALLOWED_BEHAVIOR
        or result["behaviorClose"] not in ALLOWED_BEHAVIOR_CLOSE
    }
    assert not bad, f"{len(bad)} cases failed (behavior/behaviorClose): {bad}; {details}"
    expected = QUICK_SUITE_CASES if IS_QUICK else FULL_SUITE_CASES
    assert len(cases) == expected, f"{len(cases)} cases ran instead of {expected}; {details}"
    assert status == 0, f"run.sh exited with {status}; {details}"


def test_server_passes_every_autobahn_case(
    autobahn_runs: dict[str, SuiteRun], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        check_report(autobahn_runs["server"])


def test_client_passes_every_autobahn_case(
    autobahn_runs: dict[str, SuiteRun], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        check_report(autobahn_runs["client"])
