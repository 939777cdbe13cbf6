"""Run fullduplex's benchmark: every cell against every server, then write the report.

    make bench                               # or: .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --cells b,c --servers fullduplex,picows --rounds 3
    .venv/bin/python bench/run.py --quick    # one short round of everything, no docs

It builds the C programs (bench/loadgen.c, bench/echo_server.c), installs what the
comparison needs (the ``bench`` extra, ``npm ci`` in bench/), then for each cell and server
starts the server pinned to core 1 and the C load generator pinned to core 0, warms up,
measures, and reads the server's CPU time (/proc/PID/stat) and RSS (/proc/PID/status)
around the measured window. Cell (h) turns it around: the Python clients run on core 1
against bench/echo_server.c on core 0.

Every round is appended to bench/results/results.jsonl with the run's id and machine. A run
that meets the issue's method (>= 3 rounds of >= 5 s) also rewrites docs/benchmarks.md and
docs/benchmarks.png (bench/report.py). Servers and load generators are stopped by PID in
``finally`` blocks, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import select
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
BUILD = BENCH / "build"
RESULTS = BENCH / "results" / "results.jsonl"

SERVER_CORE = 1  # the measured process: a server, or a client in cell (h)
DRIVER_CORE = 0  # the load generator, or the C echo server in cell (h)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IDLE_CONNECTIONS = 10_000
QUICK_IDLE_CONNECTIONS = 1_000


@dataclass(frozen=True)
class Cell:
    id: str
    title: str
    connections: int
    size: int = 32
    pipeline: int = 1
    binary: bool = False
    deflate: bool = False
    kind: str = "echo"  # "echo": servers under the load generator; "idle"; "client"
    servers: tuple[str, ...] = (
        "fullduplex",
        "fullduplex-callbacks",
        "picows",
        "websockets",
        "aiohttp",
        "node",
        "c-echo",
    )


CLIENTS = ("fullduplex", "picows", "websockets", "aiohttp")
CELLS = {
    cell.id: cell
    for cell in [
        Cell("a", "1 connection, 32 B text, K=1", 1),
        Cell("b", "100 connections, 32 B text, K=1", 100),
        Cell("c", "100 connections, 256 B text, K=16", 100, 256, 16),
        Cell("d", "10 connections, 64 KiB binary, K=1", 10, 64 * 1024, binary=True),
        Cell("e", "1 connection, 1 MiB binary, K=1", 1, 2**20, binary=True),
        Cell(
            "f",
            f"{IDLE_CONNECTIONS:,} idle connections",
            IDLE_CONNECTIONS,
            kind="idle",
            servers=("fullduplex", "picows", "websockets", "aiohttp", "node"),
        ),
        Cell(
            "g",
            "as (c), with permessage-deflate",
            100,
            256,
            16,
            deflate=True,
            servers=("fullduplex", "websockets", "aiohttp", "node"),
        ),
        Cell(
            "h-b", "clients: as (b), against a C echo server", 100, kind="client", servers=CLIENTS
        ),
        Cell(
            "h-c",
            "clients: as (c), against a C echo server",
            100,
            256,
            16,
            kind="client",
            servers=CLIENTS,
        ),
    ]
}
# fullduplex-callbacks: the same library on its callback API (`on_message` + `send_nowait`).
SERVERS = (
    "fullduplex",
    "fullduplex-callbacks",
    "picows",
    "websockets",
    "aiohttp",
    "node",
    "c-echo",
)
# bench/echo_server.c under the load generator shows the harness's ceiling: one short round.
CEILING = "c-echo"


Record = Callable[[dict[str, Any]], None]


class BenchError(Exception):
    """A server or load generator failed; the round is recorded as failed and the run goes on."""


# --- setup ---------------------------------------------------------------------------------


def ensure_system_packages(*packages: str) -> None:
    subprocess.run([str(REPO / "scripts" / "ensure-system-packages.sh"), *packages], check=True)


def build_c_programs() -> None:
    """Compile bench/*.c into bench/build/ when a source is newer than its program."""
    if not any(Path(p, "cc").exists() for p in os.environ.get("PATH", "").split(os.pathsep)):
        ensure_system_packages("gcc", "libc6-dev")
    ensure_system_packages("zlib1g-dev")
    BUILD.mkdir(parents=True, exist_ok=True)
    for name, libraries in (("loadgen", ["-lz"]), ("echo_server", [])):
        source, program = BENCH / f"{name}.c", BUILD / name
        if program.exists() and program.stat().st_mtime >= source.stat().st_mtime:
            continue
        # Build beside the program and rename: test runs in parallel may build at once.
        partial = program.with_name(f"{name}.{os.getpid()}.tmp")
        command = ["cc", "-O2", "-Wall", "-o", str(partial), str(source), *libraries]
        print("+", shlex.join(command), flush=True)
        subprocess.run(command, check=True)
        partial.replace(program)


def install_comparison_dependencies() -> None:
    """The ``bench`` extra of pyproject.toml (picows, matplotlib) and Node's ws (npm ci)."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    missing = [
        spec for spec in extras["bench"] if importlib.util.find_spec(_distribution(spec)) is None
    ]
    if missing:
        print("+ pip install", *missing, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
    ensure_system_packages("nodejs", "npm")
    stamp = BENCH / "node_modules" / ".installed"
    lock = BENCH / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        print("+ npm ci (bench/)", flush=True)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH, check=True
        )
        stamp.touch()


def _distribution(spec: str) -> str:
    for separator in "<>=!~[; ":
        spec = spec.split(separator)[0]
    return spec


# --- machine and versions --------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with contextlib.suppress(OSError):
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "hypervisor": _hypervisor(),
        "python": platform.python_version(),
        "node": node,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def _hypervisor() -> str | None:
    result = subprocess.run(["lscpu"], capture_output=True, text=True)
    for line in result.stdout.splitlines():
        if line.startswith("Hypervisor vendor:"):
            return line.split(":", 1)[1].strip()
    return None


def library_versions() -> dict[str, Any]:
    versions: dict[str, Any] = {}
    for name in ("fullduplex", "picows", "websockets", "aiohttp", "uvloop", "matplotlib"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    for name in ("ws", "bufferutil"):
        package = BENCH / "node_modules" / name / "package.json"
        versions[name] = json.loads(package.read_text())["version"] if package.exists() else None
    speedups = subprocess.run(
        [sys.executable, "-c", "import fullduplex.protocol._speedups"],
        capture_output=True,
        cwd=REPO,
    )
    versions["fullduplex_speedups"] = speedups.returncode == 0
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src"], capture_output=True, text=True, cwd=REPO
    )
    versions["fullduplex_git"] = git.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return versions


# --- processes -------------------------------------------------------------------------------


PRIORITY = -10


def priority_prefix() -> list[str]:
    # The machine may be shared: as root, run the measured pair ahead of everything else.
    return ["nice", "-n", str(PRIORITY)] if os.geteuid() == 0 else []


def prioritize(process: subprocess.Popen[str]) -> None:
    """Give the process's session the same priority: with autogroup scheduling, nice values
    only weigh within a session, and each process here starts its own (sched(7))."""
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):
            Path(f"/proc/{process.pid}/autogroup").write_text(str(PRIORITY))


@contextlib.contextmanager
def started(
    command: list[str], core: int, log: Path, *, ready_timeout: float = 20
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start a server pinned to ``core``; wait for its ``ready PORT`` line; stop it by PID."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*priority_prefix(), "taskset", "-c", str(core), *command],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        prioritize(process)
        try:
            line = _read_line(process, time.monotonic() + ready_timeout)
            if not line.startswith("ready "):
                name = Path(command[-1] if len(command) == 1 else command[1]).name
                raise BenchError(f"{name} did not start: {line or 'no output'}; {_tail(log)}")
            yield process, int(line.split()[1])
        finally:
            stop(process)


def stop(process: subprocess.Popen[str], grace: float = 5) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)
    if process.stdout is not None:
        process.stdout.close()


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    """One line of the process's stdout, or "" at EOF or at the deadline."""
    assert process.stdout is not None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return ""
    readable, _, _ = select.select([process.stdout], [], [], remaining)
    return process.stdout.readline().strip() if readable else ""


def _tail(log: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        text = log.read_text().strip().splitlines()
        return " | ".join(text[-lines:])
    return ""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, every thread included (proc(5))."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1])
    return {"rss_kib": values.get("VmRSS", 0), "hwm_kib": values.get("VmHWM", 0)}


def system_busy_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds over every core since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


@dataclass
class Sample:
    """What is read at the start and at the end of a measured window."""

    time: float
    measured_cpu: float
    driver_cpu: float
    busy: float
    steal: float

    @classmethod
    def take(cls, measured_pid: int, driver_pid: int) -> Sample:
        busy, steal = system_busy_seconds()
        return cls(
            time.monotonic(), cpu_seconds(measured_pid), cpu_seconds(driver_pid), busy, steal
        )


def window(start: Sample, end: Sample) -> dict[str, float]:
    seconds = end.time - start.time
    measured = end.measured_cpu - start.measured_cpu
    driver = end.driver_cpu - start.driver_cpu
    other = max(0.0, (end.busy - start.busy) - measured - driver)
    return {
        "window_s": round(seconds, 3),
        "measured_cpu_s": round(measured, 3),
        "measured_cpu_pct": round(100 * measured / seconds, 1),
        "driver_cpu_pct": round(100 * driver / seconds, 1),
        # CPU used by everything else on the machine (other processes, this harness), in %
        # of one core, and time the hypervisor took from both cores.
        "background_cpu_pct": round(100 * other / seconds, 1),
        "steal_pct": round(100 * (end.steal - start.steal) / seconds, 1),
    }


# --- cells ------------------------------------------------------------------------------------


@dataclass
class Options:
    rounds: int
    warmup: float
    duration: float
    loop: str
    idle_connections: int
    logs: Path
    records: list[dict[str, Any]] = field(default_factory=list)


def server_command(server: str, options: Options, deflate: bool) -> list[str]:
    if server == CEILING:
        return [str(BUILD / "echo_server"), "--port", "0"]
    if server == "node":
        command = ["node", "bench/servers/node_ws_server.js"]
    else:
        # picows is measured with uvloop, as the issue asks; the others on --loop.
        loop = "uvloop" if server == "picows" else options.loop
        script = f"bench/servers/{server.replace('-', '_')}_server.py"
        command = [sys.executable, script, "--loop", loop]
    return [*command, "--port", "0", *(["--deflate"] if deflate else [])]


def run_driver(
    command: list[str], timeout: float, core: int = DRIVER_CORE
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Run a load generator (or a client, in cell h) pinned to ``core``; yield each JSON event
    it prints: ``measure_start``, ``measure_end``, ``result`` (``opened`` in idle mode)."""
    process = subprocess.Popen(
        [*priority_prefix(), "taskset", "-c", str(core), *command],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    prioritize(process)
    deadline = time.monotonic() + timeout
    event: dict[str, Any] = {}
    try:
        while True:
            line = _read_line(process, deadline)
            if not line:
                break
            if line.startswith("{"):
                event = json.loads(line)
                yield process, event
        if time.monotonic() >= deadline:
            raise BenchError(f"{Path(command[0]).name} timed out after {timeout:.0f} s")
        process.wait(max(1.0, deadline - time.monotonic()))
        if process.returncode != 0:
            assert process.stderr is not None
            error = event.get("first_error") or process.stderr.read().strip()[-300:]
            raise BenchError(f"{Path(command[0]).name} exited with {process.returncode}: {error}")
    finally:
        stop(process, grace=2)
        if process.stderr is not None:
            process.stderr.close()


def measured_run(command: list[str], core: int, other_pid: int, timeout: float) -> dict[str, Any]:
    """Run a load generator against a server (or a client against the C echo server) and
    sample both processes around the window it measures. ``core`` is where ``command`` runs;
    the measured process is the server, or the client in cell (h)."""
    start = end = None
    result: dict[str, Any] = {}
    client_is_measured = core == SERVER_CORE
    for process, event in run_driver(command, timeout, core):
        measured, driver = (
            (process.pid, other_pid) if client_is_measured else (other_pid, process.pid)
        )
        if event["event"] == "measure_start":
            start = Sample.take(measured, driver)
        elif event["event"] == "measure_end":
            end = Sample.take(measured, driver)
            result.update(memory_kib(measured))
        elif event["event"] == "result":
            result.update({k: v for k, v in event.items() if k not in ("event", "mode")})
    if start is None or end is None or "msgs_per_s" not in result:
        raise BenchError(f"stopped early: {result.get('first_error') or result}")
    result.update(window(start, end))
    messages = result["messages"]
    result["cpu_us_per_msg"] = (
        round(result["measured_cpu_s"] / messages * 1e6, 3) if messages else None
    )
    if result["errors"]:
        raise BenchError(f"{result['errors']} errors: {result['first_error']}")
    return result


def echo_round(
    cell: Cell, server: subprocess.Popen[str], port: int, options: Options
) -> dict[str, Any]:
    command = [str(BUILD / "loadgen"), "--port", str(port), "--connections", str(cell.connections)]
    command += ["--size", str(cell.size), "--pipeline", str(cell.pipeline)]
    command += ["--warmup", str(options.warmup), "--duration", str(options.duration)]
    command += (["--binary"] if cell.binary else []) + (["--deflate"] if cell.deflate else [])
    return measured_run(command, DRIVER_CORE, server.pid, options.warmup + options.duration + 90)


def idle_round(server: subprocess.Popen[str], port: int, options: Options) -> dict[str, Any]:
    time.sleep(0.5)
    baseline = memory_kib(server.pid)["rss_kib"]
    connections = options.idle_connections
    command = [
        str(BUILD / "loadgen"),
        "--port",
        str(port),
        "--idle",
        "--connections",
        str(connections),
        "--hold",
        "3",
    ]
    result: dict[str, Any] = {"baseline_rss_kib": baseline}
    for _, event in run_driver(command, timeout=150):
        if event["event"] == "opened":
            time.sleep(1.0)
            rss = memory_kib(server.pid)["rss_kib"]
            result.update(
                open_s=event["open_s"],
                connections=event["connections"],
                rss_kib=rss,
                kib_per_connection=round((rss - baseline) / event["connections"], 2),
            )
        elif event["event"] == "result":
            result.update(errors=event["errors"], first_error=event["first_error"])
    if "kib_per_connection" not in result:
        raise BenchError(f"the connections did not open: {result.get('first_error')}")
    if result["errors"]:
        raise BenchError(f"{result['errors']} errors: {result['first_error']}")
    return result


def client_round(
    cell: Cell, client: str, echo_server: subprocess.Popen[str], port: int, options: Options
) -> dict[str, Any]:
    # The measured client runs on the server core; the C echo server on the driver core.
    loop = "uvloop" if client == "picows" else options.loop
    command = [
        sys.executable, f"bench/clients/{client}_client.py", "--port", str(port), "--loop", loop,
        "--connections", str(cell.connections), "--size", str(cell.size),
        "--pipeline", str(cell.pipeline),
        "--warmup", str(options.warmup), "--duration", str(options.duration),
    ]  # fmt: skip
    timeout = options.warmup + options.duration + 60
    return measured_run(command, SERVER_CORE, echo_server.pid, timeout)


def run_cell(cell: Cell, servers: list[str], options: Options, record: Record) -> None:
    for server in (s for s in servers if s in cell.servers):
        print(f"cell {cell.id} ({cell.title}) / {server}", flush=True)
        log = options.logs / f"{cell.id}-{server}.log"
        rounds = range(1, options.rounds + 1)
        try:
            if cell.kind == "client":
                with started([str(BUILD / "echo_server")], DRIVER_CORE, log) as (echo, port):
                    for n in rounds:
                        _round(
                            record, cell, server, n, client_round, cell, server, echo, port, options
                        )
            elif cell.kind == "idle":
                # A fresh server each round: memory freed by one round would flatter the next.
                command = server_command(server, options, deflate=False)
                for n in rounds:
                    with started(command, SERVER_CORE, log) as (process, port):
                        _round(record, cell, server, n, idle_round, process, port, options)
            else:
                command = server_command(server, options, deflate=cell.deflate)
                round_options = options
                if server == CEILING:
                    rounds = range(1, 2)
                    round_options = dataclasses.replace(
                        options,
                        warmup=min(options.warmup, 1.0),
                        duration=min(options.duration, 2.0),
                    )
                with started(command, SERVER_CORE, log) as (process, port):
                    for n in rounds:
                        _round(
                            record, cell, server, n, echo_round, cell, process, port, round_options
                        )
        except BenchError as exc:
            print(f"  FAILED: {exc}", flush=True)
            record({"cell": cell.id, "server": server, "round": 0, "ok": False, "error": str(exc)})
        stderr = _tail(log, 3)
        if stderr:
            print(f"  server stderr: {stderr[:300]}", flush=True)


def _round(
    record: Record,
    cell: Cell,
    server: str,
    round_number: int,
    measure: Callable[..., dict[str, Any]],
    *args: Any,
) -> None:
    try:
        result = measure(*args)
    except BenchError as exc:
        print(f"  round {round_number}: FAILED: {exc}", flush=True)
        record(
            {
                "cell": cell.id,
                "server": server,
                "round": round_number,
                "ok": False,
                "error": str(exc),
            }
        )
        return
    if cell.kind == "idle":
        summary = f"{result['kib_per_connection']:.2f} KiB/conn, opened in {result['open_s']:.2f} s"
    else:
        summary = f"{result['msgs_per_s']:,.0f} msg/s, {result['cpu_us_per_msg']} us CPU/msg"
    if "background_cpu_pct" in result:
        summary += f", background {result['background_cpu_pct']}%"
    print(f"  round {round_number}: {summary}", flush=True)
    record({"cell": cell.id, "server": server, "round": round_number, "ok": True, **result})


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run fullduplex's benchmark (see bench/run.py).")
    parser.add_argument(
        "--cells", default=",".join(CELLS), help="comma-separated; 'h' means h-b,h-c"
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="servers, and clients in cell h"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds before each measured window"
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds in each measured window"
    )
    parser.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="event loop of fullduplex, websockets, aiohttp servers and clients (picows: uvloop)",
    )
    parser.add_argument("--quick", action="store_true", help="1 round, 0.5 s warmup, 1 s windows")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the test suite's run: cell c, fullduplex on both its APIs, ~2 s",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="the JSON Lines file to append to"
    )
    parser.add_argument("--no-install", action="store_true", help="skip pip and npm (for --smoke)")
    args = parser.parse_args(argv)
    if args.quick or args.smoke:
        args.rounds, args.warmup, args.duration = 1, 0.5, 1.0
    if args.smoke:
        args.cells, args.warmup, args.no_install = "c", 0.3, True
        args.servers = "fullduplex,fullduplex-callbacks"
        if args.results == RESULTS:
            args.results = BUILD / "smoke-results.jsonl"
    cells = []
    for name in args.cells.split(","):
        cells += [c for c in CELLS if c == name or c.startswith(f"{name}-")] or [name]
    unknown = [c for c in cells if c not in CELLS] + [
        s for s in args.servers.split(",") if s not in SERVERS
    ]
    if unknown:
        parser.error(f"unknown cells or servers: {', '.join(unknown)}")
    args.cells, args.servers = cells, args.servers.split(",")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.sched_setaffinity(0, {DRIVER_CORE})  # keep this harness off the measured core
    with contextlib.suppress(ValueError, OSError):
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers inherit it for (f)

    build_c_programs()
    if not args.no_install:
        install_comparison_dependencies()
    if "node" in args.servers and not (BENCH / "node_modules" / "ws").exists():
        raise SystemExit("bench/node_modules is missing: run without --no-install")

    run_id = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    quick = args.quick or args.smoke
    options = Options(
        rounds=args.rounds,
        warmup=args.warmup,
        duration=args.duration,
        loop=args.loop,
        idle_connections=QUICK_IDLE_CONNECTIONS if quick else IDLE_CONNECTIONS,
        logs=BUILD / "logs" / run_id,
    )
    header = {
        "type": "run",
        "run_id": run_id,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "versions": library_versions(),
        "params": {
            "cells": args.cells,
            "servers": args.servers,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "loop": args.loop,
            "idle_connections": options.idle_connections,
            "server_core": SERVER_CORE,
            "driver_core": DRIVER_CORE,
            "priority": " ".join(priority_prefix()) or "default",
            "quick": quick,
        },
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    started_at = time.monotonic()
    with args.results.open("a") as results:

        def record(entry: dict[str, Any]) -> None:
            line = {"type": "round", "run_id": run_id, **entry}
            options.records.append(line)
            results.write(json.dumps(line) + "\n")
            results.flush()

        results.write(json.dumps(header) + "\n")
        print(
            f"run {run_id}: {args.rounds} rounds x ({args.warmup} s warmup + {args.duration} s)",
            flush=True,
        )
        for cell_id in args.cells:
            run_cell(CELLS[cell_id], args.servers, options, record)
        elapsed = round(time.monotonic() - started_at, 1)
        results.write(
            json.dumps({"type": "run_end", "run_id": run_id, "elapsed_s": elapsed}) + "\n"
        )

    failures = [r for r in options.records if not r["ok"]]
    print(
        f"run {run_id} finished in {elapsed:.0f} s, {len(failures)} failed rounds: {args.results}"
    )
    if args.rounds >= 3 and args.duration >= 5 and args.results == RESULTS:
        import report

        report.write(run_id, args.results)
        print("wrote docs/benchmarks.md and docs/benchmarks.png")
    elif not args.smoke:
        print("(too short for the issue's method: docs/benchmarks.md left as it is)")
    return 1 if failures and args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
