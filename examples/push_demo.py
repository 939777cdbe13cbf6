"""Server push in the browser: a page that shows what the server sends, as it happens.

Run it with ``make demo`` (or ``python examples/push_demo.py [--port PORT]``), open the URL it
prints, and watch: every second the server pushes a tick (a counter and its clock) to every
open page, and echoes whatever a page sends. The page and the WebSocket share one port: plain
HTTP requests are answered by `process_request`, upgrade requests become WebSocket
connections. Ctrl-C closes every connection with 1001 (going away) and exits; the pages
then reconnect, with backoff, until the server is back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import fullduplex
from fullduplex import Request, Response, ServerConnection

PAGE = (Path(__file__).parent / "push_demo.html").read_bytes()
TICK_INTERVAL_S = 1.0

pages: set[ServerConnection] = set()


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    """Serve the page at /, let /ws through to the WebSocket handshake, and 404 the rest."""
    path = urlsplit(request.path).path
    if path == "/":
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        return Response(200, headers, body=PAGE)
    if path == "/ws":
        return None
    return Response(404, [("Content-Type", "text/plain; charset=utf-8")], body=b"Not Found\n")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def push_ticks(ws: ServerConnection) -> None:
    """Send this page a tick every second until its connection closes."""
    count = 0
    with contextlib.suppress(fullduplex.ConnectionClosed):
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            count += 1
            tick = {"type": "tick", "count": count, "time": now(), "pages": len(pages)}
            await ws.send(json.dumps(tick))


async def handler(ws: ServerConnection) -> None:
    """Greet the page, push ticks to it, and echo what it sends."""
    pages.add(ws)
    pusher = asyncio.create_task(push_ticks(ws))
    try:
        await ws.send(json.dumps({"type": "hello", "time": now(), "pages": len(pages)}))
        async for message in ws:
            text = message if isinstance(message, str) else f"<{len(message)} bytes>"
            await ws.send(json.dumps({"type": "echo", "text": text, "time": now()}))
    finally:
        pages.discard(ws)
        pusher.cancel()


async def main(host: str, port: int) -> None:
    # Ctrl-C cancels this coroutine (asyncio.run sees to it); SIGTERM ends it the same way.
    loop = asyncio.get_running_loop()
    terminated = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, terminated.set_result, None)
    async with fullduplex.serve(handler, host, port, process_request=process_request):
        print(f"push demo: open http://{host}:{port}/ (Ctrl-C stops)", flush=True)
        await terminated


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="fullduplex server-push demo")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port))
