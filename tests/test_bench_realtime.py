"""bench/realtime works: a tiny run of the Socket.IO benchmark against fullduplex, its report,
and the page section it writes. No timing is checked; the numbers live in docs/benchmarks.md
(`make bench-realtime`)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def load_realtime_module() -> ModuleType:
    path = REPO / "bench" / "realtime" / "run.py"
    spec = importlib.util.spec_from_file_location("bench_realtime", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


realtime = load_realtime_module()


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [tool for tool in ("node", "taskset") if shutil.which(tool) is None]
    if (os.cpu_count() or 1) < 2:
        missing.append("a second core")
    if not (REPO / "tests" / "node_modules" / "ws").exists():
        missing.append("tests/node_modules (make tests/node_modules/.installed)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the benchmark needs {', '.join(missing)}")
        pytest.skip(f"the benchmark needs {', '.join(missing)}")
    results = tmp_path_factory.mktemp("bench") / "realtime.jsonl"
    done = subprocess.run(
        [sys.executable, "bench/realtime/run.py", "--smoke", "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return results


@pytest.fixture(scope="module")
def smoke_entries(smoke_results: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in smoke_results.read_text().splitlines()]


def test_benchmark_records_a_header_each_cell_and_a_run_end(
    smoke_entries: list[dict[str, Any]],
) -> None:
    assert [e["type"] for e in smoke_entries] == ["run", "round", "round", "round", "run_end"]
    cells = [(e["cell"], e["server"], e["ok"]) for e in smoke_entries[1:-1]]
    assert cells == [
        ("echo-websocket", "fullduplex", True),
        ("echo-polling", "fullduplex", True),
        ("fanout-50", "fullduplex", True),
    ]
    assert smoke_entries[0]["versions"]["fullduplex"]


def test_echo_rounds_count_checked_acks_and_both_sides_cpu(
    smoke_entries: list[dict[str, Any]],
) -> None:
    for entry in smoke_entries[1:3]:
        assert entry["acks"] > 0 and entry["errors"] == 0 and entry["clients"] == 10
        for key in ("events_per_s", "server_cpu_us_per_event", "driver_cpu_pct", "rss_kib"):
            assert isinstance(entry[key], int | float), key


def test_fanout_round_reaches_every_client_and_measures_memory(
    smoke_entries: list[dict[str, Any]],
) -> None:
    fanout = smoke_entries[3]
    assert fanout["broadcasts"] == 3 and fanout["errors"] == 0
    assert 0 < fanout["latency_ms"]["p50"] <= fanout["latency_ms"]["last"]
    assert fanout["kib_per_client"] > 0


def test_section_replaces_its_previous_copy_in_the_page(
    smoke_entries: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, *records, end = smoke_entries
    text = realtime.section(header, records, end["elapsed_s"])
    assert "| 50 clients: fullduplex |" in text and "| websocket: fullduplex |" in text
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nabove\n")
    monkeypatch.setattr(realtime, "DOCS", page)
    write: Callable[[str], None] = realtime.write_docs
    write(text)
    write(text.replace("fullduplex |", "fullduplex (again) |"))
    written = page.read_text()
    assert written.startswith("# Benchmarks\n\nabove\n") and written.count(realtime.BEGIN) == 1
    assert "fullduplex (again) |" in written


def test_report_rewrites_the_section_from_a_recorded_run(
    smoke_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n")
    monkeypatch.setattr(realtime, "DOCS", page)
    run_id = json.loads(smoke_results.read_text().splitlines()[0])["run_id"]
    assert realtime.main(["--report", run_id, "--results", str(smoke_results)]) == 0
    assert (
        f"Run `{run_id}`" in page.read_text() and "| 50 clients: fullduplex |" in page.read_text()
    )
