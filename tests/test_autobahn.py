"""RFC 6455 / RFC 7692 conformance: Autobahn|Testsuite, as a server and as a client.

shared/tools/autobahn/run.sh (or $AUTOBAHN_DIR/run.sh) runs with AUTOBAHN_STRICT=1 against
tests/autobahn/echo_server.py and against tests/autobahn/client.py, and each test requires
every case of its mode to pass: no FAILED, no UNIMPLEMENTED, and a clean closing handshake.
The two runs go on at the same time: each spends most of its time waiting on the other side
of a connection, so together they take little longer than one.

Which cases run depends on the pass (`COMPILED`, `PURE`, `QUICK` below); each test asserts
how many cases of each group ran, so that a selection cannot shrink unnoticed:

- the compiled pass (the default): all 517 cases.
- the pure-Python pass (FULLDUPLEX_NO_SPEEDUPS=1): 330 cases. The compiled extension
  replaces frame-layer code only (src/fullduplex/protocol/_speedups.c): masking, which every case
  exercises, and the parsing of frames on connections without extensions. So the pass runs
  every case of groups 1-10 (framing, UTF-8, closing, messages up to 16 MiB; no extension:
  301 cases), and of permessage-deflate (12.*/13.*: 216 cases of 1000 messages each, ~95% of
  a full run, where only the masking differs between passes) the 18 cases of 12.1.*, which
  cover every message size and fragment size of 12.*/13.*, plus the first case of each other
  group (12.2-12.5: the other data sets, binary ones included; 13.1-13.7: every deflate
  parameter negotiation). The 187 cases left out differ from those only in data or deflate
  parameters, whose code is the same in both passes; the compiled pass runs them.
- FULLDUPLEX_AUTOBAHN_QUICK=1, in either pass, while developing: no 9.*, 12.*, 13.*
  (247 cases, seconds instead of minutes).

Each run also checks that the echo server and the client used the compiled extension
(fullduplex.protocol._speedups) in the compiled pass, and pure Python in the pure-Python pass.
Reports go to build/autobahn/{server,client}/ (build/autobahn/pure/… in the pure-Python
pass; open index.html there); the summaries are also copied beside those folders as
{server,client}-summary.md.
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
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
AUTOBAHN_DIR = Path(os.environ.get("AUTOBAHN_DIR", REPO.parent / "shared" / "tools" / "autobahn"))
WSTEST = Path(os.environ.get("AUTOBAHN_PREFIX", "/opt/autobahn")) / "bin" / "wstest"
IS_PURE = os.environ.get("FULLDUPLEX_NO_SPEEDUPS") == "1"
IS_QUICK = os.environ.get("FULLDUPLEX_AUTOBAHN_QUICK") == "1"
REPORTS = REPO / "build" / "autobahn" / ("pure" if IS_PURE else "")
# What the echo server and the client print about the compiled extension in this pass.
SPEEDUPS_LINE = f"fullduplex.protocol._speedups in use: {not IS_PURE}\n"
# A full run takes about 15 minutes on the 2-core CI machine; past this, something hangs.
RUN_TIMEOUT_S = 2400

# Cases per group (the first number of a case id) in wstest 25.10.1, 517 in all. 12.* (5 data
# sets) and 13.* (7 deflate parameter sets) run the same 18 message sizes for each set.
SUITE_GROUPS = {"1": 16, "2": 11, "3": 7, "4": 10, "5": 20, "6": 145, "7": 37, "9": 54, "10": 1}
SUITE_GROUPS |= {"12": 5 * 18, "13": 7 * 18}


@dataclass(frozen=True)
class Selection:
    """The cases a pass asks run.sh for, and how many of each group its report must hold."""

    cases: str  # AUTOBAHN_CASES
    exclude: str  # AUTOBAHN_EXCLUDE
    group_counts: dict[str, int]


COMPILED = Selection(cases="*", exclude="", group_counts=SUITE_GROUPS)
# The module docstring says why: 12.1.* in full, and the first case of every other 12.x/13.x.
PURE = Selection(
    cases=",".join(
        ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.1.*"]
        + [f"12.{data_set}.1" for data_set in range(2, 6)]
        + [f"13.{parameters}.1" for parameters in range(1, 8)]
    ),
    exclude="",
    group_counts=SUITE_GROUPS | {"12": 18 + 4, "13": 7},
)
QUICK = Selection(
    cases="*",
    exclude="9.*,12.*,13.*",
    group_counts={group: n for group, n in SUITE_GROUPS.items() if group not in {"9", "12", "13"}},
)
SELECTION = QUICK if IS_QUICK else PURE if IS_PURE else COMPILED

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
    peer_log: Path  # the output of fullduplex's side: the echo server's, or the client's

    def wait(self) -> tuple[int, str]:
        """Wait for run.sh to finish; return its exit status and its output."""
        try:
            status = self.process.wait(timeout=RUN_TIMEOUT_S + 120)
        except subprocess.TimeoutExpired:
            stop(self.process)
            status = self.process.returncode
        return status, (self.outdir / "run.log").read_text(errors="replace")


def start_suite(mode: str, arguments: list[str], peer_log: Path | None, **env: str) -> SuiteRun:
    """Start run.sh in ``mode``; ``peer_log`` is None when run.sh runs fullduplex itself."""
    outdir = REPORTS / mode
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    command = [str(AUTOBAHN_DIR / "run.sh"), mode, *arguments]
    process = start(command, outdir / "run.log", **env)
    return SuiteRun(mode, outdir, process, peer_log or outdir / "run.log")


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
    env |= {"AUTOBAHN_CASES": SELECTION.cases, "AUTOBAHN_EXCLUDE": SELECTION.exclude}
    env |= {"AUTOBAHN_QUICK": "0"}
    agent = agent_name()
    echo_server_log = REPORTS / "echo_server.log"
    with contextlib.ExitStack() as cleanup:
        url, server = start_echo_server(echo_server_log)
        cleanup.callback(stop, server)
        client = [sys.executable, str(REPO / "tests" / "autobahn" / "client.py")]
        runs = {
            "server": start_suite(
                "server", [url, str(REPORTS / "server"), agent], echo_server_log, **env
            ),
            "client": start_suite(
                "client",
                [str(REPORTS / "client"), agent, "--", *client],
                None,
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
    group_counts = dict(Counter(case_id.split(".")[0] for case_id in cases))
    assert group_counts == SELECTION.group_counts, (
        f"{len(cases)} cases ran instead of {sum(SELECTION.group_counts.values())}; "
        f"cases per group: {group_counts}, expected {SELECTION.group_counts}; {details}"
    )
    assert status == 0, f"run.sh exited with {status}; {details}"
    peer_output = run.peer_log.read_text(errors="replace")
    assert SPEEDUPS_LINE in peer_output, (
        f"fullduplex's side did not print {SPEEDUPS_LINE!r}; {run.peer_log} says:\n"
        f"{peer_output[-3000:]}"
    )


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
