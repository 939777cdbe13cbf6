"""The load generator of the transport benchmark: N clients of one transport, in one process.

    python bench/transports/loadgen.py --port PORT --transport xhr-polling --clients 1000 \\
        --warmup 3 --duration 10

One asyncio process (uvloop), one `asyncio.Protocol` per client, each on its own TCP connection
(HTTP/1.1 keep-alive, as a browser holds it). Every request is the head Chromium sends for that
kind of request (``chromium_headers.json``, captured by ``chromium.py``), with only the path,
the port and the WebSocket key put in. Bytes are counted at the socket: every byte handed to
``transport.write`` and every byte ``data_received`` gets, TCP payload only (no TCP/IP headers).

The server's messages are 20-digit send times (``server.py``); a client finds them in the bytes
it reads, whatever the transport's framing, and the latency is the reader's CLOCK_MONOTONIC
minus the stamp. A polling client parses each response far enough to know where it ends
(``Content-Length`` or chunked), then polls again: at once for long-polling, after 1 s for
short polling; a streaming response that ends (the SockJS response limit) is opened again.

The measured window starts ``--warmup`` seconds after every client has had its first message
(its session set up), so the cost of opening is not in it (``open_bytes_*``: each client's
bytes up to its first message). A SockJS close frame stops the client and counts as an error.

Output is JSON, one object a line: ``opened``, ``measure_start``, ``measure_end``, ``result``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import resource
import string
import sys
import time
from pathlib import Path
from typing import Any, cast

__all__ = ["TRANSPORTS", "load_headers", "request_head", "Client", "Stats", "main"]

HEADERS_FIXTURE = Path(__file__).with_name("chromium_headers.json")
STAMP = re.compile(rb"\d{20}")
TAIL = 19  # a stamp split across two reads is found in the previous read's tail

# transport -> (kind of Chromium request, method, path pattern, poll again after, seconds or None)
TRANSPORTS: dict[str, tuple[str, str, str, float | None]] = {
    "polling": ("xhr_get", "GET", "/poll?id={sid}", 1.0),
    "xhr-polling": ("xhr_post", "POST", "/sockjs/000/{sid}/xhr", 0.0),
    "xhr-streaming": ("xhr_post", "POST", "/sockjs/000/{sid}/xhr_streaming", 0.0),
    "htmlfile": ("htmlfile", "GET", "/sockjs/000/{sid}/htmlfile?c=_jp.a{sid}", 0.0),
    "eventsource": ("eventsource", "GET", "/sockjs/000/{sid}/eventsource", 0.0),
    "sockjs-websocket": ("websocket", "GET", "/sockjs/000/{sid}/websocket", None),
    "websocket": ("websocket", "GET", "/ws", None),
}


def load_headers(path: Path = HEADERS_FIXTURE) -> dict[str, Any]:
    """The captured request heads: ``{kind: {"method", "headers": [[name, value], ...]}}``."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data["requests"]


def request_head(fixture: dict[str, Any], kind: str, method: str, path: str, port: int) -> bytes:
    """The head Chromium sent for ``kind``, for ``path`` on 127.0.0.1:``port``."""
    lines = [f"{method} {path} HTTP/1.1"]
    for name, value in fixture[kind]["headers"]:
        value = value.replace("{port}", str(port))
        if name.lower() == "sec-websocket-key":
            value = base64.b64encode(os.urandom(16)).decode()
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Stats:
    """Counters of the whole process; the harness takes their difference over the window."""

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.requests = 0
        self.messages = 0
        self.reconnects = 0
        self.connected = 0  # clients whose first connection was accepted
        self.errors = 0
        self.first_error = ""
        self.measuring = False
        self.latencies_ns: list[int] = []
        self.open_bytes: list[tuple[int, int]] = []  # (out, in) of each client to its 1st message

    def error(self, text: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or text

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.bytes_in, self.bytes_out, self.requests, self.messages


class Client(asyncio.Protocol):
    """One browser-like client of one transport; reconnects if the server closes."""

    def __init__(self, run: Run, index: int) -> None:
        self.run = run
        self.kind, self.method, pattern, self.repoll_s = TRANSPORTS[run.transport]
        sid = "".join(random.choices(string.ascii_lowercase, k=8))
        self.path = pattern.format(sid=sid)
        self.transport: asyncio.Transport | None = None
        self.tail = b""
        self.buffer = b""
        self.in_head = True
        self.chunked = False
        self.remaining = 0  # body bytes left (Content-Length), or in the current chunk
        self.bytes_out = self.bytes_in = 0
        self.got_first = False
        self.was_connected = False
        self.stopped = False
        self.is_sockjs = self.path.startswith("/sockjs/")

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if not self.was_connected:
            self.was_connected = True
            self.run.stats.connected += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.stopped:
            self.run.stats.reconnects += 1
            retry = asyncio.get_running_loop().create_task(self.run.connect(self, delay_s=0.1))
            self.run.retries.add(retry)
            retry.add_done_callback(self.run.retries.discard)

    def send_request(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = request_head(self.run.fixture, self.kind, self.method, self.path, self.run.port)
        self.in_head, self.buffer = True, b""
        self.transport.write(head)
        self.bytes_out += len(head)
        self.run.stats.bytes_out += len(head)
        self.run.stats.requests += 1

    # -- reading -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        stats = self.run.stats
        stats.bytes_in += len(data)
        self.bytes_in += len(data)
        self._find_messages(data)
        if self.is_sockjs and b"c[" in data:
            # A SockJS close frame: sockjs-client gives up on the session, and so does this.
            stats.error(f"{self.run.transport}: the server closed the session: {data[-80:]!r}")
            self.stopped = True
            if self.transport is not None:
                self.transport.close()
            return
        if self.repoll_s is None and not self.in_head:
            return  # WebSocket: after the 101 head, only messages
        self.buffer += data
        self._parse()

    def _find_messages(self, data: bytes) -> None:
        stats = self.run.stats
        text = self.tail + data
        now = time.monotonic_ns()
        for match in STAMP.finditer(text):
            if not self.got_first:
                self.got_first = True
                stats.open_bytes.append((self.bytes_out, self.bytes_in))
                if len(stats.open_bytes) == len(self.run.clients):
                    self.run.all_served.set()
            stats.messages += 1
            if stats.measuring:
                stats.latencies_ns.append(now - int(match.group()))
        # Keep only an unfinished run of digits: a whole stamp was counted already.
        end = len(text)
        start = end
        while start > 0 and end - start < TAIL and text[start - 1 : start].isdigit():
            start -= 1
        self.tail = text[start:end]

    def _parse(self) -> None:
        """Find the end of the response (head, then Content-Length or chunked body)."""
        while True:
            if self.in_head:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
                if not self._start_response(head):
                    return
                if self.repoll_s is None:
                    self.buffer = b""  # the WebSocket's frames follow: no more parsing
                    return
                continue
            if not self.chunked:
                taken = min(self.remaining, len(self.buffer))
                self.remaining -= taken
                self.buffer = self.buffer[taken:]
                if self.remaining:
                    return
                self._end_response()
                return
            if self.remaining:
                taken = min(self.remaining, len(self.buffer))
                self.remaining -= taken
                self.buffer = self.buffer[taken:]
                if self.remaining:
                    return
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
            if not line:
                continue  # the CRLF after a chunk's data
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self._end_response()  # trailers: none from this server
                return
            self.remaining = size

    def _start_response(self, head: str) -> bool:
        status_line, *fields = head.split("\r\n")
        status = int(status_line.split()[1])
        expected = 101 if self.repoll_s is None else 200
        if status != expected:
            self.run.stats.error(f"{self.path}: {status_line}")
            assert self.transport is not None
            self.transport.close()
            return False
        self.in_head, self.chunked, self.remaining = False, False, 0
        for field in fields:
            name, _, value = field.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                self.remaining = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                self.chunked = True
        if not self.chunked and self.remaining == 0 and self.repoll_s is not None:
            self._end_response()
            return False
        return True

    def _end_response(self) -> None:
        self.in_head, self.buffer = True, b""
        if self.repoll_s:
            asyncio.get_running_loop().call_later(self.repoll_s, self.send_request)
        else:
            self.send_request()


class Run:
    """The clients of one transport against one server port."""

    def __init__(self, transport: str, port: int, clients: int) -> None:
        self.transport = transport
        self.port = port
        self.fixture = load_headers()
        self.stats = Stats()
        self.clients = [Client(self, index) for index in range(clients)]
        self.all_served = asyncio.Event()  # every client has had its first message
        self.retries: set[asyncio.Task[None]] = set()

    async def connect(self, client: Client, delay_s: float = 0.0) -> None:
        await asyncio.sleep(delay_s)
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: client, "127.0.0.1", self.port)
        except OSError as exc:
            self.stats.error(f"connect: {exc}")
            if not client.stopped:
                retry = loop.create_task(self.connect(client, delay_s=1.0))
                self.retries.add(retry)
                retry.add_done_callback(self.retries.discard)
            return
        # A browser's clients do not start in step: the first request at a random moment.
        loop.call_later(random.random(), client.send_request)

    async def open_all(self, concurrency: int = 200) -> None:
        for start in range(0, len(self.clients), concurrency):
            batch = self.clients[start : start + concurrency]
            await asyncio.gather(*(self.connect(client) for client in batch))

    def stop(self) -> None:
        for client in self.clients:
            client.stopped = True
            if client.transport is not None:
                client.transport.abort()


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def percentile_us(sorted_ns: list[int], fraction: float) -> float | None:
    if not sorted_ns:
        return None
    return round(sorted_ns[min(len(sorted_ns) - 1, int(fraction * len(sorted_ns)))] / 1000, 1)


async def measure(args: argparse.Namespace) -> None:
    run = Run(args.transport, args.port, args.clients)
    stats = run.stats
    started = time.monotonic()
    # The window starts once every client has had a message (its session is set up), or
    # after --ready-timeout: a server that cannot accept or serve them all in time shows it
    # in the result (clients_connected, clients_served_before_window). The clients still
    # connecting go on meanwhile.
    opening = asyncio.ensure_future(run.open_all())
    served = asyncio.ensure_future(run.all_served.wait())
    await asyncio.wait({served}, timeout=args.ready_timeout)
    served.cancel()
    emit(
        "opened",
        clients=args.clients,
        connected=stats.connected,
        served=len(stats.open_bytes),
        served_s=round(time.monotonic() - started, 3),
    )
    served_before_window = len(stats.open_bytes)
    await asyncio.sleep(args.warmup)
    first = stats.snapshot()
    stats.measuring = True
    emit("measure_start")
    window_start = time.monotonic()
    await asyncio.sleep(args.duration)
    stats.measuring = False
    seconds = time.monotonic() - window_start
    last = stats.snapshot()
    emit("measure_end")
    bytes_in, bytes_out, requests, messages = (b - a for a, b in zip(first, last, strict=True))
    latencies = sorted(stats.latencies_ns)
    opened = stats.open_bytes
    opening.cancel()
    run.stop()
    emit(
        "result",
        transport=args.transport,
        clients=args.clients,
        messages=messages,
        msgs_per_s=round(messages / seconds, 1),
        expected_msgs_per_s=args.clients,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        requests=requests,
        clients_connected=stats.connected,
        clients_with_a_message=len(opened),
        clients_served_before_window=served_before_window,
        open_bytes_out=round(sum(o for o, _ in opened) / len(opened), 1) if opened else None,
        open_bytes_in=round(sum(i for _, i in opened) / len(opened), 1) if opened else None,
        latency_us={
            "p50": percentile_us(latencies, 0.5),
            "p99": percentile_us(latencies, 0.99),
            "max": percentile_us(latencies, 1.0),
        },
        reconnects=stats.reconnects,
        errors=stats.errors,
        first_error=stats.first_error,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=list(TRANSPORTS), required=True)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--ready-timeout", type=float, default=60.0, help="longest wait for every first message"
    )
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(measure(args))
    else:
        asyncio.run(measure(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
