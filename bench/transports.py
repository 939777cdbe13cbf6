"""The article's polling-vs-WebSocket table, measured: every transport, bytes on the wire.

    make bench-transports                        # or: .venv/bin/python bench/transports.py
    .venv/bin/python bench/transports.py --clients 100,1000 --seconds 10
    .venv/bin/python bench/transports.py --smoke # 10 clients, 2 s, no docs (the smoke test)

For each transport (short polling at 1 request/s, long-polling, xhr-streaming, htmlfile,
EventSource, SockJS over WebSocket, raw WebSocket) and each client count, a fullduplex server
(a subprocess) sends every client one small message per second, and a load generator (another
subprocess) runs the clients. The load generator speaks each transport itself, on plain
sockets, so that it counts every byte it writes and reads: request and response heads
included, exactly what crosses the socket. Its requests carry the headers a real Chromium
sends for that kind of request, captured first (Playwright, /usr/bin/chromium) from requests
the browser makes to a local server.

Measured in a window after a warm-up: bytes per delivered message in each direction, HTTP
requests per message, delivery latency (server timestamp to client receipt, same machine)
p50/p99, server CPU time per 1,000 messages (/proc/PID/stat), and the load generator's CPU
share, to show it was not the bottleneck. The run appends to bench/results/transports.jsonl
and, unless --smoke, rewrites the measured section of docs/transports.md and
docs/transports.png (with matplotlib, from the ``bench`` extra).

Processes are stopped by PID in ``finally`` blocks; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
DOC = REPO / "docs" / "transports.md"
CHART = REPO / "docs" / "transports.png"
BEGIN, END = "<!-- bench-transports:begin -->", "<!-- bench-transports:end -->"

TRANSPORTS = [
    "short-polling",
    "long-polling",
    "xhr-streaming",
    "htmlfile",
    "eventsource",
    "sockjs-websocket",
    "websocket",
]
# Which captured Chromium request each transport's requests look like.
REQUEST_KIND = {
    "short-polling": "fetch-get",
    "long-polling": "xhr-post",
    "xhr-streaming": "xhr-post",
    "htmlfile": "iframe",
    "eventsource": "eventsource",
    "sockjs-websocket": "websocket",
    "websocket": "websocket",
}
# Headers that depend on the connection, not on the browser: written per request.
PER_REQUEST = {"host", "content-length", "sec-websocket-key", "cookie"}
# The clients here read plain frames: no permessage-deflate (SockJS frames are small anyway).
NOT_SENT = {"sec-websocket-extensions"}


# --- the server ------------------------------------------------------------------------------


async def serve(port: int) -> None:
    """Serve every transport on 127.0.0.1:``port``; one message per second to each client."""
    import fullduplex
    from fullduplex.transports import HTTPExchange, Router, Session
    from fullduplex.transports.sockjs import SockJSEndpoint

    sessions: set[Session] = set()
    history: deque[tuple[int, str]] = deque(maxlen=16)

    async def subscriber(session: Session) -> None:
        sessions.add(session)
        try:
            async for _ in session:
                pass
        finally:
            sessions.discard(session)

    async def poll(exchange: HTTPExchange) -> None:
        query = exchange.request.path.partition("?")[2]
        since = int(query.partition("since=")[2] or 0)
        fresh = [message for seq, message in history if seq > since]
        body = ("[" + ",".join(fresh) + "]").encode()
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        await exchange.respond(200, headers, body)

    async def tick() -> None:
        seq = 0
        while True:
            await asyncio.sleep(1 - time.time() % 1)
            seq += 1
            message = json.dumps({"seq": seq, "t": time.time_ns()}, separators=(",", ":"))
            history.append((seq, message))
            for session in list(sessions):
                with contextlib.suppress(Exception):
                    await session.send(message)

    app = Router()
    app.route("/poll", poll)
    app.websocket("/ws", subscriber)
    app.mount("/sockjs", SockJSEndpoint(subscriber, max_sessions=200_000))
    ticker = asyncio.ensure_future(tick())
    async with fullduplex.serve(app, "127.0.0.1", port) as server:
        print(f"ready {server.port}", flush=True)
        await server.serve_forever()
    ticker.cancel()


# --- Chromium's request headers --------------------------------------------------------------

CAPTURE_PAGE = b"""<!doctype html><meta charset="utf-8"><title>capture</title><body>
<script>
fetch("/c/fetch-get?since=0");
const xhr = new XMLHttpRequest(); xhr.open("POST", "/c/xhr-post"); xhr.send();
new EventSource("/c/eventsource");
const frame = document.createElement("iframe"); frame.src = "/c/iframe";
document.body.appendChild(frame);
new WebSocket("ws://" + location.host + "/c/websocket");
</script>"""


async def capture_chromium_headers() -> dict[str, list[list[str]]]:
    """The request headers Chromium sends for each kind of request a transport makes."""
    from playwright.async_api import async_playwright

    import fullduplex
    from fullduplex.protocol.http11 import Request, Response
    from fullduplex.transports import HTTPExchange, Router, Session
    from fullduplex.transports.base import Endpoint

    captured: dict[str, list[list[str]]] = {}
    done = asyncio.Event()

    class Capture(Endpoint):
        async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
            captured[path.strip("/")] = [list(item) for item in exchange.request.headers]
            if len(captured) == 5:
                done.set()
            await exchange.respond(200, [("Content-Type", "text/plain")], b"")

        def refuse_websocket(self, request: Request, path: str) -> Response | None:
            captured["websocket"] = [list(item) for item in request.headers]
            if len(captured) == 5:
                done.set()
            return None

        async def handle_websocket(self, session: Session, path: str) -> None:
            await session.close()

    async def page(exchange: HTTPExchange) -> None:
        await exchange.respond(200, [("Content-Type", "text/html")], CAPTURE_PAGE)

    app = Router()
    app.route("/", page)
    app.mount("/c", Capture())
    async with fullduplex.serve(app, "127.0.0.1", 0) as server, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            tab = await browser.new_page()
            await tab.goto(f"http://127.0.0.1:{server.port}/")
            await asyncio.wait_for(done.wait(), 20)
        finally:
            await browser.close()
    return captured


def browser_headers(kind: str, captured: dict[str, list[list[str]]]) -> list[tuple[str, str]]:
    """Chromium's headers for ``kind``, without those written per request."""
    skipped = PER_REQUEST | NOT_SENT
    return [(name, value) for name, value in captured[kind] if name.lower() not in skipped]


# --- the load generator ------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients counted; only inside the measuring window."""

    measuring: bool = False
    ready: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    requests: int = 0
    messages: int = 0
    payload_bytes: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class Conn:
    """A client socket that counts what it writes and reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tally: Tally):
        self.reader, self.writer, self.tally = reader, writer, tally

    async def send(self, data: bytes) -> None:
        if self.tally.measuring:
            self.tally.bytes_up += len(data)
        self.writer.write(data)
        await self.writer.drain()

    def _count(self, data: bytes) -> bytes:
        if self.tally.measuring:
            self.tally.bytes_down += len(data)
        return data

    async def readuntil(self, separator: bytes) -> bytes:
        return self._count(await self.reader.readuntil(separator))

    async def readexactly(self, size: int) -> bytes:
        return self._count(await self.reader.readexactly(size))

    async def request(
        self, method: str, path: str, headers: list[tuple[str, str]], host: str
    ) -> None:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if method == "POST":
            lines.append("Content-Length: 0")
        if self.tally.measuring:
            self.tally.requests += 1
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def response_head(self) -> dict[str, str]:
        head = (await self.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = {}
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return fields

    async def body(self, head: dict[str, str]) -> bytes:
        if "content-length" in head:
            return await self.readexactly(int(head["content-length"]))
        chunks = []
        while (chunk := await self.chunk()) is not None:
            chunks.append(chunk)
        return b"".join(chunks)

    async def chunk(self) -> bytes | None:
        """One chunk of a chunked body, or None at its end."""
        size = int((await self.readuntil(b"\r\n")).strip(), 16)
        data = await self.readexactly(size + 2)
        return data[:-2] if size else None


def received(tally: Tally, message: str | dict[str, int]) -> None:
    if tally.measuring:
        if isinstance(message, dict):
            message = json.dumps(message, separators=(",", ":"))
        sent_ns = json.loads(message)["t"]
        tally.messages += 1
        tally.payload_bytes += len(message)
        tally.latencies_ms.append((time.time_ns() - sent_ns) / 1e6)


class Ready:
    """Counts a client once, when its first response (or open frame) arrived."""

    def __init__(self, tally: Tally) -> None:
        self.tally, self.done = tally, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.tally.ready += 1


def sockjs_frames(tally: Tally, frame: str) -> None:
    if frame.startswith("a"):
        for message in json.loads(frame[1:]):
            received(tally, message)


async def run_client(
    transport: str, port: int, headers: list[tuple[str, str]], tally: Tally
) -> None:
    host = f"127.0.0.1:{port}"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = Conn(reader, writer, tally)
    ready = Ready(tally)
    base = f"/sockjs/000/{uuid.uuid4().hex}"
    try:
        if transport == "short-polling":
            since = 0
            phase = random.random()  # each client polls at its own point of the second
            while True:
                await asyncio.sleep((phase - time.time()) % 1)
                await conn.request("GET", f"/poll?since={since}", headers, host)
                head = await conn.response_head()
                ready()
                for message in json.loads(await conn.body(head)):
                    since = max(since, message["seq"])
                    received(tally, message)
        elif transport == "long-polling":
            while True:
                await conn.request("POST", base + "/xhr", headers, host)
                head = await conn.response_head()
                ready()
                sockjs_frames(tally, (await conn.body(head)).decode().strip())
        elif transport in ("xhr-streaming", "eventsource", "htmlfile"):
            method, path = {
                "xhr-streaming": ("POST", "/xhr_streaming"),
                "eventsource": ("GET", "/eventsource"),
                "htmlfile": ("GET", "/htmlfile?c=p"),
            }[transport]
            while True:
                await conn.request(method, base + path, headers, host)
                await conn.response_head()
                ready()
                while (chunk := await conn.chunk()) is not None:
                    text = chunk.decode()
                    if transport == "htmlfile" and text.startswith("<script>\np("):
                        sockjs_frames(
                            tally, json.loads(text[len("<script>\np(") : -len(");\n</script>\r\n")])
                        )
                    elif transport == "eventsource" and text.startswith("data: "):
                        sockjs_frames(tally, text[6:].strip().replace("%25", "%"))
                    elif transport == "xhr-streaming":
                        sockjs_frames(tally, text.strip())
        else:
            path = base + "/websocket" if transport == "sockjs-websocket" else "/ws"
            key = base64.b64encode(os.urandom(16)).decode()
            await conn.request("GET", path, [*headers, ("Sec-WebSocket-Key", key)], host)
            await conn.response_head()
            ready()
            while True:
                first, second = await conn.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    size = int.from_bytes(await conn.readexactly(2), "big")
                elif size == 127:
                    size = int.from_bytes(await conn.readexactly(8), "big")
                payload = await conn.readexactly(size)
                if first & 0x0F == 9:  # a ping: a browser answers with a (masked) pong
                    mask = os.urandom(4)
                    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                    await conn.send(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)
                if first & 0x0F != 1:
                    continue
                text = payload.decode()
                if transport == "websocket":
                    received(tally, text)
                else:
                    sockjs_frames(tally, text)
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(args: argparse.Namespace) -> None:
    captured = json.loads(Path(args.headers).read_text())
    headers = browser_headers(REQUEST_KIND[args.transport], captured)
    tally = Tally()
    clients = []
    for index in range(args.clients):
        clients.append(asyncio.ensure_future(run_client(args.transport, args.port, headers, tally)))
        if index % 100 == 99:  # connect in batches: the server accepts, the loop breathes
            await asyncio.sleep(0.05)
    # Every client connected and answered once (bounded), then the warm-up: the window
    # measures the steady state, not connection set-up.
    connect_deadline = time.monotonic() + 60
    while tally.ready < args.clients and time.monotonic() < connect_deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(args.warmup)
    server_cpu = cpu_seconds(args.server_pid)
    own_cpu = time.process_time()
    start = time.monotonic()
    tally.measuring = True
    await asyncio.sleep(args.seconds)
    tally.measuring = False
    window = time.monotonic() - start
    server_cpu = cpu_seconds(args.server_pid) - server_cpu
    own_cpu = time.process_time() - own_cpu
    failed = [c for c in clients if c.done() and c.exception() is not None]
    for client in clients:
        client.cancel()
    latencies = sorted(tally.latencies_ms) or [float("nan")]
    messages = max(tally.messages, 1)
    print(
        json.dumps(
            {
                "transport": args.transport,
                "clients": args.clients,
                "failed_clients": len(failed),
                "connected_clients": tally.ready,
                # Each client should get one message per second of the window.
                "delivered_share": round(tally.messages / (args.clients * window), 3),
                "window_s": round(window, 2),
                "messages": tally.messages,
                "bytes_up_per_message": round(tally.bytes_up / messages, 1),
                "bytes_down_per_message": round(tally.bytes_down / messages, 1),
                "payload_bytes_per_message": round(tally.payload_bytes / messages, 1),
                "requests_per_message": round(tally.requests / messages, 3),
                "latency_p50_ms": round(latencies[len(latencies) // 2], 2),
                "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
                "server_cpu_ms_per_1000_messages": round(server_cpu * 1e6 / messages, 1),
                "load_cpu_share": round(own_cpu / window, 3),
                "server_cpu_share": round(server_cpu / window, 3),
            }
        ),
        flush=True,
    )


# --- the run -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        ),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def run_cell(
    transport: str, clients: int, seconds: float, warmup: float, headers_file: Path
) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        port = int(line.split()[1])
        generator = subprocess.run(
            [
                sys.executable,
                __file__,
                "load",
                "--transport",
                transport,
                "--clients",
                str(clients),
                "--port",
                str(port),
                "--seconds",
                str(seconds),
                "--warmup",
                str(warmup),
                "--server-pid",
                str(server.pid),
                "--headers",
                str(headers_file),
            ],
            capture_output=True,
            text=True,
            timeout=warmup + seconds + 120 + clients / 100,
        )
        if generator.returncode != 0:
            raise RuntimeError(f"load generator failed: {generator.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(generator.stdout.strip().splitlines()[-1])
        return result
    finally:
        stop(server)
        if server.stdout is not None:
            server.stdout.close()


ARTICLE_HEADER_BYTES = 871
ARTICLE_WS_FRAME_BYTES = 2


def mbps(clients: int, bytes_per_second_each: float) -> float:
    """Megabits per second as the article counts them (2^20 bits: 871 B x 1,000 = 6.6)."""
    return clients * bytes_per_second_each * 8 / 2**20


def overhead(result: dict[str, Any]) -> float:
    """Bytes per message beyond the message itself: headers, framing, escaping, both ways."""
    total: float = result["bytes_up_per_message"] + result["bytes_down_per_message"]
    return total - result["payload_bytes_per_message"]


def render(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        f"Measured {info['date']} on {info['machine']['cpu']} ({info['machine']['cores']} cores, "
        f"load average {' '.join(info['machine']['loadavg_at_start'])} at the start: the machine "
        "was shared, so latency and CPU are noisy; bytes are exact). Each client receives one "
        f"message per second for {info['seconds']} s after a {info['warmup']} s warm-up; "
        "requests carry the headers Chromium sent in the capture "
        "(`bench/results/chromium_headers.json`).",
        "",
        "| transport | clients | bytes up / msg | bytes down / msg | of which overhead | "
        "requests / msg | p50 ms | p99 ms | server CPU ms / 1000 msg | load-gen CPU share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['transport']} | {r['clients']} | did not finish: {r['error']} |")
            continue
        saturated = r.get("delivered_share", 1) < 0.95 or r["failed_clients"]
        name = (
            f"{r['transport']} (saturated: {r.get('delivered_share', 0):.0%} delivered)"
            if saturated
            else r["transport"]
        )
        lines.append(
            f"| {name} | {r['clients']} | {r['bytes_up_per_message']} | "
            f"{r['bytes_down_per_message']} | {overhead(r):.1f} | {r['requests_per_message']} | "
            f"{r['latency_p50_ms']} | {r['latency_p99_ms']} | "
            f"{r['server_cpu_ms_per_1000_messages']} | {r['load_cpu_share']} |"
        )
    lines += [
        "",
        "*Overhead* is what crossed the socket beyond the message itself (a ~35-byte JSON "
        "text): request and response heads, transport framing, escaping. Streaming "
        "transports pay one request per 128 KiB response (about 2,500 of these messages), "
        "not one per message; no response ended inside the window.",
        "",
        "The article's table next to ours: the overhead's bandwidth for N clients each getting "
        "one message per second, both directions, in the article's Mbps (2^20 bits/s). The "
        f"article counts {ARTICLE_HEADER_BYTES} bytes of headers per poll and "
        f"{ARTICLE_WS_FRAME_BYTES}-byte WebSocket frames; ours is the measured overhead per "
        "message above, at the largest client count that kept up.",
        "",
        "| | 1,000 clients | 10,000 clients | 100,000 clients |",
        "| --- | ---: | ---: | ---: |",
        "| article: polling, 871 B headers | "
        + " | ".join(f"{mbps(n, ARTICLE_HEADER_BYTES):.3f}" for n in (1000, 10_000, 100_000))
        + " |",
        "| article: WebSocket, 2 B frames | "
        + " | ".join(f"{mbps(n, ARTICLE_WS_FRAME_BYTES):.3f}" for n in (1000, 10_000, 100_000))
        + " |",
    ]
    for r in largest_finished(results):
        each = overhead(r)
        lines.append(
            f"| measured: {r['transport']} ({each:.0f} B) | "
            + " | ".join(f"{mbps(n, each):.3f}" for n in (1000, 10_000, 100_000))
            + " |"
        )
    lines += ["", "![bytes per message by transport](transports.png)", END]
    return "\n".join(lines)


def largest_finished(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per transport, in order, the result with the most clients that kept up (every client
    connected, at least 95% of the messages delivered in the window)."""
    best: dict[str, dict[str, Any]] = {}
    for r in results:
        finished = "error" not in r and not r["failed_clients"]
        if (
            finished
            and r.get("delivered_share", 1) >= 0.95
            and r["clients"] >= best.get(r["transport"], {"clients": 0})["clients"]
        ):
            best[r["transport"]] = r
    return [best[name] for name in TRANSPORTS if name in best]


def plot(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = largest_finished(results)
    names = [f"{r['transport']} ({r['clients']})" for r in rows]
    up = [r["bytes_up_per_message"] for r in rows]
    down = [r["bytes_down_per_message"] for r in rows]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    axis.barh(names, up, label="client to server")
    axis.barh(names, down, left=up, label="server to client")
    axis.set_xlabel("bytes on the wire per delivered message (headers included)")
    axis.set_title("one message per second per client (clients in parentheses)")
    axis.invert_yaxis()
    axis.legend()
    figure.tight_layout()
    figure.savefig(CHART, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    serving = sub.add_parser("serve")
    serving.add_argument("--port", type=int, default=0)
    loading = sub.add_parser("load")
    loading.add_argument("--transport", choices=TRANSPORTS, required=True)
    loading.add_argument("--clients", type=int, required=True)
    loading.add_argument("--port", type=int, required=True)
    loading.add_argument("--seconds", type=float, required=True)
    loading.add_argument("--warmup", type=float, required=True)
    loading.add_argument("--server-pid", type=int, required=True)
    loading.add_argument("--headers", required=True)
    parser.add_argument("--clients", default="100,1000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--smoke", action="store_true", help="10 clients, 2.5 s, no docs")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where results go")
    args = parser.parse_args()
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.port))
        return
    if args.command == "load":
        asyncio.run(load(args))
        return
    if args.smoke:
        args.clients, args.seconds, args.warmup = "10", 2.5, 1.5
    args.out.mkdir(parents=True, exist_ok=True)
    headers_file = args.out / "chromium_headers.json"
    headers_file.write_text(json.dumps(asyncio.run(capture_chromium_headers()), indent=1))
    info = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "seconds": args.seconds,
        "warmup": args.warmup,
    }
    results = []
    for clients in (int(n) for n in args.clients.split(",")):
        for transport in args.transports.split(","):
            try:
                result = run_cell(transport, clients, args.seconds, args.warmup, headers_file)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                # Recorded, not fatal: at 10,000 clients this shared machine may not keep up.
                detail = str(error).splitlines()[-1][:160]
                result = {"transport": transport, "clients": clients, "error": detail}
            print(json.dumps(result), flush=True)
            results.append(result)
    with (args.out / "transports.jsonl").open("a") as out:
        out.write(json.dumps({**info, "smoke": args.smoke, "results": results}) + "\n")
    if not args.smoke:
        section = render(results, info)
        text = DOC.read_text()
        if BEGIN in text:
            text = re.sub(
                re.escape(BEGIN) + ".*" + re.escape(END), lambda _: section, text, flags=re.S
            )
        else:
            text += (
                "\n## The article's table, measured (`make bench-transports`)\n\n" + section + "\n"
            )
        DOC.write_text(text)
        plot(results)


if __name__ == "__main__":
    main()
