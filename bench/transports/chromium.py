"""Capture the request heads a real Chromium sends for each kind of transport request.

    python bench/transports/chromium.py          # rewrites chromium_headers.json

A tiny server on 127.0.0.1 serves a page that makes, from the page's own origin, the requests
the transports are made of: an XMLHttpRequest GET (short polling), an XMLHttpRequest POST
without a body (SockJS xhr and xhr_streaming), an EventSource, an iframe (htmlfile) and a
WebSocket. The server records each request's head, byte for byte, and answers 204 (the
WebSocket upgrade gets 404). The fixture keeps the header fields in Chromium's order, with the
server's port written as ``{port}``; the load generator sends exactly those.
``tests/test_bench_transports.py`` captures them again and checks that the fixture still
matches the Chromium installed here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Browser

__all__ = ["CHROMIUM", "KINDS", "capture", "fixture", "main"]

CHROMIUM = "/usr/bin/chromium"
FIXTURE = Path(__file__).with_name("chromium_headers.json")
KINDS = ("xhr_get", "xhr_post", "eventsource", "htmlfile", "websocket")

PAGE = """<!doctype html><meta charset="utf-8"><title>capture</title>
<script>
  const get = new XMLHttpRequest(); get.open("GET", "/capture/xhr_get"); get.send();
  const post = new XMLHttpRequest(); post.open("POST", "/capture/xhr_post"); post.send(null);
  new EventSource("/capture/eventsource");
  new WebSocket(`ws://${location.host}/capture/websocket`);
  const frame = document.createElement("iframe");
  frame.src = "/capture/htmlfile";
  document.documentElement.append(frame);
</script>
"""


async def _record(heads: dict[str, bytes], done: asyncio.Event) -> Any:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                if target == "/":
                    body = PAGE.encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    continue
                kind = target.rpartition("/")[2]
                if kind in KINDS:
                    heads.setdefault(kind, head)
                    if len(heads) == len(KINDS):
                        done.set()
                if kind == "websocket":
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    break
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def capture(browser: Browser, timeout_s: float = 30) -> dict[str, bytes]:
    """Load the page in ``browser``; return ``{kind: raw request head}`` for every kind."""
    heads: dict[str, bytes] = {}
    done = asyncio.Event()
    server = await _record(heads, done)
    port = server.sockets[0].getsockname()[1]
    try:
        page = await browser.new_page()
        try:
            await page.goto(f"http://127.0.0.1:{port}/")
            await asyncio.wait_for(done.wait(), timeout_s)
        finally:
            await page.close()
    finally:
        server.close()
    return {kind: heads[kind].replace(f":{port}".encode(), b":{port}") for kind in KINDS}


def fixture(heads: dict[str, bytes], browser_version: str) -> dict[str, Any]:
    """The fixture file's content: each kind's method and header fields, in order."""
    requests = {}
    for kind, head in heads.items():
        request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        requests[kind] = {
            "method": request_line.split(" ")[0],
            "headers": [[n, v.strip()] for n, _, v in (line.partition(":") for line in lines)],
            "head_bytes": len(head.replace(b"{port}", b"9900")) - len(request_line) - 2,
        }
    return {
        "about": "Request heads of Chromium, captured by bench/transports/chromium.py; "
        "head_bytes counts the header lines and the blank line, not the request line, "
        "with a 4-digit port.",
        "browser": browser_version,
        "requests": requests,
    }


async def _main() -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            heads = await capture(browser)
            version = browser.version
        finally:
            await browser.close()
    FIXTURE.write_text(json.dumps(fixture(heads, version), indent=2) + "\n")
    print(f"wrote {FIXTURE} ({version})")


def main() -> None:
    """Capture with /usr/bin/chromium and rewrite the fixture."""
    if not Path(CHROMIUM).exists():
        subprocess.run(["scripts/ensure-system-packages.sh", "chromium"], check=True)
    asyncio.run(_main())
    sys.exit(0)


if __name__ == "__main__":
    main()
