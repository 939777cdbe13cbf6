"""bench/transports/ works: Chromium's request heads match the fixture, and a tiny run of
every transport (10 clients, 2 s) delivers its messages and reports them.

No timing is checked here; the numbers live at the end of docs/transports.md
(`make bench-transports`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench" / "transports"
# Fields whose values change with each request or with the browser's version.
VARYING = {"sec-websocket-key", "user-agent", "sec-ch-ua"}


def load_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_transports_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.browser
async def test_chromium_sends_the_request_heads_of_the_fixture(chromium_browser: Browser) -> None:
    chromium = load_module("chromium")
    heads = await chromium.capture(chromium_browser)
    captured = chromium.fixture(heads, chromium_browser.version)["requests"]
    fixture = json.loads((BENCH / "chromium_headers.json").read_text())["requests"]
    hint = "Chromium changed: run `.venv/bin/python bench/transports/chromium.py` and commit"
    for kind in chromium.KINDS:
        assert captured[kind]["method"] == fixture[kind]["method"], kind
        names = [name for name, _ in captured[kind]["headers"]]
        assert names == [name for name, _ in fixture[kind]["headers"]], f"{kind}: {hint}"
        for (name, value), (_, expected) in zip(
            captured[kind]["headers"], fixture[kind]["headers"], strict=True
        ):
            if name.lower() not in VARYING:
                assert value == expected, f"{kind} {name}: {hint}"
        assert abs(captured[kind]["head_bytes"] - fixture[kind]["head_bytes"]) <= 8, hint


def test_load_generator_sends_the_fixture_head_with_path_port_and_a_fresh_key() -> None:
    loadgen = load_module("loadgen")
    fixture = loadgen.load_headers()
    first = loadgen.request_head(fixture, "websocket", "GET", "/ws", 9901)
    second = loadgen.request_head(fixture, "websocket", "GET", "/ws", 9901)
    assert first.startswith(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:9901\r\n")
    assert first.endswith(b"\r\n\r\n") and first != second  # the key is new each time
    head_bytes = fixture["websocket"]["head_bytes"]  # with a 4-digit port, as 9901
    assert len(first) == len(second) == len("GET /ws HTTP/1.1\r\n") + head_bytes
    post = loadgen.request_head(fixture, "xhr_post", "POST", "/sockjs/000/abc/xhr", 80)
    assert b"\r\nContent-Length: 0\r\n" in post and b"Origin: http://127.0.0.1:80\r\n" in post


@pytest.fixture(scope="module")
def smoke_cells(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    missing = [tool for tool in ("taskset",) if shutil.which(tool) is None]
    if (os.cpu_count() or 1) < 2:
        missing.append("a second core")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the benchmark needs {', '.join(missing)}")
        pytest.skip(f"the benchmark needs {', '.join(missing)}")
    results = tmp_path_factory.mktemp("bench") / "transports.jsonl"
    done = subprocess.run(
        [sys.executable, "bench/transports/measure.py", "--smoke", "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    entries = [json.loads(line) for line in results.read_text().splitlines()]
    return results, [entry for entry in entries if entry["type"] == "cell"]


@pytest.mark.timeout_s(180)
def test_every_transport_delivers_every_client_its_messages(
    smoke_cells: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, cells = smoke_cells
    assert [cell["transport"] for cell in cells] == [
        "polling", "xhr-polling", "xhr-streaming", "htmlfile", "eventsource",
        "sockjs-websocket", "websocket",
    ]  # fmt: skip
    for cell in cells:
        assert cell["ok"], cell.get("error")
        assert cell["errors"] == 0, cell["first_error"]
        assert cell["clients_with_a_message"] == cell["clients"] == 10, cell["transport"]
        assert cell["messages"] > 0 and cell["latency_us"]["p50"] is not None
        assert cell["bytes_in_per_msg"] >= 20  # the message itself is 20 bytes


@pytest.mark.timeout_s(180)
def test_bytes_per_message_are_the_transports_framing(
    smoke_cells: tuple[Path, list[dict[str, Any]]],
) -> None:
    cells = {cell["transport"]: cell for cell in smoke_cells[1]}
    # RFC 6455: a 2-byte header and the 20 bytes; SockJS adds `a["` and `"]`.
    assert cells["websocket"]["bytes_in_per_msg"] == 22
    assert cells["sockjs-websocket"]["bytes_in_per_msg"] == 27
    for streaming in ("xhr-streaming", "htmlfile", "eventsource", "websocket"):
        assert cells[streaming]["bytes_out_per_msg"] == 0
        assert cells[streaming]["requests"] == 0
    for polling in ("polling", "xhr-polling"):
        # One request carries a Chromium head of about 500 bytes, and about one message.
        assert cells[polling]["bytes_out_per_msg"] > 400
        assert 0.5 <= cells[polling]["requests_per_msg"] <= 2


@pytest.mark.timeout_s(180)
def test_report_renders_the_article_table_from_the_smoke_run(
    smoke_cells: tuple[Path, list[dict[str, Any]]],
) -> None:
    results, _ = smoke_cells
    report = load_module("report")
    run_id = json.loads(results.read_text().splitlines()[0])["run_id"]
    header, cells = report.load(results, run_id)
    text = report.markdown(header, cells)
    assert text.startswith(report.MEASURED_HEADING)
    assert "| article: polling, 871 B of headers | 871 | 6.6 | 66 | 665 |" in text
    assert "| article: WebSocket, 2-byte frames | 2 | 0.015 | 0.153 | 1.526 |" in text
    assert "| measured: raw WebSocket (`/ws`) | 22.0 | 0.168* | 1.678* | 16.785* |" in text
    assert round(report.mbps(871, 1_000), 1) == 6.6
