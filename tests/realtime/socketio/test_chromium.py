"""The real socket.io-client 4.8 browser bundle in Chromium (Playwright, the system's
/usr/bin/chromium) against examples/socketio_test_server.py, in each transport mode: the
same checks as the Node client (sio_checks.js)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .support import CLIENT_TEST_HEARTBEAT, REPO, example_server

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHECKS = Path(__file__).with_name("sio_checks.js")
BUNDLE = REPO / "tests" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
async def test_socket_io_client_in_chromium_passes_every_check(
    chromium_browser: Browser,
    require_tool: Callable[[str, str | os.PathLike[str]], str],
    mode: str,
) -> None:
    require_tool("socket.io-client", BUNDLE)
    async with example_server(*CLIENT_TEST_HEARTBEAT) as url:
        page = await chromium_browser.new_page()
        try:
            # A page of the server's origin (its 404 page), so nothing here is cross-origin.
            await page.goto(url + "/")
            await page.add_script_tag(path=str(BUNDLE))
            await page.add_script_tag(path=str(CHECKS))
            results = await page.evaluate(
                "([url, mode]) => sioChecks.runChecks({ io, url, mode })", [url, mode]
            )
        finally:
            await page.close()
    failed = {result["check"]: result.get("detail") for result in results if not result["ok"]}
    assert not failed, json.dumps(failed, indent=1)
    assert len(results) == 8
