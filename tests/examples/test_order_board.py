"""examples/order_board.py, the `make demo` order board: its state machine, the server as
`make demo` runs it, and its page in Chromium, in two tabs and across a server restart."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import random
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

import fullduplex

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "order_board.py"
TIMEOUT_S = 60
"""Bound on one test. The browser tests wait out the page's reconnection backoff."""


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("order_board", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


order_board = load_demo()


# --- the state machine -------------------------------------------------------------------


def apply(state: dict[str, str], message: dict[str, Any]) -> None:
    """Apply one change to a board state (order id -> status), as the page does."""
    if message["type"] == "order":
        state[message["order"]["id"]] = message["order"]["status"]
    elif message["type"] == "removed":
        del state[message["id"]]


def test_orders_move_one_step_forward_and_changes_replay_to_the_snapshot() -> None:
    board = order_board.OrderBoard(random.Random(7))
    first = board.snapshot()
    assert first["seq"] == 0
    assert [status["key"] for status in first["statuses"]] == [
        "placed",
        "packing",
        "shipped",
        "delivered",
    ]
    state = {order["id"]: order["status"] for order in first["orders"]}
    order_of = {key: index for index, (key, _, _) in enumerate(order_board.STATUSES)}
    seq = 0
    for _ in range(500):
        for change in board.step():
            seq += 1
            assert change["seq"] == seq
            if change["type"] == "order" and change["change"] == "created":
                assert change["order"]["id"] not in state
                assert change["order"]["status"] == "placed"
            elif change["type"] == "order":
                before, after = state[change["order"]["id"]], change["order"]["status"]
                assert order_of[after] == order_of[before] + 1
            else:
                assert state[change["id"]] == "delivered"
            apply(state, change)
        open_orders = [status for status in state.values() if status != "delivered"]
        assert len(open_orders) <= order_board.MAX_OPEN_ORDERS
        assert len(state) - len(open_orders) <= order_board.DELIVERED_KEPT + 1
    final = board.snapshot()
    assert final["seq"] == seq
    assert state == {order["id"]: order["status"] for order in final["orders"]}


def test_the_same_seed_replays_the_same_board() -> None:
    def run(seed: int) -> list[tuple[str, str, str]]:
        board = order_board.OrderBoard(random.Random(seed))
        changes = [change for _ in range(50) for change in board.step()]
        return [
            (
                change["type"],
                change.get("id", ""),
                json.dumps(change.get("order", {}).get("status")),
            )
            for change in changes
        ]

    assert run(3) == run(3)
    assert run(3) != run(4)


# --- the server, as `make demo` runs it --------------------------------------------------


@dataclass
class Demo:
    process: asyncio.subprocess.Process
    port: int
    banner: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def stop(self, signum: int = signal.SIGTERM) -> str:
        """Stop it as Ctrl-C or a supervisor would; return what it printed after its URL."""
        self.process.send_signal(signum)
        output, _ = await asyncio.wait_for(self.process.communicate(), 10)
        assert self.process.returncode == 0, output
        return output.decode()


@contextlib.asynccontextmanager
async def demo(port: int, *, seed: int, tick_s: float = 0.3) -> AsyncIterator[Demo]:
    """The demo on ``port``, once it printed its URL; killed by PID if a test leaves it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(DEMO),
        "--port",
        str(port),
        "--tick",
        str(tick_s),
        "--seed",
        str(seed),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        yield Demo(process, port, banner)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@dataclass
class Mirror:
    """A WebSocket client that follows the board like a page, remembering each state."""

    ws: fullduplex.ClientConnection
    server: str = ""
    first_seq: int = 0
    states: dict[int, dict[str, str]] = field(default_factory=dict)
    changes: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    @property
    def seq(self) -> int:
        return max(self.states)

    async def follow(self) -> None:
        state: dict[str, str] = {}
        async for raw in self.ws:
            message = json.loads(raw)
            if message["type"] == "snapshot":
                self.server, self.first_seq = message["server"], message["seq"]
                state = {order["id"]: order["status"] for order in message["orders"]}
            elif message["type"] == "viewers":
                continue
            else:
                assert message["seq"] == self.seq + 1, message
                apply(state, message)
                self.changes.put_nowait(message)
            self.states[message["seq"]] = dict(state)


@contextlib.asynccontextmanager
async def mirror(port: int) -> AsyncIterator[Mirror]:
    async with fullduplex.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        follower = Mirror(ws)
        task = asyncio.create_task(follower.follow())
        try:
            while not follower.states:  # polled: the follower's task has no event for it
                await asyncio.sleep(0.01)
            yield follower
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, fullduplex.ConnectionClosed):
                await task


async def test_demo_prints_one_url_and_serves_its_page(free_port: int) -> None:
    async with asyncio.timeout(TIMEOUT_S), demo(free_port, seed=1) as running:
        assert re.findall(r"https?://\S+", running.banner) == [running.url]

        def fetch(path: str) -> tuple[int, str, bytes]:
            try:
                with urllib.request.urlopen(running.url + path, timeout=10) as response:
                    return response.status, response.headers["Content-Type"], response.read()
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, error.headers["Content-Type"], b""

        status, content_type, page = await asyncio.to_thread(fetch, "")
        assert (status, content_type) == (200, "text/html; charset=utf-8")
        assert b"new WebSocket(url)" in page and b"readyState" in page
        assert b"http://" not in page and b"https://" not in page  # no CDN, nothing external
        assert (await asyncio.to_thread(fetch, "missing"))[0] == 404
        assert await running.stop() == "order board: stopped\n"


async def test_demo_sends_a_snapshot_then_numbered_changes(free_port: int) -> None:
    async with asyncio.timeout(TIMEOUT_S), demo(free_port, seed=2, tick_s=0.1) as running:
        async with mirror(free_port) as follower:
            for _ in range(5):
                change = await follower.changes.get()
                assert change["type"] in ("order", "removed")
            assert follower.seq >= follower.first_seq + 5
        await running.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_demo_stops_cleanly_closing_pages_with_1001(free_port: int, signum: int) -> None:
    async with asyncio.timeout(TIMEOUT_S), demo(free_port, seed=3) as running:
        async with fullduplex.connect(f"ws://127.0.0.1:{free_port}/ws") as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            loop = asyncio.get_running_loop()
            started = loop.time()
            output = await running.stop(signum)
            assert loop.time() - started < 5
            await ws.wait_closed()
            assert ws.close_code == 1001
        assert output == "order board: stopped\n"  # no traceback


async def test_demo_says_so_when_its_port_is_taken(free_port: int) -> None:
    async with asyncio.timeout(TIMEOUT_S), demo(free_port, seed=4) as running:
        result = await asyncio.create_subprocess_exec(
            sys.executable, str(DEMO), "--port", str(free_port), stderr=subprocess.PIPE
        )
        _, error = await asyncio.wait_for(result.communicate(), 20)
        assert result.returncode == 1
        assert error.decode() == (
            f"order board: cannot listen on 127.0.0.1:{free_port}: Address already in use\n"
        )
        await running.stop()


# --- the page, in Chromium ---------------------------------------------------------------

READ_PAGE = """() => ({
    seq: window.orderBoard.seq,
    server: window.orderBoard.server,
    readyState: Number(document.getElementById("ready-state").textContent),
    cards: Object.fromEntries([...document.querySelectorAll(".column .card")].map(
        (card) => [card.dataset.id, card.closest(".column").dataset.status])),
})"""


async def page_matches_mirror(page: Page, follower: Mirror, at_least: int) -> int:
    """Wait until ``page`` shows change ``at_least`` or a later one, then check that its cards
    sit in the columns the server's changes put them in; return the seq it shows."""
    await page.wait_for_function(f"window.orderBoard.seq >= {at_least}", timeout=20_000)
    shown = await page.evaluate(READ_PAGE)
    while follower.seq < shown["seq"]:  # polled: the follower's task has no event for it
        await asyncio.sleep(0.01)
    assert shown["server"] == follower.server
    assert shown["readyState"] == 1
    assert shown["cards"] == follower.states[shown["seq"]], shown["seq"]
    seq: int = shown["seq"]
    return seq


@pytest.mark.browser
async def test_every_open_tab_shows_a_pushed_status_change(
    free_port: int, chromium_browser: Browser
) -> None:
    async with asyncio.timeout(TIMEOUT_S), demo(free_port, seed=5, tick_s=0.4) as running:
        context = await chromium_browser.new_context()
        tabs = [await context.new_page() for _ in range(2)]
        for tab in tabs:
            await tab.goto(running.url)
            await tab.wait_for_function("window.orderBoard.seq !== null")
        async with mirror(free_port) as follower:
            for tab in tabs:  # two tabs and this mirror
                await tab.wait_for_function(
                    "document.getElementById('detail').textContent.includes('3 viewers')"
                )
            # A change the server pushes after both tabs are showing the board...
            while (change := await follower.changes.get())["type"] != "order":
                pass
            for tab in tabs:
                # ...shows up in each tab, in the right column.
                await page_matches_mirror(tab, follower, change["seq"])
                card = tab.locator(f".card[data-id='{change['order']['id']}']")
                assert await card.count() == 1
            assert await tabs[0].text_content("#state") == "OPEN"
        await context.close()
        await running.stop()


@pytest.mark.browser
async def test_page_reconnects_after_a_server_restart_and_catches_up(
    free_port: int, chromium_browser: Browser
) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        page = await chromium_browser.new_page()
        async with demo(free_port, seed=6) as first:
            await page.goto(first.url)
            await page.wait_for_function("window.orderBoard.seq !== null")
            first_server = await page.evaluate("window.orderBoard.server")
            await first.stop()
        # The page saw the server go away (1001) and says it is reconnecting.
        await page.wait_for_function(
            "document.getElementById('ready-state').textContent === '3'"
            " && document.getElementById('state').textContent === 'CLOSED'"
            " && document.getElementById('detail').textContent.includes('reconnecting')"
        )
        assert "code 1001" in (await page.text_content("#log") or "")
        # A new server, with another board, on the same port: the page comes back by itself
        # and shows that board, then follows its changes.
        async with demo(free_port, seed=7) as second, mirror(free_port) as follower:
            assert follower.server != first_server
            await page.wait_for_function(
                f"window.orderBoard.server === {json.dumps(follower.server)}", timeout=20_000
            )
            shown = await page_matches_mirror(page, follower, follower.first_seq)
            await page_matches_mirror(page, follower, shown + 1)
            assert "the server restarted" in (await page.text_content("#log") or "")
            await second.stop()
