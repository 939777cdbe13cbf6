"""Autobahn|Testsuite's server mode against a Starlette echo endpoint under uvicorn, served by
fullduplex.asgi.WebSocketProtocol (tests/asgi/autobahn_echo_app.py).

It reuses tests/test_autobahn.py's machinery (wstest's fuzzing client, the verdicts it
allows, the speedups check) with its own selection. By default: every case but 9.* (messages up to
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
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
IS_FULL = os.environ.get("FULLDUPLEX_ASGI_AUTOBAHN_FULL") == "1"
AGENT = "fullduplex-asgi"
TIMEOUT_S = 2700 if IS_FULL else 300


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


@pytest.mark.timeout_s(TIMEOUT_S)
def test_autobahn_passes_against_starlette_under_uvicorn(
    require_tool: Callable[[str, Path], str], tmp_path: Path
) -> None:
    autobahn = autobahn_module()
    require_tool("wstest", autobahn.WSTEST)
    groups = dict(autobahn.SUITE_GROUPS)
    cases = ["*"]
    if not IS_FULL:
        cases = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
        cases += [f"12.{n}.1" for n in range(1, 6)] + [f"13.{n}.1" for n in range(1, 8)]
        groups = {g: n for g, n in groups.items() if g != "9"} | {"12": 5, "13": 7}
    outdir = autobahn.fresh_outdir("asgi-server")
    port = autobahn.free_port()
    server_log = tmp_path / "echo_app.log"
    app = REPO / "tests" / "asgi" / "autobahn_echo_app.py"
    with contextlib.ExitStack() as cleanup:
        server = autobahn.start([sys.executable, str(app), str(port)], server_log)
        cleanup.callback(autobahn.stop, server)
        autobahn.wait_until_listening(port, server, server_log, "autobahn_echo_app.py")
        spec = outdir / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "outdir": str(outdir),
                    "options": {"failByDrop": False},
                    "cases": cases,
                    "exclude-cases": [],
                    "exclude-agent-cases": {},
                    "servers": [{"url": f"ws://127.0.0.1:{port}", "agent": AGENT}],
                }
            )
        )
        command = [str(autobahn.WSTEST), "-m", "fuzzingclient", "-s", str(spec)]
        process = autobahn.start(command, outdir / "run.log")
        cleanup.callback(autobahn.stop, process)
        status, output = autobahn.SuiteRun("server", outdir, process, server_log).wait()
    index = outdir / "index.json"
    assert index.exists(), f"wstest exited with {status}; it said:\n{output[-3000:]}"
    results = json.loads(index.read_text())[AGENT]
    behaviors = Counter(result["behavior"] for result in results.values())
    print(f"\nAutobahn|Testsuite, Starlette under uvicorn with fullduplex.asgi: {dict(behaviors)}")
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
