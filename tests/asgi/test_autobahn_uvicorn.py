"""Autobahn|Testsuite's server mode against a Starlette echo endpoint under uvicorn, served by
fullduplex.asgi.WebSocketProtocol (tests/asgi/autobahn_echo_app.py).

It reuses tests/test_autobahn.py's machinery (run.sh in strict mode, the verdicts it allows,
the speedups check) with its own selection. By default: every case but 9.* (messages up to
16 MiB), 12.* and 13.* (permessage-deflate, 95% of a full run), plus the first case of each
12.x/13.x group, so that compression is still checked: 259 cases in about 15 s. The full
suite (517 cases, about 15 minutes on the shared machine) runs with
FULLDUPLEX_ASGI_AUTOBAHN_FULL=1; docs/asgi.md gives the result of the last full run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
IS_FULL = os.environ.get("FULLDUPLEX_ASGI_AUTOBAHN_FULL") == "1"
AGENT = "fullduplex-asgi"


def autobahn_module() -> ModuleType:
    """tests/test_autobahn.py, imported by path (the tests are not a package)."""
    spec = importlib.util.spec_from_file_location("_autobahn", REPO / "tests" / "test_autobahn.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


def test_autobahn_passes_against_starlette_under_uvicorn(
    require_tool: Callable[[str, Path], str], tmp_path: Path
) -> None:
    autobahn = autobahn_module()
    require_tool("wstest", autobahn.WSTEST)
    require_tool("run.sh", autobahn.AUTOBAHN_DIR / "run.sh")
    groups = dict(autobahn.SUITE_GROUPS)
    if IS_FULL:
        cases = "*"
    else:
        first_cases = [f"12.{n}.1" for n in range(1, 6)] + [f"13.{n}.1" for n in range(1, 8)]
        cases = ",".join(["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*", *first_cases])
        groups = {g: n for g, n in groups.items() if g != "9"} | {"12": 5, "13": 7}
    outdir = autobahn.REPORTS / "asgi-server"
    port = autobahn.free_port()
    server_log = tmp_path / "echo_app.log"
    app = REPO / "tests" / "asgi" / "autobahn_echo_app.py"
    server = autobahn.start([sys.executable, str(app), str(port)], server_log)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(autobahn.stop, server)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                alive = server.poll() is None and time.monotonic() < deadline
                assert alive, f"the echo app did not listen:\n{server_log.read_text()}"
                time.sleep(0.05)
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.mkdir(parents=True)
        command = [str(autobahn.AUTOBAHN_DIR / "run.sh"), "server", f"ws://127.0.0.1:{port}"]
        env = {"AUTOBAHN_STRICT": "1", "AUTOBAHN_TIMEOUT": str(autobahn.RUN_TIMEOUT_S)}
        env |= {"AUTOBAHN_ALLOW": "", "AUTOBAHN_CASES": cases, "AUTOBAHN_EXCLUDE": ""}
        env |= {"AUTOBAHN_QUICK": "0"}
        process = autobahn.start([*command, str(outdir), AGENT], outdir / "run.log", **env)
        run = autobahn.SuiteRun("server", outdir, process, server_log)
        cleanup.callback(autobahn.stop, run.process)
        status, output = run.wait()
    summary = outdir / "summary.md"
    if summary.exists():
        print(f"\nAutobahn|Testsuite, Starlette under uvicorn with fullduplex.asgi ({outdir}):\n")
        print(summary.read_text())
    index = outdir / "index.json"
    assert index.exists(), f"run.sh exited with {status}; it said:\n{output[-3000:]}"
    results = json.loads(index.read_text())[AGENT]
    bad = {
        case: f"{result['behavior']}/{result['behaviorClose']}"
        for case, result in results.items()
        if result["behavior"] not in autobahn.ALLOWED_BEHAVIOR
        or result["behaviorClose"] not in autobahn.ALLOWED_BEHAVIOR_CLOSE
    }
    assert not bad, f"{len(bad)} cases failed: {bad}; see {outdir}/index.html"
    assert dict(Counter(case.split(".")[0] for case in results)) == groups
    assert status == 0, output[-3000:]
    assert autobahn.SPEEDUPS_LINE in server_log.read_text()
