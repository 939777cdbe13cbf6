"""Profile the echo servers: where the time goes per message, fullduplex next to picows.

    .venv/bin/python bench/profile.py                    # about 4 minutes
    .venv/bin/python bench/profile.py --cells b --servers fullduplex
    .venv/bin/python bench/profile.py --cells a --servers fullduplex-callbacks,picows

For each server (bench/servers/*_server.py, started as bench/run.py starts them: pinned to
core 1, the C load generator on core 0) and each of the cells (b) 100 connections, 32 B
text, K=1; (c) 100 connections, 256 B text, K=16; (e) 1 connection, 1 MiB binary, K=1
(or, on request, (a) 1 connection, 32 B text, K=1), it
measures what the server spends per echoed message, in five separate windows, each under a
fresh run of the load generator:

1. Native: utime, stime and minor page faults from /proc/PID/stat over the load
   generator's measured window, divided by the messages it counted. Nothing is attached to
   the server; these are the only timings reported, and the machine may be shared.
2. System calls: ``strace -c -f`` attached to the server, by kind. strace slows the
   server, which changes how many messages one epoll wakeup finds, so only the counts are
   kept; in another window ``perf stat`` counts the raw_syscalls:sys_enter and epoll
   tracepoints, which does not stop the server: the totals as they are without strace.
3. Python functions (fullduplex's servers only): ``py-spy record -r 500 -f raw``; the share of
   samples in which each function is the innermost Python frame (self time). Time in C
   code is charged to the Python function that called it, and idle samples are dropped.
4. Instructions: the server runs under ``valgrind --tool=callgrind --instr-atstart=no``;
   ``callgrind_control -i on`` / ``-i off`` bracket the window, and the exclusive Ir of
   the dump are summed per object file (libpython = the interpreter, uvloop, fullduplex's
   _speedups, picows' extension, libc, other). User space only: the kernel is not in it.

The system call and instruction windows count messages exactly: the load generator is
stopped (SIGSTOP) and the server left to drain before the tool is attached or switched on,
and again before it is detached or switched off; the messages in the window are the bytes
the server wrote in it (``ss -ti``: bytes_acked + Send-Q of its sockets, so every write(2),
send(2) or writev(2) counts) over the size of one echoed frame.

Results are appended to bench/results/profile.jsonl: a ``run`` line (git revision, date,
command, machine), one ``profile`` line per server and cell, and a ``run_end`` line.
bench/report.py renders the newest run in docs/benchmarks.md. Every process started here
is stopped by PID, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import run
from run import BenchError, Cell

RESULTS = run.BENCH / "results" / "profile.jsonl"
CELLS = ("a", "b", "c", "e")
SERVERS = ("fullduplex", "fullduplex-callbacks", "picows")
# What a run without --cells and --servers profiles (what bench/report.py renders); cell (a)
# and the callback API server are there to be asked for.
DEFAULT_CELLS = ("b", "c", "e")
DEFAULT_SERVERS = ("fullduplex", "picows")

WARMUP_S = 1.5
NATIVE_S = 3.0
STRACE_S = 2.0
PYSPY_S = 3.0
PYSPY_RATE_HZ = 500
PYSPY_TOP = 8
# valgrind translates code on first use: a longer warmup, then a window of a few seconds
# (callgrind runs the server some 50 times slower).
CALLGRIND_WARMUP_S = 3.0
CALLGRIND_S = 3.0
# py-spy starts when the load generator's window does: the window outlasts it by this much.
SETUP_MARGIN_S = 1.5
# Longer than any bracketed window: the load generator is stopped as soon as it is over.
BRACKETED_LOAD_S = 120.0
PERF_EVENTS = (
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_epoll_pwait",
)
QUIET_POLL_S = 0.05
QUIET_TIMEOUT_S = 30.0

OPTIONS = run.Options(
    rounds=1, warmup=WARMUP_S, duration=NATIVE_S, loop="uvloop", idle_connections=0, logs=run.BUILD
)
"""The servers run as bench/run.py runs them by default: every one on uvloop."""

OBJECT_KINDS = ("interpreter", "uvloop", "fullduplex", "picows", "libc", "other")


# --- the server's side of its sockets and /proc ------------------------------------------


@dataclass(frozen=True)
class ProcessTimes:
    """proc(5) /proc/PID/stat: user and system CPU seconds and minor faults, all threads."""

    user_s: float
    system_s: float
    minor_faults: int

    @classmethod
    def read(cls, pid: int) -> ProcessTimes:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # Fields 10 (minflt), 14 (utime) and 15 (stime), counted from 1 with pid and comm.
        return cls(
            int(fields[11]) / run.CLOCK_TICKS, int(fields[12]) / run.CLOCK_TICKS, int(fields[7])
        )


def echoed_frame_size(cell: Cell) -> int:
    """Bytes of one echo on the wire: a server's frames are not masked (RFC 6455 §5.1)."""
    length_field = 0 if cell.size < 126 else 2 if cell.size < 2**16 else 8
    return 2 + length_field + cell.size


def socket_bytes(port: int) -> tuple[int, int]:
    """(bytes the server has written, bytes it has not read yet) over its connections."""
    listing = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    written = unread = 0
    for line in listing.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            # bytes_acked counts what the peer acknowledged; the Send-Q column, the rest.
            acked = re.search(r"\bbytes_acked:(\d+)", line)
            written += int(acked.group(1)) if acked else 0
        else:
            recv_q, send_q = line.split()[:2]
            unread += int(recv_q)
            written += int(send_q)
    return written, unread


def wait_until_quiet(pid: int, port: int) -> int:
    """Wait for the server to read and answer everything sent so far; return bytes written."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    previous: tuple[int, float] | None = None
    while time.monotonic() < deadline:
        written, unread = socket_bytes(port)
        times = ProcessTimes.read(pid)
        now = (written, times.user_s + times.system_s)
        if unread == 0 and now == previous:
            return written
        previous = now if unread == 0 else None
        time.sleep(QUIET_POLL_S)
    raise BenchError(f"the server did not go quiet in {QUIET_TIMEOUT_S:.0f} s")


@contextlib.contextmanager
def load_paused(driver: subprocess.Popen[str]) -> Iterator[None]:
    driver.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        driver.send_signal(signal.SIGCONT)


def loadgen_command(cell: Cell, port: int, warmup_s: float, duration_s: float) -> list[str]:
    command = [str(run.BUILD / "loadgen"), "--port", str(port)]
    command += ["--connections", str(cell.connections), "--size", str(cell.size)]
    command += ["--pipeline", str(cell.pipeline), "--warmup", str(warmup_s)]
    command += ["--duration", str(duration_s), *(["--binary"] if cell.binary else [])]
    return command


Events = Generator[tuple[subprocess.Popen[str], dict[str, Any]], None, None]


def drive(cell: Cell, port: int, warmup_s: float, duration_s: float) -> Events:
    """The load generator's events; raises BenchError if it reports an error."""
    command = loadgen_command(cell, port, warmup_s, duration_s)
    # Closing this generator early stops the load generator at once (run_driver's finally).
    driver_events = cast(Events, run.run_driver(command, warmup_s + duration_s + 120))
    with contextlib.closing(driver_events) as events:
        for driver, event in events:
            if event["event"] == "result" and event.get("errors"):
                raise BenchError(f"{event['errors']} errors: {event['first_error']}")
            yield driver, event


def bracketed_window(
    cell: Cell,
    server: subprocess.Popen[str],
    port: int,
    warmup_s: float,
    window_s: float,
    switch_on: Callable[[], None],
    switch_off: Callable[[], None],
) -> float:
    """Switch a tool on and, ``window_s`` seconds later, off, each time with the load
    generator stopped and the server quiet; return the messages the server echoed between.

    The load generator's own window only serves as the start signal: it drains and closes
    its connections as soon as that window ends, so the tool is switched off well before,
    and the load generator stopped then.
    """
    written: list[int] = []
    with contextlib.closing(drive(cell, port, warmup_s, BRACKETED_LOAD_S)) as events:
        for driver, event in events:
            if event["event"] == "measure_start":
                with load_paused(driver):
                    written.append(wait_until_quiet(server.pid, port))
                    switch_on()
                time.sleep(window_s)
                with load_paused(driver):
                    written.append(wait_until_quiet(server.pid, port))
                    switch_off()
                break
    if len(written) != 2:
        raise BenchError("the load generator stopped before its measured window")
    return (written[1] - written[0]) / echoed_frame_size(cell)


# --- the windows ----------------------------------------------------------------------


def native_window(cell: Cell, server: subprocess.Popen[str], port: int) -> dict[str, Any]:
    start: tuple[ProcessTimes, run.Sample] | None = None
    end: tuple[ProcessTimes, run.Sample] | None = None
    result: dict[str, Any] = {}
    for driver, event in drive(cell, port, WARMUP_S, NATIVE_S):
        if event["event"] in ("measure_start", "measure_end"):
            sample = (ProcessTimes.read(server.pid), run.Sample.take(server.pid, driver.pid))
            start, end = (sample, end) if event["event"] == "measure_start" else (start, sample)
        elif event["event"] == "result":
            result = event
    if start is None or end is None or not result.get("messages"):
        raise BenchError(f"the load generator stopped early: {result}")
    messages = result["messages"]
    (times0, sample0), (times1, sample1) = start, end
    machine = run.window(sample0, sample1)
    user_us = (times1.user_s - times0.user_s) / messages * 1e6
    system_us = (times1.system_s - times0.system_s) / messages * 1e6
    return {
        "msgs_per_s": result["msgs_per_s"],
        "messages": messages,
        "window_s": machine["window_s"],
        "cpu_user_us_per_msg": round(user_us, 3),
        "cpu_system_us_per_msg": round(system_us, 3),
        "cpu_us_per_msg": round(user_us + system_us, 3),
        "server_cpu_pct": machine["measured_cpu_pct"],
        "background_cpu_pct": machine["background_cpu_pct"],
        "minor_faults_per_msg": round((times1.minor_faults - times0.minor_faults) / messages, 4),
    }


def attached_window(
    cell: Cell,
    server: subprocess.Popen[str],
    port: int,
    tool_command: list[str],
    wait_attached: Callable[[subprocess.Popen[str]], None],
) -> float:
    """Attach a tool to the server for STRACE_S seconds of load and stop it with SIGINT, so
    that it writes its counts; return the messages echoed meanwhile."""
    tools: list[subprocess.Popen[str]] = []

    def attach() -> None:
        tools.append(
            subprocess.Popen(
                tool_command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        wait_attached(tools[0])

    def detach() -> None:
        tools[0].send_signal(signal.SIGINT)
        tools[0].wait(30)

    try:
        return bracketed_window(cell, server, port, WARMUP_S, STRACE_S, attach, detach)
    finally:
        for tool in tools:
            run.stop(tool, grace=5)
            if tool.stderr is not None:
                tool.stderr.close()


def syscall_window(
    cell: Cell, server: subprocess.Popen[str], port: int, scratch: Path
) -> dict[str, Any]:
    summary = scratch / "strace.txt"
    command = ["strace", "-c", "-f", "-o", str(summary), "-p", str(server.pid)]
    messages = attached_window(cell, server, port, command, _wait_for_attach)
    calls = _strace_counts(summary.read_text())
    return {
        "messages": round(messages, 1),
        "syscalls_per_msg": round(sum(calls.values()) / messages, 4),
        "syscalls_by_kind_per_msg": {
            name: round(count / messages, 4)
            for name, count in sorted(calls.items(), key=lambda item: -item[1])
        },
    }


def counted_syscall_window(
    cell: Cell, server: subprocess.Popen[str], port: int, scratch: Path
) -> dict[str, Any]:
    """System calls and epoll waits per message without strace: perf counts tracepoint hits
    in the kernel and does not stop the server, so batching stays as it is natively."""
    counts = scratch / "perf.csv"
    command = ["perf", "stat", "-x", ",", "-o", str(counts), "-p", str(server.pid)]
    for event in PERF_EVENTS:
        command += ["-e", event]
    messages = attached_window(cell, server, port, command, lambda _: time.sleep(0.5))
    totals = dict.fromkeys(PERF_EVENTS, 0)
    for line in counts.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in totals and fields[0].isdigit():
            totals[fields[2]] += int(fields[0])
    epoll = sum(count for event, count in totals.items() if "epoll" in event)
    return {
        "messages": round(messages, 1),
        "syscalls_per_msg": round(totals["raw_syscalls:sys_enter"] / messages, 4),
        "epoll_waits_per_msg": round(epoll / messages, 4),
    }


def _wait_for_attach(tracer: subprocess.Popen[str]) -> None:
    """strace says ``Process N attached`` on stderr for each thread it attaches to."""
    assert tracer.stderr is not None
    readable, _, _ = select.select([tracer.stderr], [], [], 10)
    line = tracer.stderr.readline().strip() if readable else ""
    if "attached" not in line:
        raise BenchError(f"strace did not attach: {line or 'no output'}")


def _strace_counts(text: str) -> dict[str, int]:
    """Calls per system call from ``strace -c``'s table (% time, seconds, usecs/call, calls,
    [errors,] syscall); the total line is left out."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) in (5, 6) and fields[0][0].isdigit() and fields[-1] != "total":
            calls[fields[-1]] = calls.get(fields[-1], 0) + int(fields[3])
    return calls


def python_window(
    cell: Cell, server: subprocess.Popen[str], port: int, scratch: Path
) -> dict[str, Any]:
    stacks = scratch / "py-spy.txt"
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "-r", str(PYSPY_RATE_HZ)]
    command += ["-f", "raw", "-o", str(stacks), "-d", str(int(PYSPY_S)), "-p", str(server.pid)]
    sampler: subprocess.Popen[str] | None = None
    try:
        for _, event in drive(cell, port, WARMUP_S, PYSPY_S + SETUP_MARGIN_S):
            if event["event"] == "measure_start":
                sampler = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
        if sampler is None:
            raise BenchError("the load generator stopped before the py-spy window")
        sampler.wait(PYSPY_S + 30)
    finally:
        if sampler is not None:
            run.stop(sampler, grace=5)
    self_samples: collections.Counter[str] = collections.Counter()
    for line in stacks.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames:
            # py-spy names a frame "function (path:line)": one entry per function.
            leaf = re.sub(r":\d+\)$", ")", frames.split(";")[-1])
            self_samples[leaf] += int(count)
    total = sum(self_samples.values())
    if not total:
        raise BenchError("py-spy recorded no samples")
    return {
        "samples": total,
        "top_self": [
            {"function": function, "self_pct": round(100 * count / total, 1)}
            for function, count in self_samples.most_common(PYSPY_TOP)
        ],
    }


def instruction_window(cell: Cell, server_name: str, scratch: Path) -> dict[str, Any]:
    output = scratch / "callgrind.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={output}",
        *run.server_command(server_name, OPTIONS, deflate=False),
    ]
    log = scratch / "callgrind.log"
    with run.started(command, run.SERVER_CORE, log, ready_timeout=120) as (server, port):

        def switch_off() -> None:
            _callgrind_control("-i", "off", server.pid)
            _callgrind_control("-d", None, server.pid)

        messages = bracketed_window(
            cell,
            server,
            port,
            CALLGRIND_WARMUP_S,
            CALLGRIND_S,
            lambda: _callgrind_control("-i", "on", server.pid),
            switch_off,
        )
    by_object: collections.Counter[str] = collections.Counter()
    for dump in scratch.glob("callgrind.out*"):
        by_object.update(_exclusive_cost_by_object(dump.read_text()))
    by_kind: collections.Counter[str] = collections.Counter()
    for path, cost in by_object.items():
        by_kind[_object_kind(path)] += cost
    total = sum(by_kind.values())
    return {
        "messages": round(messages, 1),
        "instructions_per_msg": round(total / messages),
        "instructions_by_kind_per_msg": {
            kind: round(by_kind[kind] / messages) for kind in OBJECT_KINDS
        },
        "instructions_by_object_per_msg": {
            Path(path).name: round(cost / messages)
            for path, cost in by_object.most_common()
            if cost / messages >= 1
        },
    }


def _callgrind_control(option: str, argument: str | None, pid: int) -> None:
    command = ["callgrind_control", option, *([argument] if argument else []), str(pid)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def _exclusive_cost_by_object(text: str) -> dict[str, int]:
    """Sum the first event (Ir) of a callgrind dump's cost lines per ``ob=`` object.

    In the callgrind format, a cost line after ``calls=`` is the inclusive cost of that
    call, already counted where the callee's own lines are: it is skipped. Names may be
    compressed: ``ob=(3) /path`` or ``cob=(3) /path`` defines id 3, a later ``ob=(3)``
    refers to it.
    """
    names: dict[str, str] = {}
    costs: collections.Counter[str] = collections.Counter()
    current = "???"
    skip_next = False
    for line in text.splitlines():
        if line.startswith(("ob=", "cob=")):
            # A name is defined where it first appears, which may be as a callee's object.
            key, _, name = line.partition("=")[2].partition(" ")
            if not key.startswith("("):
                key, name = "", line.partition("=")[2]
            name = names.setdefault(key, name) if key else name
            if line.startswith("ob="):
                current = name or key
        elif line.startswith("calls="):
            skip_next = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip_next:
                skip_next = False
                continue
            fields = line.split()
            if len(fields) >= 2:
                costs[current] += int(fields[1])
    return costs


def _object_kind(path: str) -> str:
    name = Path(path).name
    if name.startswith("libpython") or re.fullmatch(r"python3(\.\d+)?", name):
        return "interpreter"
    for kind in ("uvloop", "fullduplex", "picows"):
        if f"/{kind}/" in path:
            return kind
    return "libc" if name.startswith("libc.so") else "other"


# --- main ----------------------------------------------------------------------------------


def profile(cell: Cell, server_name: str, scratch: Path) -> dict[str, Any]:
    record: dict[str, Any] = {"cell": cell.id, "server": server_name}
    log = scratch / "server.log"
    with run.started(run.server_command(server_name, OPTIONS, False), run.SERVER_CORE, log) as (
        server,
        port,
    ):
        record["native"] = native_window(cell, server, port)
        record["syscalls"] = syscall_window(cell, server, port, scratch)
        record["syscalls_counted"] = counted_syscall_window(cell, server, port, scratch)
        if server_name.startswith("fullduplex"):
            record["python"] = python_window(cell, server, port, scratch)
    record["instructions"] = instruction_window(cell, server_name, scratch)
    return record


def summary(record: dict[str, Any]) -> str:
    native, syscalls = record["native"], record["syscalls"]
    instructions = record["instructions"]
    return (
        f"{native['msgs_per_s']:,.0f} msg/s, {native['cpu_user_us_per_msg']:.1f} us user + "
        f"{native['cpu_system_us_per_msg']:.1f} us system, "
        f"{native['minor_faults_per_msg']:.2f} faults, "
        f"{syscalls['syscalls_per_msg']:.2f} syscalls, "
        f"{instructions['instructions_per_msg']:,} instructions per message"
    )


def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=run.REPO, timeout=30
        ).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (
        "+dirty" if git("status", "--porcelain", "src") else ""
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Profile the echo servers (see bench/profile.py).")
    parser.add_argument(
        "--cells", default=",".join(DEFAULT_CELLS), help=f"comma-separated, of {','.join(CELLS)}"
    )
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma-separated, of {','.join(SERVERS)}",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="JSON Lines file to append to"
    )
    args = parser.parse_args(argv)
    args.cells, args.servers = args.cells.split(","), args.servers.split(",")
    unknown = [c for c in args.cells if c not in CELLS] + [
        s for s in args.servers if s not in SERVERS
    ]
    if unknown:
        parser.error(f"unknown cells or servers: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.sched_setaffinity(0, {run.DRIVER_CORE})  # the tools too stay off the measured core
    run.build_c_programs()
    run_id = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    header = {
        "type": "run",
        "run_id": run_id,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["bench/profile.py", *(argv if argv is not None else sys.argv[1:])]),
        "git": git_revision(),
        "machine": run.machine_info(),
        "versions": run.library_versions(),
        "params": {
            "cells": args.cells,
            "servers": args.servers,
            "loop": OPTIONS.loop,
            "warmup_s": WARMUP_S,
            "native_s": NATIVE_S,
            "strace_s": STRACE_S,
            "pyspy_s": PYSPY_S,
            "pyspy_rate_hz": PYSPY_RATE_HZ,
            "callgrind_warmup_s": CALLGRIND_WARMUP_S,
            "callgrind_s": CALLGRIND_S,
            "server_core": run.SERVER_CORE,
            "driver_core": run.DRIVER_CORE,
            "priority": " ".join(run.priority_prefix()) or "default",
        },
    }
    started_at = time.monotonic()
    failures = 0
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as results:
        results.write(json.dumps(header) + "\n")
        print(f"profile run {run_id}", flush=True)
        for cell_id in args.cells:
            cell = run.CELLS[cell_id]
            for server_name in args.servers:
                print(f"cell {cell.id} ({cell.title}) / {server_name}", flush=True)
                with tempfile.TemporaryDirectory(prefix="fullduplex-profile-") as scratch:
                    try:
                        record = profile(cell, server_name, Path(scratch))
                    except (BenchError, subprocess.SubprocessError, OSError) as exc:
                        failures += 1
                        print(f"  FAILED: {exc}", flush=True)
                        record = {"cell": cell.id, "server": server_name, "error": str(exc)}
                    else:
                        print(f"  {summary(record)}", flush=True)
                results.write(json.dumps({"type": "profile", "run_id": run_id, **record}) + "\n")
                results.flush()
        elapsed = round(time.monotonic() - started_at, 1)
        results.write(
            json.dumps({"type": "run_end", "run_id": run_id, "elapsed_s": elapsed}) + "\n"
        )
    print(f"profile run {run_id} finished in {elapsed:.0f} s, {failures} failed: {args.results}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
