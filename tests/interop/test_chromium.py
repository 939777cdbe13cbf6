"""Interoperability with Chromium's native WebSocket, driven by Playwright: fullduplex serves.

fullduplex's own ``process_request`` hook serves the page (any request without an upgrade),
whose script is the echo peer (see conftest). A browser's WebSocket API can neither ping nor
fragment, so those directions are fullduplex's only; Chromium answers fullduplex's pings.

One Chromium runs for the whole module. For wss:// it accepts the key of the server
certificate the trustme CA issued, through ``--ignore-certificate-errors-spki-list``, rather
than every certificate (``--ignore-certificate-errors``): Chromium cannot be told to trust a
CA without a system certificate store, and it matches the list against the chain the server
presents, which does not include the CA.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio

import fullduplex

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from .conftest import Case, Interop, Peer, TestCA

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>fullduplex interop</title>
<script>
"use strict";
const params = new URLSearchParams(location.search);
window.peerLog = { closed: null, errors: [] };
const ws = new WebSocket(params.get("url"), params.getAll("protocol"));
ws.binaryType = "arraybuffer";
ws.onmessage = (event) => {
  const data = event.data;
  if (typeof data !== "string" || !data.startsWith("!")) {
    ws.send(data);
    return;
  }
  const [command, ...args] = data.split(" ");
  if (command === "!info") {
    const info = { subprotocol: ws.protocol || null, extensions: ws.extensions };
    ws.send("info " + JSON.stringify(info));
  } else if (command === "!close") {
    ws.close(Number(args[0]), args.slice(1).join(" "));
  } else {
    window.peerLog.errors.push("unknown command " + command);
  }
};
ws.onerror = () => window.peerLog.errors.push("error event");
ws.onclose = (event) => {
  window.peerLog.closed = { code: event.code, reason: event.reason, wasClean: event.wasClean };
};
</script>
"""


def serve_page(
    ws: fullduplex.ServerConnection, request: fullduplex.Request
) -> fullduplex.Response | None:
    """Answer plain HTTP requests with the page; let WebSocket upgrades through."""
    if "websocket" in (request.headers.get("Upgrade") or "").lower():
        return None
    return fullduplex.Response(200, [("Content-Type", "text/html; charset=utf-8")], PAGE)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium_trusting_test_ca(
    tls: TestCA, chromium_launch_options: dict[str, Any]
) -> AsyncIterator[Browser | None]:
    """One Chromium for the module, or None when it is not installed (`browser` says so)."""
    if not os.path.exists(chromium_launch_options["executable_path"]):
        yield None
        return
    from playwright.async_api import async_playwright

    trust = f"--ignore-certificate-errors-spki-list={tls.server_spki_sha256}"
    options = {**chromium_launch_options, "args": [*chromium_launch_options["args"], trust]}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**options)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def browser(
    require_tool: Callable[[str, str], str],
    chromium_launch_options: dict[str, Any],
    chromium_trusting_test_ca: Browser | None,
) -> Browser:
    require_tool("chromium", chromium_launch_options["executable_path"])
    assert chromium_trusting_test_ca is not None
    return chromium_trusting_test_ca


def describe_chromium(interop: Interop) -> Peer:
    # Chromium echoes the close frame's code and reason.
    return interop.peer(
        "chromium",
        can_ping=False,
        can_fragment=False,
        close_echo=lambda code, reason: (code, reason),
    )


async def test_fullduplex_server_talks_to_chromium(
    case: Case, interop: Interop, browser: Browser
) -> None:
    peer = describe_chromium(interop)
    context = await browser.new_context()

    async def run_page(url: str) -> None:
        # The page comes from where the WebSocket goes: same origin, over TLS for wss://.
        query = urlencode([("url", url), *(("protocol", p) for p in case.subprotocols)])
        page = await context.new_page()
        await page.goto(f"{url.replace('ws', 'http', 1)}?{query}")
        closed = await page.wait_for_function("window.peerLog.closed")
        log = await page.evaluate("window.peerLog")
        assert log["errors"] == [], log
        seen = await closed.json_value()
        assert seen["wasClean"], seen
        peer.close_seen.set_result((seen["code"], seen["reason"]))

    try:
        async with asyncio.timeout(interop.timeout_s):
            await interop.serve(case, peer, run_page, process_request=serve_page)
    finally:
        await context.close()
