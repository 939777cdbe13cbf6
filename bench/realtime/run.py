"""Benchmark the Socket.IO servers: fullduplex, python-socketio and the Node reference.

    make bench-realtime                           # or: .venv/bin/python bench/realtime/run.py
    .venv/bin/python bench/realtime/run.py --quick  # one short round of everything; no docs
    .venv/bin/python bench/realtime/run.py --servers fullduplex,node --rounds 5

In one run, each server (bench/realtime/servers/: fullduplex's ``Server`` on ``fullduplex.serve``;
python-socketio under uvicorn with uvloop and httptools; socket.io 4.8 on Node) answers the same
two events: ``echo`` acknowledges its arguments, ``fanout`` broadcasts ``tick`` to every client.
The load generator (bench/realtime/loadgen.mjs: Node, raw ``ws`` WebSockets and a minimal
HTTP/1.1 client for long-polling, no socket.io-client) measures:

1. echo-with-ack over WebSocket: 100 clients, each with one acknowledged event in flight;
2. the same over HTTP long-polling;
3. fan-out: 1,000 and then 10,000 clients connected over WebSocket; one of them asks for a
   broadcast carrying the load generator's clock, and each client records when it arrives:
   per broadcast the p50 and p99 over the clients and the time until the last one has it
   (medians over the broadcasts);
4. memory per connected client: the growth of the server's RSS from before the clients
   connect to 1 s after the last one did, over their number (fresh server per size).

As bench/run.py: the server runs pinned to core 1 and the load generator to core 0, both at
``nice -n -10`` when run as root; the server's and the load generator's CPU time come from
/proc around each measured window, so the table shows whether the load side kept up. Rounds
are appended to bench/results/realtime.jsonl; a full run (>= 3 rounds of >= 3 s) also writes
the Socket.IO section of docs/benchmarks.md. Every process is stopped by PID, every wait bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # bench/run.py: process control, /proc sampling, machine description

HERE = Path(__file__).resolve().parent
RESULTS = run.BENCH / "results" / "realtime.jsonl"
DOCS = run.REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench/realtime: begin -->", "<!-- bench/realtime: end -->"

SERVERS = {
    "fullduplex": [sys.executable, "bench/realtime/servers/fullduplex_server.py"],
    "python-socketio": [sys.executable, "bench/realtime/servers/python_socketio_server.py"],
    "node": ["node", "bench/realtime/servers/node_server.mjs"],
}
TITLES = {
    "fullduplex": "fullduplex",
    "python-socketio": "python-socketio + uvicorn/uvloop",
    "node": "socket.io (Node)",
}
LOADGEN = ["node", "bench/realtime/loadgen.mjs"]


def install() -> None:
    """python-socketio (the ``bench`` extra's pin) and bench/realtime's Node packages."""
    if importlib.util.find_spec("socketio") is None:
        extras = run.tomllib.loads((run.REPO / "pyproject.toml").read_text())
        pins = [
            spec
            for spec in extras["project"]["optional-dependencies"]["bench"]
            if spec.startswith("python-socketio")
        ]
        print("+ pip install", *pins, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pins], check=True)
    run.ensure_system_packages("nodejs", "npm")
    stamp = HERE / "node_modules" / ".installed"
    lock = HERE / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        print("+ npm ci (bench/realtime/)", flush=True)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True
        )
        stamp.touch()


def versions() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in ("fullduplex", "python-socketio", "python-engineio", "uvicorn", "uvloop"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    for name in ("socket.io", "engine.io", "ws"):
        package = HERE / "node_modules" / name / "package.json"
        found[name] = json.loads(package.read_text())["version"] if package.exists() else None
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=run.REPO
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src"], capture_output=True, text=True, cwd=run.REPO
    )
    found["fullduplex_git"] = git.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return found


@contextlib.contextmanager
def loadgen(arguments: list[str], timeout: float) -> Iterator[tuple[subprocess.Popen[str], Any]]:
    """Start the load generator on the driver core; yield it and an iterator of its events."""
    process = subprocess.Popen(
        [*run.priority_prefix(), "taskset", "-c", str(run.DRIVER_CORE), *LOADGEN, *arguments],
        cwd=run.REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    run.prioritize(process)
    deadline = time.monotonic() + timeout

    def events() -> Iterator[dict[str, Any]]:
        while True:
            line = run._read_line(process, deadline)
            if not line:
                break
            if line.startswith("{"):
                yield json.loads(line)
        if time.monotonic() >= deadline:
            raise run.BenchError(f"the load generator timed out after {timeout:.0f} s")

    try:
        yield process, events()
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        run.stop(process, grace=2)
        if process.stderr is not None:
            process.stderr.close()


def echo_round(server: subprocess.Popen[str], port: int, transport: str, opts: Any) -> dict:
    arguments = ["--port", str(port), "--mode", "echo", "--transport", transport]
    arguments += ["--clients", str(opts.clients), "--size", "32"]
    arguments += ["--warmup", str(opts.warmup), "--duration", str(opts.duration)]
    start = end = None
    result: dict[str, Any] = {}
    with loadgen(arguments, opts.warmup + opts.duration + 60) as (process, events):
        for event in events:
            if event["event"] == "measure_start":
                start = run.Sample.take(server.pid, process.pid)
            elif event["event"] == "measure_end":
                end = run.Sample.take(server.pid, process.pid)
                result.update(run.memory_kib(server.pid))
            elif event["event"] in ("connected", "result"):
                result.update({k: v for k, v in event.items() if k != "event"})
    if result.get("errors") or start is None or end is None:
        raise run.BenchError(f"echo over {transport}: {result.get('first_error') or result}")
    result.update(run.window(start, end))
    # Load-independent: on a shared machine the server gets what the others leave of its core.
    result["server_cpu_us_per_event"] = round(result["measured_cpu_s"] / result["acks"] * 1e6, 1)
    return result


def fanout_round(server: subprocess.Popen[str], port: int, clients: int, opts: Any) -> dict:
    time.sleep(0.5)
    baseline = run.memory_kib(server.pid)["rss_kib"]
    arguments = ["--port", str(port), "--mode", "fanout", "--clients", str(clients)]
    arguments += ["--broadcasts", str(opts.broadcasts)]
    start = end = None
    result: dict[str, Any] = {"baseline_rss_kib": baseline}
    with loadgen(arguments, 240) as (process, events):
        for event in events:
            if event["event"] == "connected":
                time.sleep(1.0)
                rss = run.memory_kib(server.pid)["rss_kib"]
                result.update(
                    connect_s=event["connect_s"],
                    rss_kib=rss,
                    kib_per_client=round((rss - baseline) / clients, 2),
                )
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            elif event["event"] == "measure_start":
                start = run.Sample.take(server.pid, process.pid)
            elif event["event"] == "measure_end":
                end = run.Sample.take(server.pid, process.pid)
            elif event["event"] == "result":
                result.update({k: v for k, v in event.items() if k != "event"})
    if result.get("errors") or start is None or end is None:
        raise run.BenchError(f"fan-out to {clients}: {result.get('first_error') or result}")
    result.update(run.window(start, end))
    return result


def measure(opts: Any, record: Any) -> None:
    for server in opts.servers:
        command = [*SERVERS[server], "--port", "0"]
        log = opts.logs / f"{server}.log"
        print(f"{server}: echo with ack, {opts.clients} clients", flush=True)
        try:
            with run.started(command, run.SERVER_CORE, log) as (process, port):
                for transport in ("websocket", "polling"):
                    for n in range(1, opts.rounds + 1):
                        entry = {"cell": f"echo-{transport}", "server": server, "round": n}
                        try:
                            result = echo_round(process, port, transport, opts)
                        except run.BenchError as exc:
                            print(f"  {transport} round {n}: FAILED: {exc}", flush=True)
                            record({**entry, "ok": False, "error": str(exc)})
                            continue
                        print(
                            f"  {transport} round {n}: {result['events_per_s']:,} events/s, "
                            f"server CPU {result['measured_cpu_pct']}%, "
                            f"load generator CPU {result['driver_cpu_pct']}%, "
                            f"background {result['background_cpu_pct']}%",
                            flush=True,
                        )
                        record({**entry, "ok": True, **result})
        except run.BenchError as exc:
            print(f"  FAILED: {exc}", flush=True)
            record({"cell": "echo", "server": server, "round": 0, "ok": False, "error": str(exc)})
        for clients in opts.fanout:
            # A fresh server per size: its RSS before the clients is the memory baseline.
            entry = {"cell": f"fanout-{clients}", "server": server, "round": 1}
            print(f"{server}: fan-out to {clients:,} clients", flush=True)
            try:
                with run.started(command, run.SERVER_CORE, log) as (process, port):
                    result = fanout_round(process, port, clients, opts)
            except run.BenchError as exc:
                print(f"  FAILED: {exc}", flush=True)
                record({**entry, "ok": False, "error": str(exc)})
                continue
            latency = result["latency_ms"]
            print(
                f"  p50 {latency['p50']} ms, p99 {latency['p99']} ms, last {latency['last']} ms, "
                f"{result['kib_per_client']} KiB/client, connected in {result['connect_s']} s",
                flush=True,
            )
            record({**entry, "ok": True, **result})


# --- report -----------------------------------------------------------------------------------


def _median(records: list[dict[str, Any]], cell: str, server: str, *keys: str) -> float | None:
    values = []
    for entry in records:
        if entry["ok"] and entry["cell"] == cell and entry["server"] == server:
            value: Any = entry
            for key in keys:
                value = value[key]
            values.append(value)
    return statistics.median(values) if values else None


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "failed"
    return f"{value:,.{digits}f}"


def _ratio(ours: float | None, theirs: float | None, lower_is_better: bool = False) -> str:
    if not ours or not theirs:
        return "n/a"
    return f"{(theirs / ours) if lower_is_better else (ours / theirs):.2f}x"


def tables(
    records: list[dict[str, Any]], servers: list[str], fanout: list[int], clients: int
) -> list[str]:
    """The Markdown tables: medians of the rounds, and fullduplex's ratios to the others."""
    out = [
        f"| echo with ack, {clients} clients | events/s (rounds) | fullduplex ÷ it | "
        "server CPU µs/event | fullduplex ÷ it, by CPU | p50 ms | p99 ms | server CPU % | "
        "load generator CPU % | background CPU % |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for transport in ("websocket", "polling"):
        cell = f"echo-{transport}"
        ours = _median(records, cell, "fullduplex", "events_per_s")
        our_cost = _median(records, cell, "fullduplex", "server_cpu_us_per_event")
        for server in servers:
            rate = _median(records, cell, server, "events_per_s")
            cost = _median(records, cell, server, "server_cpu_us_per_event")
            is_ours = server == "fullduplex"
            rounds = " / ".join(
                f"{r['events_per_s']:,}"
                for r in records
                if r["ok"] and r["cell"] == cell and r["server"] == server
            )
            out.append(
                f"| {transport}: {TITLES[server]} | {_number(rate)} ({rounds or '-'}) | "
                f"{'—' if is_ours else _ratio(ours, rate)} | {_number(cost, 1)} | "
                f"{'—' if is_ours else _ratio(our_cost, cost, lower_is_better=True)} | "
                f"{_number(_median(records, cell, server, 'latency_ms', 'p50'), 2)} | "
                f"{_number(_median(records, cell, server, 'latency_ms', 'p99'), 2)} | "
                f"{_number(_median(records, cell, server, 'measured_cpu_pct'))} | "
                f"{_number(_median(records, cell, server, 'driver_cpu_pct'))} | "
                f"{_number(_median(records, cell, server, 'background_cpu_pct'))} |"
            )
    out += [
        "",
        "| fan-out | p50 ms | p99 ms | last client ms | worst p99 / last ms | "
        "server CPU ms per broadcast | load generator CPU ms per broadcast | KiB per client | "
        "connect s | server CPU % | background CPU % |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for clients in fanout:
        cell = f"fanout-{clients}"
        for server in servers:
            row = next(
                (r for r in records if r["ok"] and r["cell"] == cell and r["server"] == server),
                None,
            )
            if row is None:
                out.append(f"| {clients:,} clients: {TITLES[server]} | failed |" + " |" * 9)
                continue
            latency, worst = row["latency_ms"], row["worst_ms"]
            out.append(
                f"| {clients:,} clients: {TITLES[server]} | {latency['p50']:.1f} | "
                f"{latency['p99']:.1f} | {latency['last']:.1f} | "
                f"{worst['p99']:.1f} / {worst['last']:.1f} | "
                f"{1000 * row['measured_cpu_s'] / row['broadcasts']:.0f} | "
                f"{10 * row['driver_cpu_pct'] * row['window_s'] / row['broadcasts']:.0f} | "
                f"{row['kib_per_client']:.2f} | {row['connect_s']:.1f} | "
                f"{row['measured_cpu_pct']:.0f} | {row['background_cpu_pct']:.0f} |"
            )
    return out


def targets(records: list[dict[str, Any]]) -> list[str]:
    """The issue's bars, measured in this run: by events/s, and by server CPU per event, for
    echo with ack over each transport."""
    p99 = _median(records, "fanout-10000", "fullduplex", "latency_ms", "p99")

    def met(ok: bool | None) -> str:
        return "?" if ok is None else ("yes" if ok else "**no**")

    def bar(cell: str, factor: float, theirs: str) -> str:
        ours, rate = (_median(records, cell, s, "events_per_s") for s in ("fullduplex", theirs))
        cost = "server_cpu_us_per_event"
        our_cost, theirs_cost = (_median(records, cell, s, cost) for s in ("fullduplex", theirs))
        by_rate = None if not ours or not rate else ours >= factor * rate
        by_cpu = None if not our_cost or not theirs_cost else theirs_cost >= factor * our_cost
        return (
            f"{_ratio(ours, rate)} / {_ratio(our_cost, theirs_cost, lower_is_better=True)} | "
            f"{met(by_rate)} / {met(by_cpu)} |"
        )

    lines = ["| target | measured: events/s / server CPU per event | met |", "|---|--:|:-:|"]
    for transport in ("WebSocket", "long-polling"):
        cell = "echo-websocket" if transport == "WebSocket" else "echo-polling"
        lines += [
            f"| echo with ack ({transport}) >= 3x python-socketio | "
            + bar(cell, 3, "python-socketio"),
            f"| echo with ack ({transport}) >= Node socket.io | " + bar(cell, 1, "node"),
        ]
    return [
        *lines,
        f"| fan-out to 10,000 clients: p99 < 100 ms | {_number(p99, 1)} ms (server CPU per "
        f"broadcast: {_number(_cpu_per_broadcast(records, 'fullduplex'))} ms; Node "
        f"{_number(_cpu_per_broadcast(records, 'node'))} ms) | "
        f"{met(None if p99 is None else p99 < 100)} |",
    ]


def _cpu_per_broadcast(records: list[dict[str, Any]], server: str) -> float | None:
    for entry in records:
        if entry["ok"] and entry["cell"] == "fanout-10000" and entry["server"] == server:
            return float(1000 * entry["measured_cpu_s"] / entry["broadcasts"])
    return None


def _load_note(background: list[float]) -> str:
    """What the other processes on the machine did during the run, in one sentence."""
    median = statistics.median(background) if background else 0.0
    spread = (
        f"background CPU: median {median:.0f}% of a core, up to {max(background, default=0):.0f}%"
    )
    if median < 5:
        return f"The machine was quiet during this run ({spread})."
    return (
        f"**The machine was shared with other work during this run** ({spread}), so absolute "
        "numbers are low and noisy: judge by the ratios, measured side by side in this run."
    )


def section(header: dict[str, Any], records: list[dict[str, Any]], elapsed: float) -> str:
    machine, params, found = header["machine"], header["params"], header["versions"]
    background = [r["background_cpu_pct"] for r in records if r["ok"]]
    lines = [
        BEGIN,
        "## Socket.IO servers (`make bench-realtime`)",
        "",
        f"Run `{header['run_id']}` ({header['started']}, {elapsed / 60:.0f} minutes): "
        f"`{header['command']}` at `{found['fullduplex_git']}`; raw rounds in "
        "[`bench/results/realtime.jsonl`](../bench/results/realtime.jsonl). Machine: "
        f"{machine['cpu_model']}, {machine['cores']} cores ({machine['hypervisor'] or 'bare'}), "
        f"Python {machine['python']}, Node {machine['node']}; load average at start "
        f"{' '.join(machine['loadavg_at_start'])}. {_load_note(background)}",
        "",
        f"Servers: fullduplex {found['fullduplex']} "
        "(`bench/realtime/servers/fullduplex_server.py`, "
        f"uvloop); python-socketio {found['python-socketio']} / python-engineio "
        f"{found['python-engineio']} under uvicorn {found['uvicorn']} with uvloop "
        f"{found['uvloop']} and httptools; socket.io {found['socket.io']} (engine.io "
        f"{found['engine.io']}) on Node. Each answers `echo` with an ack of its arguments and "
        "`fanout` with a broadcast of `tick` to every client; defaults otherwise (ping interval "
        "25 s, no compression, no connection-state recovery).",
        "",
        "Method: the server pinned to core 1, the load generator (`bench/realtime/loadgen.mjs`: "
        "one Node process, raw `ws` WebSockets and a minimal HTTP/1.1 client for long-polling, "
        "speaking the Engine.IO/Socket.IO packets itself) pinned to core 0. Echo: "
        f"{params['clients']} clients each keep one `echo` event with a 32-byte string in flight "
        "and send the next when its ack arrives (the ack is checked); "
        f"{params['rounds']} rounds of {params['warmup_s']} s warmup + {params['duration_s']} s "
        "measured against one server, median (rounds in brackets). Long-polling: each client "
        "keeps a GET pending and POSTs its events, on two keep-alive connections. Fan-out: a "
        "fresh server, N WebSocket clients connected 200 at a time; one asks for a broadcast "
        "carrying the load generator's clock; each client records when it arrives; "
        f"{params['broadcasts']} broadcasts 0.2 s apart, medians of each broadcast's p50, p99 and "
        "last arrival (worst broadcast beside them), and the server's CPU time over the "
        "window per broadcast, which does not depend on how much of its core the server got. "
        "The latencies include the load generator's "
        "own time to read 1,000 or 10,000 messages on one core (its CPU per broadcast is "
        "shown; for the fan-out it reads WebSocket frames off raw TCP sockets, without `ws`). "
        "KiB per client: the server's RSS "
        "1 s after the last client connected, minus its RSS before, over N. Server and load "
        "generator CPU % are their shares of one core over the measured window, from /proc.",
        "",
        *targets(records),
        "",
        *tables(records, params["servers"], params["fanout"], params["clients"]),
        "",
        "Where fullduplex's time goes (py-spy and in-process timing, 2026-12-06). Echo with "
        "ack over WebSocket: an event runs in one chain of calls inside the read that brought"
        " it (the WebSocket's message callback, Engine.IO, Socket.IO, then the handler's "
        "first step; a task only if it suspends), and its ack leaves in that read's one "
        "write. Engine.IO, Socket.IO, JSON and the handler took 9.0 µs per event measured in "
        "process at `ac35960` and take 3.3 µs at `c26be46`: the handler is called as its own "
        "coroutine (no wrapper coroutines) and its ack is written without one; an EVENT or "
        "ACK for `/` is parsed without the regular expression and an ack written without a "
        "`Packet`; packets are NamedTuples (a frozen dataclass took 0.6 µs to build); enum "
        "members are read from module constants (0.3 µs a lookup on Python 3.11); JSON goes "
        "through orjson when the `speed` extra is installed. With the core's fast read "
        "(`2fd07b5`) the server's CPU per event fell from 24.3 µs (run "
        "`20261206T054927Z-17883f`) to about 10 µs in quick runs on the loaded machine. What "
        "remains is mostly the kernel: the write system call is about a third of the samples,"
        " the event loop (epoll and the read) a fifth. Both sides make one read and one write"
        " system call per event, so the load generator needs about as much CPU per event as "
        "fullduplex (see its CPU column): near 100,000 events/s both cores are full, and the "
        "events/s ratio then understates fullduplex while the CPU ratio does not. Over "
        "long-polling (two HTTP requests per event) both servers make the same system calls "
        "(per event two reads and two writes, one epoll wait per 50 events or so), so the "
        "difference is user-space work: at `b692381` fullduplex spent 65.5 µs per event "
        "(0.77x Node), the HTTP/1.1 server taking about 60% of the samples. Since then a "
        "request answered without waiting runs with no coroutine and no task "
        "(`Endpoint.handle_http_nowait`, `NativeExchange.respond_nowait`: Engine.IO's polls, "
        "POSTs and handshakes; a held poll is answered from its future's callback), and the "
        "requests read in one turn of the loop are answered in the next (answering inside "
        "each read measured 15-25% more CPU per event: the load generator then sends in "
        "smaller batches); a plainly valid request head is parsed in C "
        "(`_speedups.parse_request_head`; the Python parser takes the rest and refuses what "
        "is wrong), request events are tuples, a keep-alive response's head up to "
        "Content-Length is made once per status and fields; parsing and answering a poll "
        "went from 6.3 to about 3 µs in process. Fan-out: the realtime and "
        "Engine.IO layers spend 0.5 µs per recipient (5 ms of a broadcast to 10,000, timed in"
        " process); the rest is the connection's send path and one write system call per "
        "recipient. Until `e199cd9` a connection that had written at once deferred its next "
        "write with `call_soon` to the end of the loop turn (py-spy at `f126702`: 22% of the "
        "samples in scheduling them), so every other broadcast reached no recipient before "
        "the broadcast loop had been through all 10,000; since then loop turns are counted "
        "per event loop, and each recipient's first send of a turn is written at once.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_docs(text: str) -> None:
    """Put the section into docs/benchmarks.md: in place of the last one, or at the end."""
    page = DOCS.read_text()
    if BEGIN in page and END in page:
        before, rest = page.split(BEGIN, 1)
        page = before + text.rstrip("\n") + rest.split(END, 1)[1]
    else:
        page = page.rstrip("\n") + "\n\n" + text
    DOCS.write_text(page)


def load(path: Path, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """The header, rounds and elapsed seconds of run ``run_id`` in ``path``."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    mine = [e for e in entries if e["run_id"] == run_id]
    header = next(e for e in mine if e["type"] == "run")
    end = next(e for e in mine if e["type"] == "run_end")
    return header, [e for e in mine if e["type"] == "round"], end["elapsed_s"]


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the Socket.IO servers")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=100, help="echo clients")
    parser.add_argument("--fanout", default="1000,10000", help="fan-out sizes, comma-separated")
    parser.add_argument("--broadcasts", type=int, default=10, help="broadcasts per fan-out size")
    parser.add_argument("--quick", action="store_true", help="1 round, short windows, no docs")
    parser.add_argument("--smoke", action="store_true", help="the test suite's run: ~5 s")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-install", action="store_true", help="skip pip and npm")
    parser.add_argument(
        "--report", metavar="RUN_ID", help="only rewrite the docs section from a recorded run"
    )
    args = parser.parse_args(argv)
    if args.report:
        write_docs(section(*load(args.results, args.report)))
        return 0
    if args.quick or args.smoke:
        args.rounds, args.warmup, args.duration = 1, 0.5, 1.0
    if args.smoke:
        args.servers, args.clients, args.fanout, args.broadcasts = "fullduplex", 10, "50", 3
        args.warmup, args.duration, args.no_install = 0.2, 0.5, True
        if args.results == RESULTS:
            args.results = run.BUILD / "realtime-smoke.jsonl"
    args.servers = args.servers.split(",")
    args.fanout = [int(n) for n in args.fanout.split(",") if n]
    unknown = [s for s in args.servers if s not in SERVERS]
    if unknown:
        parser.error(f"unknown servers: {', '.join(unknown)}")

    os.sched_setaffinity(0, {run.DRIVER_CORE})  # keep this harness off the measured core
    with contextlib.suppress(ValueError, OSError):
        # 10,000 clients: the load generator and the servers inherit the hard limit.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not args.no_install:
        install()
    run_id = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    args.logs = run.BUILD / "logs" / f"realtime-{run_id}"
    header = {
        "type": "run",
        "run_id": run_id,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["bench/realtime/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": run.machine_info(),
        "versions": versions(),
        "params": {
            "servers": args.servers,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "clients": args.clients,
            "fanout": args.fanout,
            "broadcasts": args.broadcasts,
            "server_core": run.SERVER_CORE,
            "driver_core": run.DRIVER_CORE,
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        },
    }
    records: list[dict[str, Any]] = []
    args.results.parent.mkdir(parents=True, exist_ok=True)
    started_at = time.monotonic()
    with args.results.open("a") as results:
        results.write(json.dumps(header) + "\n")

        def record(entry: dict[str, Any]) -> None:
            records.append(entry)
            results.write(json.dumps({"type": "round", "run_id": run_id, **entry}) + "\n")
            results.flush()

        measure(args, record)
        elapsed = round(time.monotonic() - started_at, 1)
        results.write(
            json.dumps({"type": "run_end", "run_id": run_id, "elapsed_s": elapsed}) + "\n"
        )
    text = section(header, records, elapsed)
    print("\n" + text)
    if args.rounds >= 3 and args.duration >= 3 and args.results == RESULTS:
        write_docs(text)
        print(f"wrote the Socket.IO section of {DOCS.relative_to(run.REPO)}")
    return 1 if any(not r["ok"] for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
