"""RFC 6455 / RFC 7692 conformance: the whole Autobahn|Testsuite, as a server and as a client.

Each test runs shared/tools/autobahn/run.sh (or $AUTOBAHN_DIR/run.sh) with AUTOBAHN_STRICT=1
against tests/autobahn/echo_server.py or tests/autobahn/client.py, and requires every case
to pass: no FAILED, no UNIMPLEMENTED, and a clean closing handshake. Reports go to
build/autobahn/{server,client}/ (open index.html there); the two summaries are also copied to
build/autobahn/{server,client}-summary.md.

FULLDUPLEX_AUTOBAHN_QUICK=1 runs the quick preset (no 9.*, 12.*, 13.*: seconds instead of
minutes) while developing.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
# A full run of a mode takes about 10 minutes; past this, something hangs.
RUN_TIMEOUT_S = 1500

ALLOWED_BEHAVIOR = {"OK", "NON-STRICT", "INFORMATIONAL"}
ALLOWED_BEHAVIOR_CLOSE = {"OK", "INFORMATIONAL"}

RequireTool = Callable[..., str]


def agent_name() -> str:
    return f"fullduplex-{importlib.metadata.version('fullduplex')}"


def run_suite(mode_args: list[str], outdir: Path, port: int | None = None) -> tuple[int, str]:
    """Run run.sh strictly; return its exit status and its output (also kept in run.log)."""
    env = dict(os.environ, AUTOBAHN_STRICT="1", AUTOBAHN_TIMEOUT=str(RUN_TIMEOUT_S))
    env.pop("AUTOBAHN_ALLOW", None)
    env.pop("AUTOBAHN_CASES", None)
    env.pop("AUTOBAHN_EXCLUDE", None)
    env["AUTOBAHN_QUICK"] = "1" if IS_QUICK else "0"
    if port is not None:
        env["AUTOBAHN_PORT"] = str(port)
    completed = subprocess.run(
        [str(AUTOBAHN_DIR / "run.sh"), *mode_args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT_S + 120,
        check=False,
    )
    (outdir / "run.log").write_text(completed.stdout)
    return completed.returncode, completed.stdout


def check_report(mode: str, outdir: Path, status: int, output: str) -> None:
    """Assert that run.sh passed and that every case of index.json is acceptable."""
    summary = outdir / "summary.md"
    if summary.exists():
        shutil.copyfile(summary, REPORTS / f"{mode}-summary.md")
        print(f"\nAutobahn|Testsuite, fullduplex as the {mode} ({outdir}):\n")
        print(summary.read_text())
    index = outdir / "index.json"
    assert index.exists(), f"run.sh exited with {status} and wrote no report:\n{output}"
    cases = json.loads(index.read_text())[agent_name()]
    bad = {
        case_id: f"{result['behavior']}/{result['behaviorClose']}"
        for case_id, result in cases.items()
        if result["behavior"] not in ALLOWED_BEHAVIOR
        or result["behaviorClose"] not in ALLOWED_BEHAVIOR_CLOSE
    }
    details = f"see {outdir}/index.html; run.sh said:\n{output[-3000:]}"
    assert not bad, f"{len(bad)} cases failed (behavior/behaviorClose): {bad}; {details}"
    expected = QUICK_SUITE_CASES if IS_QUICK else FULL_SUITE_CASES
    assert len(cases) == expected, f"{len(cases)} cases ran instead of {expected}; {details}"
    assert status == 0, f"run.sh exited with {status}; {details}"


def fresh_outdir(mode: str) -> Path:
    outdir = REPORTS / mode
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    return outdir


@pytest.fixture
def autobahn(require_tool: RequireTool) -> Path:
    """The run.sh of shared/tools/autobahn, once wstest is installed."""
    require_tool("wstest", WSTEST)
    return Path(require_tool("run.sh", AUTOBAHN_DIR / "run.sh"))


@pytest.fixture
def echo_server(free_port: int, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """tests/autobahn/echo_server.py listening on 127.0.0.1; yields its URL and process."""
    log = (tmp_path / "echo_server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "autobahn" / "echo_server.py"), str(free_port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", free_port), timeout=1).close()
                break
            except OSError:
                exited = server.poll() is not None
                if exited or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "echo_server.py did not start listening:\n"
                        + (tmp_path / "echo_server.log").read_text(errors="replace")
                    )
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{free_port}", server
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_server_passes_every_autobahn_case(
    autobahn: Path,
    echo_server: tuple[str, subprocess.Popen[bytes]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, server = echo_server
    outdir = fresh_outdir("server")
    status, output = run_suite(["server", url, str(outdir), agent_name()], outdir)
    server_log = (tmp_path / "echo_server.log").read_text(errors="replace")
    (outdir / "echo_server.log").write_text(server_log)
    with capsys.disabled():
        assert server.poll() is None, f"echo_server.py died during the run:\n{server_log}"
        check_report("server", outdir, status, output)


def test_client_passes_every_autobahn_case(
    autobahn: Path, free_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = fresh_outdir("client")
    client = [sys.executable, str(REPO / "tests" / "autobahn" / "client.py")]
    status, output = run_suite(
        ["client", str(outdir), agent_name(), "--", *client], outdir, free_port
    )
    with capsys.disabled():
        check_report("client", outdir, status, output)
