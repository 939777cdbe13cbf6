"""examples/push_demo.py, run as `make demo` runs it: over HTTP, over WebSocket, in Chromium."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import fullduplex

if TYPE_CHECKING:
    from playwright.async_api import Browser

DEMO = Path(__file__).resolve().parents[2] / "examples" / "push_demo.py"


@pytest.fixture
def demo(free_port: int) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """The demo, listening on a free port once it has printed its URL."""
    process = subprocess.Popen(
        [sys.executable, str(DEMO), "--port", str(free_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{free_port}/" in line, line + process.stdout.read()
        yield free_port, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def stop(process: subprocess.Popen[str]) -> str:
    """Stop the demo as a supervisor would; return what it printed after its URL."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    return output


def test_demo_serves_its_page_and_404s_other_paths(demo: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = demo
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"new WebSocket(url)" in response.read()
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/missing")
    assert error.value.code == 404
    error.value.close()


async def test_demo_greets_echoes_and_pushes_ticks(
    demo: tuple[int, subprocess.Popen[str]],
) -> None:
    port, process = demo
    async with fullduplex.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        hello = json.loads(await ws.recv())
        assert (hello["type"], hello["pages"]) == ("hello", 1)
        await ws.send("ping?")
        echo = json.loads(await ws.recv())
        assert (echo["type"], echo["text"]) == ("echo", "ping?")
        tick = json.loads(await asyncio.wait_for(ws.recv(), timeout=3))
        assert (tick["type"], tick["count"]) == ("tick", 1)
        await asyncio.to_thread(stop, process)
        await ws.wait_closed()
        assert ws.close_code == fullduplex.CloseCode.GOING_AWAY


@pytest.mark.browser
async def test_page_shows_pushed_ticks_and_notices_the_server_leaving(
    demo: tuple[int, subprocess.Popen[str]], chromium_browser: Browser
) -> None:
    port, process = demo
    page = await chromium_browser.new_page()
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.wait_for_function("document.getElementById('count').textContent === '2'")
    assert await page.text_content("#state") == "OPEN"
    await page.fill("#text", "hello from Chromium")
    await page.click("button")
    await page.wait_for_selector("li.echo:has-text('hello from Chromium')")
    await asyncio.to_thread(stop, process)
    await page.wait_for_function("document.getElementById('state').textContent === 'CLOSED'")
    assert "code 1001" in (await page.text_content("#detail") or "")
