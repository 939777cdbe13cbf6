"""What the benchmark's Python clients (cell h) share: the command line, the timing and the
JSON result; each client module supplies how its library opens, pumps and closes.

A client opens ``--connections`` connections to ``ws://127.0.0.1:PORT/`` (bench/echo_server.c),
keeps ``--pipeline`` text messages of ``--size`` bytes in flight on each, and after
``--warmup`` seconds counts the echoes received and its own CPU time for ``--duration``
seconds. Every echo is compared with what was sent. It prints JSON lines as the load
generator does: ``{"event": "measure_start"}`` and ``{"event": "measure_end"}`` around the
window (bench/run.py reads /proc then), then
``{"event": "result", "msgs_per_s": ..., "self_cpu_us_per_msg": ..., ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_MESSAGE_SIZE", "Stats", "Library", "run"]

MAX_MESSAGE_SIZE = 16 * 2**20


@dataclass
class Stats:
    """Shared by every connection of one client process."""

    received: int = 0
    errors: int = 0
    first_error: str = ""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def error(self, description: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or description


@dataclass(frozen=True)
class Library:
    """How one library opens a connection, keeps ``pipeline`` messages in flight on it until
    ``stats.stopping`` is set (then waits for the echoes still in flight), and closes it."""

    name: str
    open: Callable[[str], Awaitable[Any]]
    pump: Callable[[Any, str, int, Stats], Awaitable[None]]
    close: Callable[[Any], Awaitable[None]]


def make_payload(size: int) -> str:
    letters = "etaoinshrdlucmfwypvbgk "
    return "".join(letters[(i * 7 + i // 23) % len(letters)] for i in range(size))


async def measure(library: Library, args: argparse.Namespace, loop_name: str) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{args.port}/"
    payload = make_payload(args.size)
    stats = Stats()
    connections = await asyncio.gather(*(library.open(url) for _ in range(args.connections)))
    pumps = [
        asyncio.ensure_future(library.pump(c, payload, args.pipeline, stats)) for c in connections
    ]
    try:
        await asyncio.sleep(args.warmup)
        print(json.dumps({"event": "measure_start"}), flush=True)
        received, cpu, start = stats.received, time.process_time(), time.perf_counter()
        await asyncio.sleep(args.duration)
        received = stats.received - received
        cpu = time.process_time() - cpu
        seconds = time.perf_counter() - start
        print(json.dumps({"event": "measure_end"}), flush=True)
        stats.stopping.set()
        done, pending = await asyncio.wait(pumps, timeout=5)
        for pump in done:
            if pump.exception() is not None:
                stats.error(f"pump failed: {pump.exception()!r}")
        if pending:
            stats.error(f"{len(pending)} connections did not drain in 5 s")
        await asyncio.wait_for(asyncio.gather(*(library.close(c) for c in connections)), timeout=5)
    finally:
        for pump in pumps:
            pump.cancel()
    return {
        "event": "result",
        "library": library.name,
        "loop": loop_name,
        "connections": args.connections,
        "size": args.size,
        "pipeline": args.pipeline,
        "measured_s": round(seconds, 3),
        "messages": received,
        "msgs_per_s": round(received / seconds, 1),
        "self_cpu_s": round(cpu, 4),
        "self_cpu_us_per_msg": round(cpu / received * 1e6, 3) if received else None,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "errors": stats.errors,
        "first_error": stats.first_error,
    }


def run(library: Library) -> None:
    parser = argparse.ArgumentParser(description=f"{library.name} client for the benchmark")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"])
    args = parser.parse_args()
    loop_name = args.loop or ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    if loop_name == "uvloop":
        import uvloop

        result = uvloop.run(measure(library, args, loop_name))
    else:
        result = asyncio.run(measure(library, args, loop_name))
    print(json.dumps(result), flush=True)
