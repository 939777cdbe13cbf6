"""The chat room of ``make demo`` (examples/chat/, examples/demo.py): its limits, its events
over a raw WebSocket (JSON events, as SockJS carries them), and its page in Chromium with
Socket.IO and SockJS tabs in the same rooms, through a cut connection and a server restart."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

import fullduplex
from fullduplex.transports.sockjs import default_client_script

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo.py"
# Where the browser test saves its screenshots: a temporary folder, so that a test run leaves
# the checkout clean; FULLDUPLEX_SCREENSHOTS_DIR=docs refreshes the pictures in the docs.
SCREENSHOTS = Path(
    os.environ.get("FULLDUPLEX_SCREENSHOTS_DIR")
    or Path(tempfile.gettempdir()) / "fullduplex-screenshots"
)


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


demo = load("demo", DEMO)
chat_server = sys.modules["chat.server"]


@pytest.fixture
def clients(require_tool: Callable[[str, str | os.PathLike[str]], str]) -> None:
    """The browser libraries the chat serves: skipped without them (failed under CI=true)."""
    require_tool("chat-client", chat_server.CLIENT_SCRIPT)
    script = default_client_script()
    require_tool("sockjs-client", script if script is not None else "sockjs.min.js")


needs_clients = pytest.mark.usefixtures("clients")


# --- limits ------------------------------------------------------------------------------


def test_token_bucket_lets_a_burst_through_then_delays_to_the_rate() -> None:
    now = [0.0]
    bucket = chat_server.TokenBucket(2.0, 3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    assert bucket.take() == pytest.approx(1.0)
    now[0] = 10.0  # refilled, up to the burst only
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)


# --- the events, over a raw WebSocket ------------------------------------------------------


@dataclass
class Tab:
    """A JSON-event client on the SockJS endpoint's raw WebSocket, as the page speaks."""

    ws: fullduplex.ClientConnection
    events: asyncio.Queue[dict[str, Any]]
    answers: dict[int, asyncio.Future[Any]]
    next_ack: int = 1

    async def request(self, event: str, payload: dict[str, Any]) -> Any:
        ack = self.next_ack
        self.next_ack += 1
        answer = self.answers[ack] = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps({"event": event, "args": [payload], "ack": ack}))
        try:
            return await asyncio.wait_for(answer, 10)
        finally:
            del self.answers[ack]

    async def send(self, event: str, payload: dict[str, Any]) -> None:
        await self.ws.send(json.dumps({"event": event, "args": [payload]}))

    async def next(self, event: str) -> dict[str, Any]:
        while True:
            packet = await asyncio.wait_for(self.events.get(), 10)
            if packet["event"] == event:
                payload: dict[str, Any] = packet["args"][0]
                if "offset" in packet:
                    payload["offset"] = packet["offset"]
                return payload


@contextlib.asynccontextmanager
async def tab(port: int) -> AsyncIterator[Tab]:
    async with fullduplex.connect(f"ws://127.0.0.1:{port}/chat/sockjs/websocket") as ws:
        client = Tab(ws, asyncio.Queue(), {})

        async def read() -> None:
            async for raw in ws:
                packet = json.loads(raw)
                if "ack" in packet:
                    client.answers[packet["ack"]].set_result(packet["args"][0])
                else:
                    client.events.put_nowait(packet)

        reader = asyncio.create_task(read())
        try:
            yield client
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, fullduplex.ConnectionClosed):
                await reader


@contextlib.asynccontextmanager
async def chat_demo(**limits: Any) -> AsyncIterator[int]:
    """The demo's router, served in this process on a free port with the server's defaults,
    as the demo serves it."""
    router, chat, _ = demo.build(chat_server.ChatLimits(**limits))
    async with fullduplex.serve(router, "127.0.0.1", 0) as server:
        try:
            yield server.port
        finally:
            await chat.close()


def hello(nick: str, *rooms: str, tab: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"nick": nick, "tab": tab or f"tab-of-{nick}", "rooms": list(rooms), **extra}


@needs_clients
async def test_messages_reach_their_room_only_with_presence_and_history() -> None:
    async with chat_demo() as port, tab(port) as ann, tab(port) as bob:
        welcome = await ann.request("hello", hello("ann", "lobby"))
        assert welcome["rooms"]["lobby"]["backlog"] == []
        assert [m["nick"] for m in welcome["rooms"]["lobby"]["members"]] == ["ann"]
        assert (await ann.request("say", {"room": "lobby", "text": "first", "cid": "c1"}))["id"]
        welcome = await bob.request("hello", hello("bob", "lobby", "dev"))
        assert [m["text"] for m in welcome["rooms"]["lobby"]["backlog"]] == ["first"]
        assert sorted(m["nick"] for m in welcome["rooms"]["lobby"]["members"]) == ["ann", "bob"]
        assert (await ann.next("presence"))["nick"] == "ann"  # its own join comes first
        joined = await ann.next("presence")
        assert (joined["nick"], joined["room"], joined["joined"]) == ("bob", "lobby", True)
        assert joined["transport"] == "sockjs websocket"
        await bob.request("say", {"room": "dev", "text": "only dev", "cid": "c2"})
        await bob.request("say", {"room": "lobby", "text": "<script>x</script>", "cid": "c3"})
        said = await ann.next("message")
        assert (said["nick"], said["text"], said["room"]) == ("bob", "<script>x</script>", "lobby")
        # The same client message id twice (a resend after a reconnection) is sent once.
        again = await bob.request(
            "say", {"room": "lobby", "text": "<script>x</script>", "cid": "c3"}
        )
        assert again["id"] == said["id"]
        await bob.send("typing", {"room": "lobby", "typing": True})
        typing = await ann.next("typing")
        assert (typing["nick"], typing["typing"]) == ("bob", True)
        await ann.send("delivered", {"tab": said["tab"], "ids": [said["id"]]})
        receipt = await bob.next("delivered")
        assert receipt == {"ids": [said["id"]], "by": "ann", "member": receipt["member"]}
        refused = await ann.request("say", {"room": "dev", "text": "not in it", "cid": "c4"})
        assert refused == {"error": "not in room dev"}
        await bob.request("say", {"room": "lobby", "text": "last", "cid": "c5"})
        assert (await ann.next("message"))["text"] == "last"  # "c3" came once


@needs_clients
async def test_limits_refuse_long_messages_and_too_many_rooms() -> None:
    limits = {"max_message_chars": 10, "max_rooms_per_client": 2, "max_rooms": 3}
    async with chat_demo(**limits) as port, tab(port) as ann, tab(port) as bob:
        await ann.request("hello", hello("ann", "lobby"))
        long = await ann.request("say", {"room": "lobby", "text": "x" * 11, "cid": "a"})
        assert long == {"error": "message is longer than 10 characters"}
        assert "error" not in await ann.request("join", {"room": "one"})
        assert await ann.request("join", {"room": "two"}) == {"error": "at most 2 rooms at once"}
        await bob.request("hello", hello("bob"))
        assert await bob.request("join", {"room": "three"}) == {
            "error": "this server has 3 rooms already"
        }
        assert await bob.request("join", {"room": "bad name!"}) == {
            "error": "a room name is 1 to 24 letters, digits, '-' or '_'"
        }
        async with tab(port) as cat:
            # Remembered rooms that are refused now are left out; the others are entered.
            welcome = await cat.request("hello", hello("cat", "lobby", "four"))
            assert list(welcome["rooms"]) == ["lobby"]
            assert welcome["refused"] == {"four": "this server has 3 rooms already"}


@needs_clients
async def test_a_flooding_client_is_disconnected_and_the_others_go_on() -> None:
    limits = {"messages_per_s": 4, "message_burst": 5, "max_slowed": 3}
    async with chat_demo(**limits) as port, tab(port) as flood, tab(port) as ann, tab(port) as bob:
        for client, nick in ((flood, "flood"), (ann, "ann"), (bob, "bob")):
            await client.request("hello", hello(nick, "lobby"))
        for number in range(200):
            await flood.send("say", {"room": "lobby", "text": str(number), "cid": str(number)})
        await asyncio.wait_for(flood.ws.wait_closed(), 10)
        assert flood.ws.close_code == chat_server.FLOOD_CLOSE_CODE
        await ann.request("say", {"room": "lobby", "text": "still here", "cid": "a"})
        texts = []
        while not texts or texts[-1] != "still here":
            texts.append((await bob.next("message"))["text"])
        # The flood was slowed down, then cut: a burst and a few more got through (5 + 3 here,
        # more only if the machine was too slow to keep up with the flood).
        assert texts[-1] == "still here" and len(texts) < 30
        assert texts[:-1] == [str(number) for number in range(len(texts) - 1)]


@needs_clients
async def test_a_client_back_within_the_history_gets_what_it_missed_once_in_order() -> None:
    async with chat_demo() as port, tab(port) as ann:
        welcome = await ann.request("hello", hello("ann", "lobby"))
        async with tab(port) as bob:
            await bob.request("hello", hello("bob", "lobby", tab="bob-tab-1"))
            await ann.request("say", {"room": "lobby", "text": "before", "cid": "1"})
            last = await bob.next("message")
        for number in range(3):
            text = f"missed {number}"
            await ann.request("say", {"room": "lobby", "text": text, "cid": text})
        resume = {"epoch": welcome["epoch"], "offset": last["offset"]}
        async with tab(port) as bob:
            back = await bob.request("hello", hello("bob", "lobby", tab="bob-tab-1", resume=resume))
            assert back["recovered"] is True
            assert [m["text"] for m in back["missed"]] == ["missed 0", "missed 1", "missed 2"]
            assert "backlog" not in back["rooms"]["lobby"]
        # Another epoch (a restarted server) gets the room's backlog instead.
        async with tab(port) as bob:
            resume["epoch"] = "another"
            back = await bob.request("hello", hello("bob", "lobby", tab="bob-tab-2", resume=resume))
            assert back["recovered"] is False
            assert [m["text"] for m in back["rooms"]["lobby"]["backlog"]][-2:] == [
                "missed 1",
                "missed 2",
            ]


@needs_clients
async def test_the_front_page_links_both_demos_and_the_order_board_works_below_it() -> None:
    async with chat_demo() as port:

        def fetch(path: str) -> tuple[int, bytes]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                return response.status, response.read()

        status, page = await asyncio.to_thread(fetch, "/")
        assert status == 200 and b'href="/chat/"' in page and b'href="/orders/"' in page
        for path in ("/chat/", "/orders/", "/chat/socket.io.min.js", "/chat/sockjs/sockjs.min.js"):
            status, body = await asyncio.to_thread(fetch, path)
            assert status == 200 and b"https://" not in body[:2000], path
        async with fullduplex.connect(f"ws://127.0.0.1:{port}/orders/ws") as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"


# --- the page, in Chromium -----------------------------------------------------------------


@dataclass
class Server:
    process: asyncio.subprocess.Process
    port: int

    async def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(self.process.communicate(), 15)
        assert self.process.returncode == 0, output
        assert output.decode().endswith("demo: stopped\n"), output


@contextlib.asynccontextmanager
async def demo_process(port: int = 0) -> AsyncIterator[Server]:
    """``examples/demo.py`` as ``make demo`` runs it; killed by PID if a test leaves it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(DEMO),
        "--port",
        str(port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", banner)
        assert match, banner
        yield Server(process, int(match.group(1)))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@needs_clients
async def test_the_demo_compresses_the_order_board_and_leaves_engine_io_uncompressed() -> None:
    async with demo_process() as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with fullduplex.connect(f"{url}/orders/ws") as ws:
            assert [type(e).__name__ for e in ws.protocol.extensions] == ["PerMessageDeflate"]
            assert json.loads(await ws.recv())["type"] == "snapshot"
        async with fullduplex.connect(f"{url}/chat/socket.io/?EIO=4&transport=websocket") as ws:
            assert ws.protocol.extensions == []
            assert str(await ws.recv()).startswith("0{")  # Engine.IO's OPEN packet
        await server.stop()


@dataclass
class ChatTab:
    nick: str
    context: BrowserContext
    page: Page

    async def state(self) -> dict[str, Any]:
        state: dict[str, Any] = await self.page.evaluate(READ_STATE)
        return state

    async def wait(self, condition: str, timeout_s: float = 30) -> None:
        await self.page.wait_for_function(condition, timeout=timeout_s * 1000)

    async def say(self, text: str) -> None:
        await self.page.fill("#text", text)
        await self.page.press("#text", "Enter")

    async def switch(self, room: str) -> None:
        await self.page.click(f"#room-list li[data-room='{room}'] button")

    async def texts(self, room: str) -> list[str]:
        return [m["text"] for m in (await self.state())["rooms"][room]["messages"]]

    async def wait_for_text(self, room: str, text: str) -> None:
        await self.wait(
            f"window.chat.rooms.get({json.dumps(room)})?.messages.some("
            f"(m) => m.kind === 'message' && m.text === {json.dumps(text)} && m.id)"
        )


READ_STATE = """() => ({
    status: window.chat.status,
    transport: window.chat.transport,
    shown: document.getElementById("transport").textContent,
    hellos: window.chat.hellos,
    recoveries: window.chat.recoveries,
    epoch: window.chat.epoch,
    rooms: Object.fromEntries([...window.chat.rooms.values()].map((room) => [room.name, {
        messages: room.messages.filter((m) => m.kind === "message").map((m) => ({
            id: m.id, nick: m.nick, text: m.text, status: m.status, mine: m.mine})),
        members: [...room.members.values()].map((m) => m.nick).sort(),
        typing: [...room.typing.values()].map((t) => t.nick),
    }])),
})"""


async def open_tab(
    browser: Browser, port: int, nick: str, transport: str, rooms: list[str], **context: Any
) -> ChatTab:
    """A tab in its own browser context (so that its network can be cut alone), logged in,
    in ``rooms`` and looking at the last one. A tab starts in the rooms the page remembers
    (``lobby`` the first time); it joins ``dev`` with the page's own form."""
    browser_context = await browser.new_context(**context)
    remembered = [room for room in rooms if room != "dev"] or ["dev"]
    await browser_context.add_init_script(
        f"localStorage.setItem('chat.rooms', {json.dumps(json.dumps(remembered))})"
    )
    page = await browser_context.new_page()
    await page.goto(f"http://127.0.0.1:{port}/chat/?transport={transport}")
    await page.fill("#nick", nick)
    await page.click("#login button[type=submit]")
    opened = ChatTab(nick, browser_context, page)
    await opened.wait("window.chat.status === 'online'")
    if "dev" in rooms and "dev" not in remembered:
        await page.fill("#join-room", "dev")
        await page.press("#join-room", "Enter")
        await opened.wait("window.chat.current === 'dev'")
    await opened.switch(rooms[-1])
    return opened


@needs_clients
@pytest.mark.browser
async def test_tabs_on_every_transport_chat_through_a_cut_and_a_restart(
    chromium_browser: Browser,
) -> None:
    async with demo_process() as server:
        port = server.port
        ann = await open_tab(chromium_browser, port, "ann", "websocket", ["lobby"])
        bob = await open_tab(chromium_browser, port, "bob", "websocket", ["lobby", "dev"])
        cat = await open_tab(chromium_browser, port, "cat", "websocket", ["dev"])
        dan = await open_tab(chromium_browser, port, "dan", "polling", ["lobby"])
        eve = await open_tab(
            chromium_browser,
            port,
            "eve",
            "xhr-streaming",
            ["dev"],
            viewport={"width": 390, "height": 760},
            is_mobile=True,
        )
        tabs = [ann, bob, cat, dan, eve]
        # Each tab shows what carries it.
        for opened, carrier in zip(
            tabs,
            ["socket.io websocket"] * 3 + ["socket.io polling", "sockjs xhr-streaming"],
            strict=True,
        ):
            state = await opened.state()
            assert state["transport"] == state["shown"] == carrier

        # Presence, per room, across protocols.
        for opened in (ann, bob, dan):
            await opened.wait("window.chat.rooms.get('lobby').members.size === 3")
        for opened in (bob, cat, eve):
            await opened.wait("window.chat.rooms.get('dev').members.size === 3")
        assert (await ann.state())["rooms"]["lobby"]["members"] == ["ann", "bob", "dan"]
        assert (await eve.state())["rooms"]["dev"]["members"] == ["bob", "cat", "eve"]

        # Messages reach their room only, whatever carries each tab.
        await ann.say("hello lobby")
        await cat.say("hello dev")
        await dan.say("polling here")
        await eve.say("streaming here")
        for opened in (ann, bob, dan):
            await opened.wait_for_text("lobby", "polling here")
        for opened in (bob, cat, eve):
            await opened.wait_for_text("dev", "streaming here")
        assert await ann.texts("lobby") == ["hello lobby", "polling here"]
        assert await dan.texts("lobby") == ["hello lobby", "polling here"]
        assert await cat.texts("dev") == ["hello dev", "streaming here"]
        assert await eve.texts("dev") == ["hello dev", "streaming here"]
        # Sent, then delivered: the others' receipts come back as ticks.
        await ann.wait(
            "window.chat.rooms.get('lobby').messages"
            ".some((m) => m.mine && m.status === 'delivered')"
        )
        tick = ann.page.locator("#messages li.mine .ticks").first
        assert await tick.text_content() == "✓✓"

        # Typing shows in the right room only.
        await cat.page.fill("#text", "typing in dev")
        await cat.page.type("#text", "…")
        for opened in (bob, eve):
            await opened.wait("window.chat.rooms.get('dev').typing.size === 1")
        await eve.wait("document.getElementById('typing').textContent === 'cat is typing…'")
        assert (await bob.state())["rooms"]["lobby"]["typing"] == []
        assert (await ann.state())["rooms"]["lobby"]["typing"] == []
        await cat.page.fill("#text", "")

        # A message with markup shows as text.
        await bob.switch("lobby")
        await bob.say("<script>window.injected = 1</script><b>bold</b>")
        await ann.wait_for_text("lobby", "<script>window.injected = 1</script><b>bold</b>")
        last = ann.page.locator("#messages li.msg .text").last
        assert await last.text_content() == "<script>window.injected = 1</script><b>bold</b>"
        assert await ann.page.locator("#messages b, #messages script").count() == 0
        assert await ann.page.evaluate("window.injected") is None

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await bob.wait("window.chat.rooms.get('lobby').messages.at(-1).status === 'delivered'")
        await bob.page.set_viewport_size({"width": 1100, "height": 640})
        await bob.page.screenshot(path=str(SCREENSHOTS / "chat.png"))
        await eve.page.screenshot(path=str(SCREENSHOTS / "chat-phone.png"))

        # Cat's connection is cut for a few seconds; what dev gets meanwhile reaches it once,
        # in order, when it is back.
        await cat.context.set_offline(True)
        await cat.wait("window.chat.status !== 'online'")
        sent_meanwhile = ["while away 1", "while away 2", "while away 3"]
        await bob.switch("dev")
        for text in sent_meanwhile[:2]:
            await bob.say(text)
        await eve.say(sent_meanwhile[2])
        await bob.wait_for_text("dev", sent_meanwhile[2])
        await asyncio.sleep(2)  # the point: the outage lasts a while
        await cat.context.set_offline(False)
        await cat.wait("window.chat.status === 'online' && window.chat.recoveries === 1")
        expected = ["hello dev", "streaming here", *sent_meanwhile]
        assert await cat.texts("dev") == expected
        ids = [m["id"] for m in (await cat.state())["rooms"]["dev"]["messages"]]
        assert len(set(ids)) == len(ids)
        assert await bob.texts("dev") == expected

        # A flood from one tab costs that tab its connection; the others chat on.
        await ann.page.evaluate(
            """() => { for (let i = 0; i < 200; i++) window.chat.link.send(
                "say", {room: "lobby", text: "flood " + i, cid: "flood-" + i}); }"""
        )
        await ann.wait("window.chat.status === 'kicked'", 30)
        assert "flooding" in (await ann.page.text_content("#notice") or "")
        await dan.say("after the flood")
        await bob.wait_for_text("lobby", "after the flood")
        flood = [text for text in await bob.texts("lobby") if text.startswith("flood ")]
        assert flood == [f"flood {number}" for number in range(len(flood))]
        # A burst, then about as many slowed down (more if the machine is slow to serve them).
        assert len(flood) < 50
        await ann.page.click("#reconnect")
        await ann.wait("window.chat.status === 'online'")

        # After a restart every tab comes back on its own, and they chat again.
        await server.stop()
        for opened in tabs:
            await opened.wait("window.chat.status !== 'online'")
    async with demo_process(port):
        for opened in tabs:
            await opened.wait("window.chat.status === 'online' && window.chat.hellos >= 2", 40)
        await dan.say("after the restart")
        for opened in (ann, bob):
            await opened.wait_for_text("lobby", "after the restart")
        await eve.say("streaming after the restart")
        await cat.wait_for_text("dev", "streaming after the restart")
        assert (await ann.state())["rooms"]["lobby"]["members"] == ["ann", "bob", "dan"]
        # Dan switches to another Comet transport; the tab keeps its room and its messages.
        await dan.page.select_option("#transport-select", "iframe-htmlfile")
        await dan.wait(
            "window.chat.transport === 'sockjs iframe-htmlfile' && window.chat.status === 'online'"
        )
        await ann.say("to the iframe")
        await dan.wait_for_text("lobby", "to the iframe")
        texts = await dan.texts("lobby")
        assert texts[-2:] == ["after the restart", "to the iframe"]
        assert len(texts) == len(set(texts))
        for opened in tabs:
            await opened.context.close()
