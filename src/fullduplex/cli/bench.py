"""``fullduplex bench URL``: a quick load test of a live echo endpoint.

Each connection keeps ``--pipeline`` messages in flight: it sends one as soon as a reply
frees a slot. A reply is matched to the oldest message in flight (an echo server keeps their
order), which gives each message's round-trip latency. The rigorous side-by-side benchmark
lives in bench/; this is for "how fast is that server, roughly, from here?".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import string
import sys
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConnectionClosed
from ..io.asyncio import ClientConnection, connect
from .options import (
    CommandError,
    ExitStatus,
    StopSignals,
    add_client_options,
    byte_size,
    client_options,
    connect_failure,
    positive_int,
    seconds,
    websocket_url,
)

__all__ = ["add_parser", "run", "Results", "percentile"]

OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 3.0
DRAIN_TIMEOUT_S = 5.0
"""How long, after the run, the replies still in flight may take (at most the duration)."""
PROGRESS_INTERVAL_S = 0.2

EPILOG = """\
examples:
  fullduplex serve --echo &  fullduplex bench ws://127.0.0.1:8000/
  fullduplex bench ws://127.0.0.1:8000/ -c 100 -s 1K -p 8 -d 30 --json

The endpoint must echo each message back (fullduplex serve --echo does). Messages are random
bytes (or random letters with --text), so compression, offered by default, gains little.
A progress bar is drawn on stderr when it is a terminal. The results go to stdout.

exit status: 0 done; 1 the endpoint answered nothing or dropped a connection;
2 bad arguments; 3-6 as for `fullduplex connect`; 130 interrupted (the results so far
are printed).
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure messages per second and latency against an echo endpoint",
        description="Load a live WebSocket echo endpoint; print msgs/s and latency percentiles.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", metavar="URL", type=websocket_url, help="ws:// or wss:// URL")
    load = parser.add_argument_group("load")
    load.add_argument(
        "-c", "--connections", type=positive_int, default=10, help="connections (default: 10)"
    )
    load.add_argument(
        "-s",
        "--size",
        metavar="BYTES",
        type=byte_size,
        default=32,
        help="message size, e.g. 32, 1K, 1M (default: 32)",
    )
    load.add_argument(
        "-d",
        "--duration",
        metavar="SECONDS",
        type=seconds,
        default=10.0,
        help="how long to send (default: 10)",
    )
    load.add_argument(
        "-p",
        "--pipeline",
        metavar="N",
        type=positive_int,
        default=1,
        help="messages in flight per connection (default: 1: send, wait, send)",
    )
    load.add_argument("--text", action="store_true", help="send text messages (default: binary)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_client_options(parser)
    parser.set_defaults(run=run)


@dataclass
class Results:
    """What a run measured."""

    sent: int = 0
    received: int = 0
    unexpected: int = 0
    bytes_received: int = 0
    latencies_s: array[float] = field(default_factory=lambda: array("d"))
    elapsed_s: float = 0.0

    def record(self, latency_s: float, size: int) -> None:
        self.received += 1
        self.bytes_received += size
        self.latencies_s.append(latency_s)

    @property
    def rate(self) -> float:
        """Replies per second."""
        return self.received / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self) -> dict[str, float]:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return {}
        summary = {f"p{q:g}": percentile(ordered, q) * 1000 for q in (50, 90, 99, 99.9)}
        summary["max"] = ordered[-1] * 1000
        summary["mean"] = sum(ordered) / len(ordered) * 1000
        return summary


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def run(args: argparse.Namespace) -> int:
    options = client_options(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    results = Results()
    with StopSignals(stop.set, DRAIN_TIMEOUT_S + CLOSE_TIMEOUT_S + 2) as signals:
        connections = await _open_all(args, options)
        payload = _payload(args.size, args.text)
        drain_s = min(DRAIN_TIMEOUT_S, max(1.0, args.duration))
        started = loop.time()
        workers = [
            asyncio.create_task(_worker(ws, payload, args.pipeline, results, stop, drain_s))
            for ws in connections
        ]
        progress = asyncio.create_task(_progress(args.duration, started, results, stop))
        ended = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(_first_failure(workers))
        await asyncio.wait(
            {ended, failed}, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED
        )
        results.elapsed_s = loop.time() - started
        stop.set()
        for waiter in (ended, failed):
            waiter.cancel()
        outcomes = await asyncio.gather(*workers, progress, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)
    dropped: ConnectionClosed | None = None
    for outcome in outcomes:
        if isinstance(outcome, ConnectionClosed):
            dropped = outcome
        elif isinstance(outcome, BaseException):
            raise outcome
    _report(args, results)
    if signals.received is not None:
        return ExitStatus.INTERRUPTED
    if dropped is not None:
        raise CommandError(ExitStatus.FAILURE, f"a connection was closed during the run: {dropped}")
    if results.received == 0:
        raise CommandError(ExitStatus.FAILURE, "no replies: is the URL an echo endpoint?")
    return ExitStatus.OK


async def _open_all(args: argparse.Namespace, options: dict[str, Any]) -> list[ClientConnection]:
    attempts = [
        asyncio.ensure_future(
            connect(args.url, open_timeout=OPEN_TIMEOUT_S, close_timeout=CLOSE_TIMEOUT_S, **options)
        )
        for _ in range(args.connections)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    opened = [ws for ws in outcomes if isinstance(ws, ClientConnection)]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
            raise connect_failure(outcome, args.url, OPEN_TIMEOUT_S) from None
    return opened


def _payload(size: int | None, text: bool) -> str | bytes:
    size = size or 0
    if text:
        return "".join(random.choices(string.ascii_letters, k=size))
    return os.urandom(size)


async def _worker(
    ws: ClientConnection,
    payload: str | bytes,
    pipeline: int,
    results: Results,
    stop: asyncio.Event,
    drain_s: float,
) -> None:
    """Keep ``pipeline`` messages in flight on ``ws`` until ``stop``; then collect the replies.

    Raises:
        ConnectionClosed: the connection closed during the run.
    """
    in_flight: deque[float] = deque()
    window = asyncio.Semaphore(pipeline)

    async def receive() -> None:
        while not (stop.is_set() and not in_flight):
            message = await ws.recv()
            now = time.perf_counter()
            if not in_flight:
                results.unexpected += 1
                continue
            results.record(now - in_flight.popleft(), len(message))
            window.release()

    receiver = asyncio.create_task(receive())
    stopped = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            acquire = asyncio.create_task(window.acquire())
            waiting: set[asyncio.Task[Any]] = {acquire, receiver, stopped}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if receiver.done():
                acquire.cancel()
                receiver.result()  # it only ends early on ConnectionClosed
                return
            if stop.is_set():
                if acquire.done():
                    window.release()
                acquire.cancel()
                break
            in_flight.append(time.perf_counter())
            results.sent += 1
            await ws.send(payload)
        if in_flight:
            await asyncio.wait_for(asyncio.shield(receiver), drain_s)
    except TimeoutError:
        pass  # the replies still missing are reported as sent minus received
    except ConnectionClosed:
        if not stop.is_set():
            raise
    finally:
        receiver.cancel()
        stopped.cancel()
        await asyncio.gather(receiver, stopped, return_exceptions=True)


async def _first_failure(workers: list[asyncio.Task[None]]) -> None:
    """Return when a worker fails (its connection closed under it); never if none does."""
    for finished in asyncio.as_completed(workers):
        try:
            await finished
        except ConnectionClosed:
            return
    await asyncio.Event().wait()


async def _progress(
    duration_s: float, started: float, results: Results, stop: asyncio.Event
) -> None:
    """Draw a progress bar on stderr, if stderr is a terminal, until ``stop``."""
    if not sys.stderr.isatty():
        return
    loop = asyncio.get_running_loop()
    width = 30
    try:
        while not stop.is_set():
            elapsed = loop.time() - started
            done = min(1.0, elapsed / duration_s) if duration_s > 0 else 1.0
            filled = round(done * width)
            rate = results.received / elapsed if elapsed > 0 else 0.0
            bar = "#" * filled + "." * (width - filled)
            sys.stderr.write(
                f"\r[{bar}] {elapsed:5.1f}/{duration_s:g} s  {rate:>11,.0f} msg/s"
                f"  {results.received:>12,} replies"
            )
            sys.stderr.flush()
            await asyncio.sleep(PROGRESS_INTERVAL_S)
    finally:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def _report(args: argparse.Namespace, results: Results) -> None:
    latency = results.latency_ms()
    size = args.size or 0
    if args.json:
        report = {
            "url": args.url,
            "connections": args.connections,
            "pipeline": args.pipeline,
            "message_bytes": size,
            "text": args.text,
            "duration_s": round(results.elapsed_s, 3),
            "sent": results.sent,
            "received": results.received,
            "unexpected": results.unexpected,
            "messages_per_s": round(results.rate, 1),
            "bytes_per_s": round(results.bytes_received / results.elapsed_s, 1)
            if results.elapsed_s
            else 0.0,
            "latency_ms": {key: round(value, 4) for key, value in latency.items()},
        }
        print(json.dumps(report, indent=2))
        return
    kind = "text" if args.text else "binary"
    mib_per_s = results.bytes_received / results.elapsed_s / 2**20 if results.elapsed_s else 0.0
    print(f"{args.url}")
    print(
        f"  {args.connections} connections, pipeline {args.pipeline}, "
        f"{size}-byte {kind} messages, {results.elapsed_s:.1f} s"
    )
    print(
        f"  messages  {results.sent:,} sent, {results.received:,} echoed: "
        f"{results.rate:,.0f} msg/s ({mib_per_s:,.2f} MiB/s each way)"
    )
    if latency:
        parts = "  ".join(f"{key} {value:.3f}" for key, value in latency.items() if key != "mean")
        print(f"  latency   {parts} (ms)")
    if results.unexpected:
        print(f"  {results.unexpected:,} messages arrived that were not replies")
