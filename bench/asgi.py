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
faster (or smaller) of the other two. A run of 3 or more rounds of at least 5 s also rewrites
that section of docs/benchmarks.md, between markers that bench/report.py keeps when it
rewrites the page.
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
    """The medians per cell and implementation, and fullduplex's ratio to the best other: in
    messages per second, in the server's CPU time per message (which depends less on what
    else the machine runs), and in memory per idle connection."""

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
    rows: tuple[tuple[str, str, str, str, bool | None], ...] = (
        ("b", "(b) 32 B, K=1", "msgs_per_s", "msg/s", True),
        ("b", "(b) CPU per message", "cpu_us_per_msg", "µs", False),
        ("c", "(c) 256 B, K=16", "msgs_per_s", "msg/s", True),
        ("c", "(c) CPU per message", "cpu_us_per_msg", "µs", False),
        ("idle", "memory per idle connection", "kib_per_connection", "KiB", False),
        # Not a result: how busy the rest of the machine was while each was measured.
        ("b", "(b) other processes' CPU", "background_cpu_pct", "%", None),
        ("c", "(c) other processes' CPU", "background_cpu_pct", "%", None),
    )
    for cell, title, key, unit, higher_is_better in rows:
        values = {i: median(cell, i, key) for i in IMPLEMENTATIONS}
        others = [v for i, v in values.items() if i != "fullduplex" and v is not None]
        ours = values["fullduplex"]
        ratio = "n/a" if higher_is_better is not None else ""
        if ours and others and higher_is_better is not None:
            best = max(others) if higher_is_better else min(others)
            ratio = f"{ours / best:.2f}x" if higher_is_better else f"{best / ours:.2f}x less"
        shown = [
            "n/a" if v is None else f"{v:,.0f} {unit}" if v >= 1000 else f"{v:.2f} {unit}"
            for v in values.values()
        ]
        lines.append(f"| {title} | {' | '.join(shown)} | {ratio} |")
    return "\n".join(lines)


SECTION_TITLE = "FastAPI under uvicorn: WebSocket implementations"
MARKDOWN = run.REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench/asgi: begin -->", "<!-- bench/asgi: end -->"


def section(results_path: Path = RESULTS) -> str:
    """The Markdown section of the last finished run of 3 or more rounds, or "" if none."""
    if not results_path.exists():
        return ""
    headers: dict[str, dict[str, Any]] = {}
    rounds: dict[str, list[dict[str, Any]]] = {}
    finished = []
    for line in results_path.read_text().splitlines():
        entry = json.loads(line)
        if entry["type"] == "run":
            headers[entry["run_id"]] = entry
        elif entry["type"] == "run_end":
            finished.append(entry["run_id"])
        else:
            rounds.setdefault(entry["run_id"], []).append(entry)
    full = [r for r in finished if headers[r].get("params", {}).get("rounds", 0) >= 3]
    if not full:
        return ""
    run_id = full[-1]
    header, records = headers[run_id], rounds.get(run_id, [])
    machine, params = header["machine"], header["params"]
    versions = header["versions"]
    background = [r["background_cpu_pct"] for r in records if "background_cpu_pct" in r]
    lines = [
        BEGIN,
        f"## {SECTION_TITLE}",
        "",
        "Echo through a FastAPI WebSocket route (`bench/servers/fastapi_server.py`) under uvicorn "
        "with uvloop and httptools, for each of uvicorn's WebSocket implementations: "
        "`--ws fullduplex.asgi:WebSocketProtocol`, `websockets-sansio`, `wsproto`. Cells (b) and "
        "(c) as above; idle memory: RSS per open idle connection "
        f"({params['idle_connections']:,} connections, the app waiting in `receive`). "
        f"Medians of {params['rounds']} rounds of {params['duration_s']} s after "
        f"{params['warmup_s']} s of warmup, a fresh server each round, server on core "
        f"{run.SERVER_CORE} and load generator on core {run.DRIVER_CORE} (taskset).",
        "",
        "```sh",
        "make bench-asgi        # or: .venv/bin/python bench/asgi.py",
        "```",
        "",
        f"Run `{run_id}`, {machine['cpu_model']}, {machine['cores']} cores, Python "
        f"{machine['python']}, fullduplex {versions.get('fullduplex_git')}; load average at "
        f"start {', '.join(machine['loadavg_at_start'])}; other processes used a median "
        f"{statistics.median(background) if background else 0:.0f}% of a core during the "
        "measured windows.",
    ]
    if header.get("note"):
        lines += ["", f"**{header['note']}**"]
    lines += ["", table(records), END]
    return "\n".join(lines) + "\n"


def write_section() -> None:
    """Put `section()` in docs/benchmarks.md, in place of the previous one or at the end."""
    page = MARKDOWN.read_text() if MARKDOWN.exists() else ""
    text = section()
    if BEGIN in page and END in page:
        before, rest = page.split(BEGIN, 1)
        page = before + text.rstrip("\n") + rest.split(END, 1)[1]
    else:
        page = page.rstrip("\n") + "\n\n" + text
    MARKDOWN.write_text(page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="uvicorn WebSocket implementations under load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="1 round, 0.5 s warmup, 1 s windows")
    parser.add_argument("--smoke", action="store_true", help="the test suite's run: cell c, ~10 s")
    parser.add_argument(
        "--note", default="", help="what to say next to the numbers (e.g. how busy the machine was)"
    )
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
        "params": {
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "idle_connections": options.idle_connections,
            "smoke": args.smoke,
        },
        "note": args.note,
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
        results.write(json.dumps({"type": "run_end", "run_id": run_id}) + "\n")
    print(f"\nrun {run_id}, load average at start {header['machine']['loadavg_at_start']}:\n")
    print(table(options.records))
    if args.rounds >= 3 and args.duration >= 5 and not args.smoke:
        write_section()
        print(f"\nwrote the section {SECTION_TITLE!r} of docs/benchmarks.md")
    return 1 if any(not r["ok"] for r in options.records) else 0


if __name__ == "__main__":
    sys.exit(main())
