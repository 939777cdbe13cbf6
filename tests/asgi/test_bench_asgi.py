"""bench/asgi.py works: one short round of cell (c) for each of uvicorn's WebSocket
implementations behind bench/servers/fastapi_server.py. No timing is checked here; the numbers
live in docs/benchmarks.md (`make bench-asgi`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout_s(360)
def test_bench_asgi_measures_every_implementation() -> None:
    missing = [tool for tool in ("cc", "taskset") if shutil.which(tool) is None]
    if (os.cpu_count() or 1) < 2:
        missing.append("a second core")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the benchmark needs {', '.join(missing)}")
        pytest.skip(f"the benchmark needs {', '.join(missing)}")
    results = REPO / "bench" / "build" / "asgi-smoke.jsonl"
    results.unlink(missing_ok=True)
    command = [sys.executable, "bench/asgi.py", "--smoke"]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rounds = [json.loads(line) for line in results.read_text().splitlines()]
    measured = {r["server"] for r in rounds if r["type"] == "round" and r["ok"]}
    assert measured == {"fullduplex", "websockets-sansio", "wsproto"}
    assert "fullduplex vs the best other" in run.stdout
