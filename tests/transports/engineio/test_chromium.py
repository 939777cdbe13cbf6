"""The engine.io-client browser bundle in Chromium (Playwright, the system's /usr/bin/chromium),
from a page of another origin: CORS as a browser enforces it, in the three transport modes.

The page comes from one fullduplex server, the Engine.IO endpoint is on a second one (another
port, so another origin), with ``cors`` listing the page's origin and credentials on (the
client sends ``withCredentials``). An endpoint whose list leaves the page's origin out is
refused (403), and the browser's client never opens.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import fullduplex
from fullduplex.transports import HTTPExchange, Router
from fullduplex.transports.engineio import EngineIOEndpoint

from .server import echo

if TYPE_CHECKING:
    from playwright.async_api import Browser

HERE = Path(__file__).resolve().parent
BUNDLE = HERE.parents[1] / "node_modules" / "engine.io-client" / "dist" / "engine.io.min.js"
CHECKS = HERE / "eio_checks.js"


async def page(exchange: HTTPExchange) -> None:
    await exchange.respond(200, [("Content-Type", "text/html")], b"<!doctype html><title>p</title>")


@asynccontextmanager
async def two_origins(
    allowed: list[str] | None, credentials: bool = False
) -> AsyncIterator[tuple[str, str]]:
    """Serve a page on one port and an echo endpoint on another; yield both origins.

    The endpoint's ``cors`` is ``allowed``, or the page's origin alone when None.
    """
    async with AsyncExitStack() as stack:
        pages = Router()
        pages.route("/", page)
        page_server = await stack.enter_async_context(fullduplex.serve(pages, "127.0.0.1", 0))
        page_origin = f"http://127.0.0.1:{page_server.port}"
        endpoint = EngineIOEndpoint(
            echo,
            ping_interval_ms=300,
            ping_timeout_ms=200,
            cors=[page_origin] if allowed is None else allowed,
            cors_credentials=credentials,
        )
        app = Router()
        app.mount("/engine.io", endpoint)
        server = await stack.enter_async_context(fullduplex.serve(app, "127.0.0.1", 0))
        stack.push_async_callback(endpoint.aclose)
        yield page_origin, f"http://127.0.0.1:{server.port}"


async def run_check(browser: Browser, page_origin: str, url: str, mode: str) -> dict[str, Any]:
    tab = await browser.new_page()
    try:
        await tab.goto(page_origin + "/")
        await tab.add_script_tag(path=str(BUNDLE))
        await tab.add_script_tag(path=str(CHECKS))
        result: dict[str, Any] = await tab.evaluate(
            "([url, mode]) => eioCheck({ url, mode, withCredentials: true })", [url, mode]
        )
        return result
    finally:
        await tab.close()


@pytest.mark.browser
@pytest.mark.parametrize(
    ("mode", "transports"),
    [("polling", ["polling"]), ("websocket", ["websocket"]), ("upgrade", ["polling", "websocket"])],
)
async def test_engine_io_client_in_chromium_echoes_across_origins(
    chromium_browser: Browser,
    require_tool: Callable[[str, str | os.PathLike[str]], str],
    mode: str,
    transports: list[str],
) -> None:
    require_tool("engine.io-client", BUNDLE)
    async with two_origins(None, credentials=True) as (page_origin, url):
        result = await run_check(chromium_browser, page_origin, url, mode)
    assert result["ok"], result["error"]
    assert result["transports"] == transports


@pytest.mark.browser
async def test_chromium_client_from_an_origin_not_listed_never_opens(
    chromium_browser: Browser, require_tool: Callable[[str, str | os.PathLike[str]], str]
) -> None:
    require_tool("engine.io-client", BUNDLE)
    async with two_origins(["http://example.invalid"]) as (page_origin, url):
        result = await run_check(chromium_browser, page_origin, url, "polling")
    assert not result["ok"]
    assert result["transports"] == []
