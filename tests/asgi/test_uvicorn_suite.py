"""uvicorn's own WebSocket tests, run against fullduplex.asgi.WebSocketProtocol.

The test fetches uvicorn 0.55.0's source distribution (``pip download``, cached in
build/uvicorn-suite/, never committed), adds tests/asgi/uvicorn_suite_conftest.py to it as
tests/protocols/conftest.py, which overrides the ``ws_protocol_cls`` fixture so that every
test runs for fullduplex and for websockets-sansio, and runs tests/protocols/test_websocket.py
in a subprocess, with both uvicorn HTTP implementations (httptools and h11). No file of the
suite is changed.

Then, for every test that passes for websockets-sansio, the same test must pass for
fullduplex. Two tests (four with both HTTP implementations) cannot: they assert
``isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol))``, i.e. that the server uses
one of uvicorn's own classes. They may fail only on that assertion;
tests/asgi/test_uvicorn.py checks what they check besides (a keepalive ping goes out and is
answered; no ping timer without keepalive).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
UVICORN_VERSION = "0.55.0"
CACHE = REPO / "build" / "uvicorn-suite"
SUITE_FILE = "tests/protocols/test_websocket.py"
CONFTEST = Path(__file__).with_name("uvicorn_suite_conftest.py")
TIMEOUT_S = 900

# Tests that assert the protocol object is an instance of uvicorn's own classes.
CLASS_IDENTITY_TESTS = {"test_server_keepalive_ping_pong", "test_server_keepalive_disabled"}


def fetch_suite() -> Path:
    """Return uvicorn's unpacked source distribution, downloading it the first time."""
    source = CACHE / f"uvicorn-{UVICORN_VERSION}"
    if not (source / SUITE_FILE).exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        archive = CACHE / f"uvicorn-{UVICORN_VERSION}.tar.gz"
        if not archive.exists():
            command = [
                sys.executable, "-m", "pip", "download", f"uvicorn=={UVICORN_VERSION}",
                "--no-deps", "--no-binary", ":all:", "-q",
                "-d", str(CACHE),
            ]  # fmt: skip
            subprocess.run(command, check=True, timeout=300, capture_output=True)
        partial = CACHE / f"unpacking-{os.getpid()}"
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
        (partial / source.name).rename(source)
        shutil.rmtree(partial)
    shutil.copyfile(CONFTEST, source / "tests" / "protocols" / "conftest.py")
    return source


def outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """Each test's outcome in a JUnit XML report: (passed|failed|skipped, message)."""
    results = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", (child.get("message") or "") + (child.text or "")
            elif child.tag == "skipped":
                outcome, message = "skipped", child.get("message") or ""
        results[case.get("name", "")] = (outcome, message)
    return results


@pytest.mark.timeout_s(TIMEOUT_S + 360)
def test_uvicorn_websocket_suite_passes_for_fullduplex_where_it_passes_for_websockets() -> None:
    installed = importlib.metadata.version("uvicorn")
    assert installed == UVICORN_VERSION, f"the test extra pins uvicorn {UVICORN_VERSION}"
    source = fetch_suite()
    report = CACHE / "report.xml"
    report.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "pytest", SUITE_FILE, "-p", "no:cacheprovider", "-p", "no:asyncio",
        # The suite's own options, less `-n 8` (pytest-xdist, which this project does not use).
        "-o", "addopts=--strict-config --strict-markers", "-o", "faulthandler_timeout=60",
        "-k", "not zttp", f"--junitxml={report}", "-q",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert report.exists(), f"the suite did not run:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    results = outcomes(report)

    ours = {name: result for name, result in results.items() if "[fullduplex-" in name}
    theirs = {
        name.replace("[websockets-sansio-", "[fullduplex-"): result
        for name, result in results.items()
        if "[websockets-sansio-" in name
    }
    assert set(ours) == set(theirs)
    for http in ("httptools", "h11"):
        assert sum(f"-{http}" in name for name in ours) >= 70, f"too few {http} tests ran"

    regressions = {}
    for name, (their_outcome, _) in theirs.items():
        outcome, message = ours[name]
        if their_outcome != "passed" or outcome == "passed":
            continue
        if name.split("[")[0] in CLASS_IDENTITY_TESTS and "isinstance(" in message:
            continue
        regressions[name] = message[-600:]
    counts = {
        side: {
            outcome: sum(result[0] == outcome for result in results.values())
            for outcome in ("passed", "failed", "skipped")
        }
        for side, results in (("fullduplex", ours), ("websockets-sansio", theirs))
    }
    print(f"\nuvicorn {UVICORN_VERSION} {SUITE_FILE}: {counts}")
    assert not regressions, f"passed for websockets-sansio, not for fullduplex: {regressions}"
