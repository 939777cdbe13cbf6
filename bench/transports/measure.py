"""Measure every transport against the article's polling-vs-WebSocket table.

    make bench-transports              # or: .venv/bin/python bench/transports/measure.py
    .venv/bin/python bench/transports/measure.py --clients 100,1000 --transports polling,websocket
    .venv/bin/python bench/transports/measure.py --smoke   # 10 clients, 2 s, no docs

For each number of clients and each transport, a fresh `server.py` runs pinned to core 1 and
`loadgen.py` (one asyncio process, every client in it) to core 0, both at the same priority as
bench/run.py gives them. Each client receives one small message a second. After the clients
are open and a warmup, the load generator counts, over the measured window, the bytes it wrote
and read (at the socket), its requests and the messages it found, with their latency; the
harness reads the CPU time of both processes and of the whole machine from /proc around the
same window (bench/run.py's `Sample`). Every cell is appended to
bench/results/transports.jsonl; a full run (>= 10 s windows) then rewrites the measured section
at the end of docs/transports.md and docs/transports-bench.png (`report.py`).

A cell that cannot be done here (the clients do not open, or the run times out) is recorded as
failed with the reason, and the table says so.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import resource
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(1, str(REPO / "bench"))  # after this directory: report.py is ours

import run as bench_run  # noqa: E402  (bench/run.py: processes, CPU samples, machine info)
from loadgen import TRANSPORTS  # noqa: E402

__all__ = ["RESULTS", "CLIENTS", "measure_cell", "main"]

RESULTS = REPO / "bench" / "results" / "transports.jsonl"
CLIENTS = (100, 1_000, 10_000)
FULL_RUN_DURATION_S = 10.0
READY_TIMEOUT_S = 60.0  # the longest wait for every client's first message


def measure_cell(transport: str, clients: int, args: argparse.Namespace) -> dict[str, Any]:
    """One transport with ``clients`` clients: a fresh server, one load generator run."""
    log = args.logs / f"{transport}-{clients}.log"
    server_command = [sys.executable, "bench/transports/server.py", "--port", "0"]
    with bench_run.started(server_command, bench_run.SERVER_CORE, log) as (server, port):
        command = [sys.executable, "bench/transports/loadgen.py", "--port", str(port)]
        command += ["--transport", transport, "--clients", str(clients)]
        command += ["--warmup", str(args.warmup), "--duration", str(args.duration)]
        command += ["--ready-timeout", str(READY_TIMEOUT_S)]
        # Opening 10,000 clients on a loaded machine takes a while; everything stays bounded.
        timeout = args.warmup + args.duration + READY_TIMEOUT_S + 60 + clients / 100
        start = end = None
        result: dict[str, Any] = {"loadavg": _loadavg()}
        for process, event in bench_run.run_driver(command, timeout, bench_run.DRIVER_CORE):
            if event["event"] == "opened":
                result |= {k: event[k] for k in ("connected", "served", "served_s")}
            elif event["event"] == "measure_start":
                start = bench_run.Sample.take(server.pid, process.pid)
            elif event["event"] == "measure_end":
                end = bench_run.Sample.take(server.pid, process.pid)
                result.update(bench_run.memory_kib(server.pid))
            elif event["event"] == "result":
                result.update({k: v for k, v in event.items() if k != "event"})
        if start is None or end is None or "messages" not in result:
            raise bench_run.BenchError(f"stopped early: {bench_run._tail(log)}")
    result.update(bench_run.window(start, end))
    messages = result["messages"]
    if messages:
        result["bytes_in_per_msg"] = round(result["bytes_in"] / messages, 1)
        result["bytes_out_per_msg"] = round(result["bytes_out"] / messages, 1)
        result["requests_per_msg"] = round(result["requests"] / messages, 3)
        # µs per message is ms per 1,000 messages.
        result["server_cpu_ms_per_1000"] = round(result["measured_cpu_s"] / messages * 1e6, 2)
    return result


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--clients", default=",".join(str(n) for n in CLIENTS))
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after all opened")
    parser.add_argument("--duration", type=float, default=FULL_RUN_DURATION_S)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--smoke", action="store_true", help="10 clients, 2 s windows, no docs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.clients, args.warmup, args.duration = "10", 1.5, 2.0
        if args.results == RESULTS:
            args.results = REPO / "bench" / "build" / "transports-smoke.jsonl"
    args.transports = args.transports.split(",")
    args.clients = [int(n) for n in args.clients.split(",")]
    unknown = [t for t in args.transports if t not in TRANSPORTS]
    if unknown:
        parser.error(f"unknown transports: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every cell; append them to ``--results``; rewrite the docs after a full run."""
    args = parse_args(argv)
    if not args.smoke and importlib.util.find_spec("matplotlib") is None:
        # The plot needs the ``bench`` extra's matplotlib; install it before the long run.
        command = [sys.executable, "-m", "pip", "install", "-q", "matplotlib>=3.8"]
        print("+", shlex.join(command), flush=True)
        subprocess.run(command, check=True)
    os.sched_setaffinity(0, {bench_run.DRIVER_CORE})  # keep this harness off the server's core
    # 10,000 clients are 10,000 sockets in each process; the children inherit the limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    run_id = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    args.logs = REPO / "bench" / "build" / "logs" / run_id
    argv_text = argv if argv is not None else sys.argv[1:]
    header = {
        "type": "run",
        "run_id": run_id,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["bench/transports/measure.py", *argv_text]),
        "machine": bench_run.machine_info(),
        "versions": bench_run.library_versions(),
        "params": {
            "transports": args.transports,
            "clients": args.clients,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "server_core": bench_run.SERVER_CORE,
            "driver_core": bench_run.DRIVER_CORE,
            "fd_limit": hard,
        },
        "headers": json.loads((HERE / "chromium_headers.json").read_text())["browser"],
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    failures = 0
    with args.results.open("a") as results:
        results.write(json.dumps(header) + "\n")
        for clients in args.clients:
            for transport in args.transports:
                entry: dict[str, Any] = {"type": "cell", "run_id": run_id}
                entry |= {"transport": transport, "clients": clients}
                try:
                    entry |= {"ok": True, **measure_cell(transport, clients, args)}
                    summary = (
                        f"{entry['msgs_per_s']:,.0f} msg/s of {clients:,}, "
                        f"{entry.get('bytes_in_per_msg')} B in + "
                        f"{entry.get('bytes_out_per_msg')} B out per message, "
                        f"loadgen {entry['driver_cpu_pct']}%, server {entry['measured_cpu_pct']}%"
                    )
                except bench_run.BenchError as exc:
                    failures += 1
                    entry |= {"ok": False, "error": str(exc)}
                    summary = f"FAILED: {exc}"
                print(f"{transport} x {clients:,}: {summary}", flush=True)
                results.write(json.dumps(entry) + "\n")
                results.flush()
        elapsed = round(time.monotonic() - started, 1)
        results.write(
            json.dumps({"type": "run_end", "run_id": run_id, "elapsed_s": elapsed}) + "\n"
        )
    print(f"run {run_id}: {elapsed:.0f} s, {failures} failed cells: {args.results}")
    if args.duration >= FULL_RUN_DURATION_S and args.results == RESULTS:
        import report

        report.write(run_id, args.results)
        print("wrote the measured section of docs/transports.md and docs/transports-bench.png")
    elif not args.smoke:
        print("(windows under 10 s: docs/transports.md left as it is)")
    return 1 if failures and args.smoke else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
