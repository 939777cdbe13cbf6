"""Benchmark uvicorn's WebSocket implementations behind a FastAPI echo route.

    make bench-asgi                            # 3 rounds of (b), (c) and idle memory
    .venv/bin/python bench/asgi.py --quick     # one short round of each

The server is bench/servers/fastapi_server.py under uvicorn with uvloop and httptools, once
per implementation: fullduplex.asgi, websockets-sansio and wsproto. The cells are bench/run.py's:
(b) 100 connections, 32 B text, one message in flight each; (c) 100 connections, 256 B text,
16 in flight each; and idle memory: RSS per open, idle connection. The machinery is bench/run.py's
too: the server pinned to core 1 and the C load generator (bench/loadgen.c) to core 0, a warmup,
then a measured window, the server's CPU time and RSS read from /proc. Rounds are appended to
bench/results/asgi.jsonl; the end prints a Markdown table with the ratios of fullduplex to the
faster (or smaller) of the other two, which docs/benchmarks.md quotes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py

IMPLEMENTATIONS = ("fullduplex", "websockets-sansio", "wsproto")
RESULTS = run.BENCH / "results" / "asgi.jsonl"
IDLE_CONNECTIONS = 5_000
QUICK_IDLE_CONNECTIONS = 1_000


def server_command(implementation: str) -> list[str]:
    return [
        sys.executable,
        "bench/servers/fastapi_server.py",
        "--ws",
        implementation,
        "--port",
        "0",
    ]


def measure(options: run.Options, record: run.Record, cells: tuple[str, ...]) -> None:
    for cell_id in cells:
        for implementation in IMPLEMENTATIONS:
            print(f"cell {cell_id} / {implementation}", flush=True)
            log = options.logs / f"asgi-{cell_id}-{implementation}.log"
            command = server_command(implementation)
            for n in range(1, options.rounds + 1):
                entry: dict[str, Any] = {"cell": cell_id, "server": implementation, "round": n}
                try:
                    # A fresh server each round, so that one round's memory does not flatter
                    # the next.
                    with run.started(command, run.SERVER_CORE, log) as (process, port):
                        if cell_id == "idle":
                            result = run.idle_round(process, port, options)
                        else:
                            result = run.echo_round(run.CELLS[cell_id], process, port, options)
                except run.BenchError as exc:
                    print(f"  round {n}: FAILED: {exc}", flush=True)
                    record({**entry, "ok": False, "error": str(exc)})
                    continue
                if cell_id == "idle":
                    print(f"  round {n}: {result['kib_per_connection']:.2f} KiB/conn", flush=True)
                else:
                    print(
                        f"  round {n}: {result['msgs_per_s']:,.0f} msg/s, "
                        f"{result['cpu_us_per_msg']} us CPU/msg, "
                        f"background {result['background_cpu_pct']}%",
                        flush=True,
                    )
                record({**entry, "ok": True, **result})


def table(records: list[dict[str, Any]]) -> str:
    """The medians per cell and implementation, and fullduplex's ratio to the best other."""

    def median(cell: str, implementation: str, key: str) -> float | None:
        values = [
            r[key]
            for r in records
            if r["ok"] and r["cell"] == cell and r["server"] == implementation
        ]
        return statistics.median(values) if values else None

    lines = [
        "| cell | fullduplex | websockets-sansio | wsproto | fullduplex vs the best other |",
        "|---|---:|---:|---:|---:|",
    ]
    for cell, key, unit, higher_is_better in (
        ("b", "msgs_per_s", "msg/s", True),
        ("c", "msgs_per_s", "msg/s", True),
        ("idle", "kib_per_connection", "KiB/conn", False),
    ):
        values = {i: median(cell, i, key) for i in IMPLEMENTATIONS}
        others = [v for i, v in values.items() if i != "fullduplex" and v is not None]
        ours = values["fullduplex"]
        ratio = "n/a"
        if ours is not None and others:
            best = max(others) if higher_is_better else min(others)
            ratio = f"{ours / best:.2f}x" if higher_is_better else f"{best / ours:.2f}x smaller"
        shown = [f"{v:,.0f} {unit}" if v and v > 100 else f"{v} {unit}" for v in values.values()]
        title = {"b": "(b) 32 B, K=1", "c": "(c) 256 B, K=16", "idle": "idle memory"}[cell]
        lines.append(f"| {title} | {' | '.join(shown)} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="uvicorn WebSocket implementations under load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="1 round, 0.5 s warmup, 1 s windows")
    parser.add_argument("--smoke", action="store_true", help="the test suite's run: cell c, ~10 s")
    args = parser.parse_args(argv)
    if args.quick or args.smoke:
        args.rounds, args.warmup, args.duration = 1, 0.5, 1.0
    if args.smoke:
        args.warmup, args.duration = 0.3, 0.5
    run.os.sched_setaffinity(0, {run.DRIVER_CORE})  # keep this harness off the measured core
    run.build_c_programs()
    run_id = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    options = run.Options(
        rounds=args.rounds,
        warmup=args.warmup,
        duration=args.duration,
        loop="uvloop",
        idle_connections=QUICK_IDLE_CONNECTIONS if args.quick else IDLE_CONNECTIONS,
        logs=run.BUILD / "logs" / run_id,
    )
    header = {
        "type": "run",
        "run_id": run_id,
        "command": " ".join(["bench/asgi.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": run.machine_info(),
        "versions": run.library_versions(),
    }
    results_path = run.BUILD / "asgi-smoke.jsonl" if args.smoke else RESULTS
    results_path.parent.mkdir(parents=True, exist_ok=True)
    with results_path.open("a") as results:
        results.write(json.dumps(header) + "\n")

        def record(entry: dict[str, Any]) -> None:
            options.records.append(entry)
            results.write(json.dumps({"type": "round", "run_id": run_id, **entry}) + "\n")
            results.flush()

        measure(options, record, ("c",) if args.smoke else ("b", "c", "idle"))
    print(f"\nrun {run_id}, load average at start {header['machine']['loadavg_at_start']}:\n")
    print(table(options.records))
    return 1 if any(not r["ok"] for r in options.records) else 0


if __name__ == "__main__":
    sys.exit(main())
