"""bench/ works: one short round of the benchmark against fullduplex, and its report.

No timing is checked here; the numbers live in docs/benchmarks.md (`make bench`).
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

import pytest

REPO = Path(__file__).resolve().parent.parent


def load_report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", REPO / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [tool for tool in ("cc", "taskset") if shutil.which(tool) is None]
    if (os.cpu_count() or 1) < 2:
        missing.append("a second core")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the benchmark needs {', '.join(missing)}")
        pytest.skip(f"the benchmark needs {', '.join(missing)}")
    results = tmp_path_factory.mktemp("bench") / "results.jsonl"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return results


SMOKE_SERVERS = ["fullduplex", "fullduplex-callbacks"]


def test_benchmark_writes_a_run_header_one_round_per_server_and_a_run_end(
    smoke_results: Path,
) -> None:
    entries = [json.loads(line) for line in smoke_results.read_text().splitlines()]
    assert [entry["type"] for entry in entries] == ["run", "round", "round", "run_end"]
    header, *measured, end = entries
    assert {header["run_id"], end["run_id"]} == {entry["run_id"] for entry in measured}
    assert header["params"]["cells"] == ["c"] and header["params"]["servers"] == SMOKE_SERVERS
    assert header["machine"]["cpu_model"] and header["versions"]["fullduplex"]
    assert [(m["cell"], m["server"], m["round"]) for m in measured] == [
        ("c", server, 1) for server in SMOKE_SERVERS
    ]


def test_benchmark_round_echoes_every_message_and_reports_its_measures(smoke_results: Path) -> None:
    for measured in [json.loads(line) for line in smoke_results.read_text().splitlines()][1:-1]:
        assert measured["ok"], measured.get("error")
        assert measured["messages"] > 0 and measured["errors"] == 0
        assert (measured["connections"], measured["size"], measured["pipeline"]) == (100, 256, 16)
        for key in ("msgs_per_s", "cpu_us_per_msg", "rss_kib", "background_cpu_pct"):
            assert isinstance(measured[key], int | float), key
        assert set(measured["latency_us"]) == {"p50", "p90", "p99", "p99_9", "max", "mean"}


def test_report_renders_the_smoke_run(smoke_results: Path) -> None:
    report = load_report_module()
    header, results, failures, elapsed = report.load(smoke_results, _run_id(smoke_results))
    text = report.markdown(header, results, failures, elapsed)
    assert "### (c) 100 connections, 256 B text, K=16" in text
    assert "| fullduplex |" in text and not failures
    assert "| fullduplex, callback API |" in text


def test_report_renders_a_run_of_some_cells_as_a_section_of_its_own(smoke_results: Path) -> None:
    report = load_report_module()
    header, results, failures, _ = report.load(smoke_results, _run_id(smoke_results))
    assert not report.covers_every_cell(header)
    text = "\n".join(report.partial_section(header, results, failures))
    assert text.startswith(f"## Newer run of cells c: `{header['run_id']}`")
    assert "### (c) 100 connections, 256 B text, K=16 (run" in text
    assert "(c) high-level API >= aiohttp" not in text  # not measured: left out


def _run_id(results: Path) -> str:
    return str(json.loads(results.read_text().splitlines()[0])["run_id"])
