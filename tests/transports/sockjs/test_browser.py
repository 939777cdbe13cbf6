"""The real sockjs-client (1.6, served by the endpoint) in Chromium, each transport forced.

Two fullduplex servers run the same application: a test page, and a SockJS echo at ``/echo``.
Each of the 7 transports runs from a page on the SockJS server's own origin and from a page
on the other server's origin (another port, so CORS and the iframe transports' cross-domain
path are used): 14 cases. Each sends messages that break naive escaping (every Unicode
plane, ``</script>``, ``%41``, control characters, U+2028) and a 64 KiB message, and expects
them back in order over the transport it asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

import fullduplex
from fullduplex.transports import HTTPExchange, Router, Session
from fullduplex.transports.sockjs import SockJSEndpoint, default_client_script

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

TRANSPORTS = [
    "websocket",
    "xhr-streaming",
    "xhr-polling",
    "iframe-htmlfile",
    "eventsource",
    "iframe-eventsource",
    "jsonp-polling",
]
CASE_TIMEOUT_S = 45

MESSAGES = [
    # One character of each of the 17 Unicode planes (astral ones are surrogate pairs in JS).
    "".join(chr(plane * 0x10000 + 0x4E2D) for plane in range(17)),
    "é中文\u2028\u2029\u200c\ufeff\ufff0\uffff",
    "</script><script>alert(1)</script><!--",
    "%41%%25",
    "".join(chr(code) for code in range(0x20)) + "\x7f\x80\x9f",
    "\"quotes\" and \\backslashes\\ and 'single'",
    "",
    ("0123456789abcdef" * 4096)[:65536],
    "last",
]

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>sockjs-client echo</title>
<script src="/echo/sockjs.min.js"></script>
<script>
"use strict";
window.echo = (url, transport, messages) => new Promise((resolve, reject) => {
  const sock = new SockJS(url, null, { transports: [transport] });
  const received = [];
  sock.onopen = () => { for (const message of messages) sock.send(message); };
  sock.onmessage = (event) => {
    received.push(event.data);
    if (received.length === messages.length) {
      const used = sock.transport;
      sock.close();
      resolve({ received, transport: used });
    }
  };
  sock.onclose = (event) => {
    if (received.length < messages.length) {
      reject(new Error(`closed ${event.code} ${event.reason} after ${received.length}`));
    }
  };
});
</script>
"""


async def page(exchange: HTTPExchange) -> None:
    await exchange.respond(200, [("Content-Type", "text/html; charset=utf-8")], PAGE)


async def echo(session: Session) -> None:
    async for message in session:
        await session.send(message)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def origins(require_tool: Any) -> AsyncIterator[tuple[str, str]]:
    """Two servers of the same application: (the SockJS server's URL, another origin's)."""
    if default_client_script() is None:
        require_tool("sockjs-client", "src/fullduplex/transports/sockjs/client/node_modules")
    app = Router()
    app.route("/", page)
    app.mount("/echo", SockJSEndpoint(echo))
    async with (
        fullduplex.serve(app, "127.0.0.1", 0) as server,
        fullduplex.serve(app, "127.0.0.1", 0) as other,
    ):
        yield f"http://127.0.0.1:{server.port}", f"http://127.0.0.1:{other.port}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(
    chromium_launch_options: dict[str, Any], require_tool: Any
) -> AsyncIterator[Browser]:
    require_tool("chromium", chromium_launch_options["executable_path"])
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(**chromium_launch_options)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.mark.parametrize("origin", ["same-origin", "cross-origin"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sockjs_client_echoes_in_order_over_each_transport(
    browser: Browser, origins: tuple[str, str], transport: str, origin: str
) -> None:
    sockjs_server, other = origins
    page_origin = sockjs_server if origin == "same-origin" else other
    context = await browser.new_context()
    try:
        tab = await context.new_page()
        await tab.goto(page_origin + "/")
        async with asyncio.timeout(CASE_TIMEOUT_S):
            result = await tab.evaluate(
                "([url, transport, messages]) => echo(url, transport, messages)",
                [sockjs_server + "/echo", transport, MESSAGES],
            )
        assert result["transport"] == transport
        assert result["received"] == MESSAGES
    finally:
        await context.close()
