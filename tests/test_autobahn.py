"""RFC 6455 / RFC 7692 conformance: Autobahn|Testsuite, as a server and as a client.

wstest (installed by scripts/install-autobahn.sh into $AUTOBAHN_PREFIX, /opt/autobahn by
default) runs as a fuzzing client against tests/autobahn/echo_server.py, twice (the ordinary
API, ``async for`` and ``send``; and the callback API, ``on_message`` and ``send_nowait``,
which reads another way), and as a fuzzing server for tests/autobahn/client.py, and each test
requires every case of its mode to pass: no FAILED, no UNIMPLEMENTED, and a clean closing
handshake. The three runs go on at the same time: each spends most of its time waiting on the
other side of a connection, so together they take little longer than one.

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
Reports go to build/autobahn/{server,callback-server,client}/ (build/autobahn/pure/… in the
pure-Python pass; open index.html there), with wstest's spec.json and its output in run.log;
a summary of the verdicts is written beside those folders as {mode}-summary.md.
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

REPO = Path(__file__).resolve().parents[1]
WSTEST = Path(os.environ.get("AUTOBAHN_PREFIX", "/opt/autobahn")) / "bin" / "wstest"
IS_PURE = os.environ.get("FULLDUPLEX_NO_SPEEDUPS") == "1"
IS_QUICK = os.environ.get("FULLDUPLEX_AUTOBAHN_QUICK") == "1"
REPORTS = REPO / "build" / "autobahn" / ("pure" if IS_PURE else "")
# What the echo server and the client print about the compiled extension in this pass.
SPEEDUPS_LINE = f"fullduplex.protocol._speedups in use: {not IS_PURE}\n"
# A full run takes about 15 minutes on the 2-core CI machine; past this, something hangs.
RUN_TIMEOUT_S = 2400

pytestmark = [pytest.mark.slow, pytest.mark.timeout_s(RUN_TIMEOUT_S + 300)]

# Cases per group (the first number of a case id) in wstest 25.10.1, 517 in all. 12.* (5 data
# sets) and 13.* (7 deflate parameter sets) run the same 18 message sizes for each set.
SUITE_GROUPS = {"1": 16, "2": 11, "3": 7, "4": 10, "5": 20, "6": 145, "7": 37, "9": 54, "10": 1}
SUITE_GROUPS |= {"12": 5 * 18, "13": 7 * 18}


@dataclass(frozen=True)
class Selection:
    """The cases a pass asks wstest for, and how many of each group its report must hold."""

    cases: str  # comma-separated patterns
    exclude: str  # comma-separated patterns
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
    """One wstest run, fuzzing fullduplex's server or client, going on in the background."""

    mode: str
    outdir: Path
    process: subprocess.Popen[bytes]
    peer_log: Path  # the output of fullduplex's side: the echo server's, or the client's
    stop_when_done: subprocess.Popen[bytes] | None = None  # the fuzzingserver of a client run

    def wait(self) -> tuple[int, str]:
        """Wait for the run to finish; return the exit status of wstest (server mode) or of
        the client (client mode), and wstest's output."""
        try:
            status = self.process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop(self.process)
            status = self.process.returncode
        if self.stop_when_done is not None:
            stop(self.stop_when_done)
        return status, (self.outdir / "run.log").read_text(errors="replace")


def write_spec(outdir: Path, **fields: object) -> Path:
    """Write wstest's spec file for this pass's selection of cases into ``outdir``."""
    spec = {
        "outdir": str(outdir),
        "options": {"failByDrop": False},
        "cases": SELECTION.cases.split(","),
        "exclude-cases": [case for case in SELECTION.exclude.split(",") if case],
        "exclude-agent-cases": {},
        **fields,
    }
    path = outdir / "spec.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def fresh_outdir(mode: str) -> Path:
    outdir = REPORTS / mode
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    return outdir


def start_server_run(url: str, echo_server_log: Path, mode: str) -> SuiteRun:
    """wstest's fuzzing client against the echo server at ``url``."""
    outdir = fresh_outdir(mode)
    spec = write_spec(outdir, servers=[{"url": url, "agent": agent_name()}])
    process = start([str(WSTEST), "-m", "fuzzingclient", "-s", str(spec)], outdir / "run.log")
    return SuiteRun(mode, outdir, process, echo_server_log)


def start_client_run() -> SuiteRun:
    """wstest's fuzzing server, and tests/autobahn/client.py once it listens."""
    outdir = fresh_outdir("client")
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    spec = write_spec(outdir, url=url)
    # -u 0: no web server beside the fuzzing server.
    fuzzer = start(
        [str(WSTEST), "-m", "fuzzingserver", "-u", "0", "-s", str(spec)], outdir / "run.log"
    )
    wait_until_listening(port, fuzzer, outdir / "run.log", "wstest -m fuzzingserver")
    client_log = outdir / "client.log"
    client = start(
        [sys.executable, str(REPO / "tests" / "autobahn" / "client.py")],
        client_log,
        AUTOBAHN_URL=url,
        AUTOBAHN_AGENT=agent_name(),
    )
    return SuiteRun("client", outdir, client, client_log, stop_when_done=fuzzer)


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path, name: str) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; fail if ``process`` dies first."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                pytest.fail(f"{name} did not start listening:\n{log.read_text()}")
            time.sleep(0.05)


def summarize(run: SuiteRun, cases: dict[str, dict[str, str]]) -> str:
    """A Markdown summary of the verdicts, per behavior."""
    behaviors = Counter(result["behavior"] for result in cases.values())
    closes = Counter(result["behaviorClose"] for result in cases.values())
    lines = [f"fullduplex as the {run.mode}: {len(cases)} cases ({run.outdir}/index.html)", ""]
    lines += ["| behavior | cases |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(behaviors.items())]
    lines += ["", f"behaviorClose: {dict(sorted(closes.items()))}"]
    not_ok = sorted(case for case, result in cases.items() if result["behavior"] != "OK")
    if not_ok:
        lines += ["", f"not OK: {', '.join(not_ok)}"]
    return "\n".join(lines) + "\n"


def start_echo_server(log: Path, *arguments: str) -> tuple[str, subprocess.Popen[bytes]]:
    """Start tests/autobahn/echo_server.py; return its URL once it listens, and its process."""
    port = free_port()
    echo_server = REPO / "tests" / "autobahn" / "echo_server.py"
    server = start([sys.executable, str(echo_server), str(port), *arguments], log)
    wait_until_listening(port, server, log, "echo_server.py")
    return f"ws://127.0.0.1:{port}", server


@pytest.fixture(scope="module")
def autobahn_runs(require_tool: RequireTool) -> Iterator[dict[str, SuiteRun]]:
    """The three runs of the suite, started together; the echo servers live as long as they
    do."""
    require_tool("wstest", WSTEST)
    REPORTS.mkdir(parents=True, exist_ok=True)
    runs: dict[str, SuiteRun] = {}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    with contextlib.ExitStack() as cleanup:
        for mode, arguments in (("server", ()), ("callback-server", ("callbacks",))):
            log = REPORTS / f"{mode.replace('-', '_')}_echo_server.log"
            url, servers[mode] = start_echo_server(log, *arguments)
            cleanup.callback(stop, servers[mode])
            runs[mode] = start_server_run(url, log, mode)
            cleanup.callback(stop, runs[mode].process)
        runs["client"] = start_client_run()
        for process in (runs["client"].process, runs["client"].stop_when_done):
            assert process is not None
            cleanup.callback(stop, process)
        yield runs
        for mode, server in servers.items():
            if server.poll() is not None:
                log_text = runs[mode].peer_log.read_text(errors="replace")
                pytest.fail(f"echo_server.py ({mode}) died during the run:\n{log_text}")


def check_report(run: SuiteRun) -> None:
    """Assert that the run ended well and that every case of its index.json is acceptable."""
    status, output = run.wait()
    details = f"see {run.outdir}/index.html; wstest said:\n{output[-3000:]}"
    index = run.outdir / "index.json"
    assert index.exists(), f"the run exited with {status} and wrote no report; {details}"
    cases = json.loads(index.read_text())[agent_name()]
    summary = summarize(run, cases)
    (REPORTS / f"{run.mode}-summary.md").write_text(summary)
    print(f"\nAutobahn|Testsuite, {summary}")
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
    assert status == 0, f"the run exited with {status}; {details}"
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


def test_callback_server_passes_every_autobahn_case(
    autobahn_runs: dict[str, SuiteRun], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        check_report(autobahn_runs["callback-server"])


def test_client_passes_every_autobahn_case(
    autobahn_runs: dict[str, SuiteRun], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        check_report(autobahn_runs["client"])
