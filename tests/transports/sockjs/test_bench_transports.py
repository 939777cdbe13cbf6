"""bench/transports.py works: Chromium's headers captured, every transport measured briefly.

No number is checked beyond sanity; the measured table lives in docs/transports.md
(`make bench-transports`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.browser
def test_bench_measures_every_transport(
    require_tool: Callable[[str, str], str], tmp_path: Path
) -> None:
    require_tool("chromium", "/usr/bin/chromium")
    done = subprocess.run(
        [sys.executable, "bench/transports.py", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    headers = json.loads((tmp_path / "chromium_headers.json").read_text())
    assert set(headers) == {"fetch-get", "xhr-post", "eventsource", "iframe", "websocket"}
    assert any(name.lower() == "user-agent" for name, _ in headers["xhr-post"])
    (run,) = [json.loads(line) for line in (tmp_path / "transports.jsonl").read_text().splitlines()]
    results = {result["transport"]: result for result in run["results"]}
    assert len(results) == 7
    for result in results.values():
        assert result["failed_clients"] == 0 and result["messages"] > 0
    # Polling pays a request (and Chromium's headers) per message; WebSocket does not.
    assert results["short-polling"]["requests_per_message"] >= 0.9
    assert results["short-polling"]["bytes_up_per_message"] > 300
    assert results["websocket"]["bytes_up_per_message"] == 0
    assert results["websocket"]["bytes_down_per_message"] < 50
