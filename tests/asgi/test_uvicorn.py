"""fullduplex.asgi.WebSocketProtocol under a real uvicorn, with both of its HTTP parsers.

uvicorn's own suite (test_uvicorn_suite.py) covers the ASGI protocol; these tests cover what
it checks only through uvicorn's own classes (keepalive), what it does not check (the queue
limit, the scope's addresses, chunked denial responses), and the FastAPI example of
docs/asgi.md, driven by fullduplex's client and by Chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

import fullduplex
from fullduplex.asgi import WebSocketProtocol

from ..io.peers import blocking_client, read_now, upgrade_request
from .uvicorn_server import uvicorn_serving

if TYPE_CHECKING:
    from playwright.async_api import Browser

REPO = Path(__file__).resolve().parents[2]
HTTP_IMPLEMENTATIONS = ["h11", "httptools"]

Scope = dict[str, Any]


@contextlib.asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    """uvicorn serving ``app`` with fullduplex's WebSocket implementation; yields its URL."""
    async with uvicorn_serving(app, ws=WebSocketProtocol, **options) as (server, port):
        yield server, f"ws://127.0.0.1:{port}"


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def the_connection(server: uvicorn.Server) -> WebSocketProtocol:
    (protocol,) = server.server_state.connections
    assert isinstance(protocol, WebSocketProtocol)
    return protocol


async def accept_and_wait(scope: Scope, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
async def test_server_sends_keepalive_pings_that_the_client_answers(http: str) -> None:
    options = {"http": http, "ws_ping_interval": 0.05, "ws_ping_timeout": 5.0}
    async with (
        serving(accept_and_wait, **options) as (server, url),
        fullduplex.connect(url, ping_interval=None) as ws,
    ):
        protocol = the_connection(server)
        # With a ping timeout, the next ping is scheduled only once the last one's pong has
        # arrived: three pings sent mean two pongs received. Polled (the protocol has no event
        # for a ping), bounded well below the 5 s after which an unanswered ping closes.
        pings_sent_at = [0.0]
        async with asyncio.timeout(3):
            while len(pings_sent_at) < 4:
                if protocol.ping_sent_at != pings_sent_at[-1]:
                    pings_sent_at.append(protocol.ping_sent_at)
                await asyncio.sleep(0.01)
        assert not protocol.transport.is_closing()
        assert ws.close_code is None


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
async def test_server_without_keepalive_schedules_no_ping(http: str) -> None:
    async with (
        serving(accept_and_wait, http=http, ws_ping_interval=None) as (server, url),
        fullduplex.connect(url, ping_interval=None),
    ):
        assert the_connection(server).ping_timer is None


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
async def test_scope_carries_addresses_root_path_and_headers(http: str) -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await accept_and_wait(scope, receive, send)

    async with (
        serving(app, http=http, root_path="/api") as (_, url),
        fullduplex.connect(
            f"{url}/room%201?x=1", subprotocols=["chat"], extra_headers=[("X-Token", "t")]
        ) as ws,
    ):
        local_host, local_port = ws.local_address[:2]
    (scope,) = scopes
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/room 1"
    assert scope["raw_path"] == b"/api/room%201"
    assert scope["query_string"] == b"x=1"
    assert scope["client"] == (local_host, local_port)
    assert scope["server"] == ("127.0.0.1", int(url.rsplit(":", 1)[1]))
    assert (b"x-token", b"t") in scope["headers"]
    assert scope["subprotocols"] == ["chat"]
    assert scope["extensions"] == {"websocket.http.response": {}}


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
async def test_app_that_does_not_receive_stops_the_server_reading(http: str) -> None:
    release = asyncio.Event()
    received: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])

    async with (
        serving(app, http=http, ws_max_queue=4) as (server, url),
        fullduplex.connect(url, ping_interval=None, write_limit=1024, compression=None) as ws,
    ):
        protocol = the_connection(server)
        big = "x" * 60_000

        async def flood() -> None:
            for _ in range(400):
                await ws.send(big)

        sending = asyncio.create_task(flood())
        # The server stops reading once a message waits for the app; the client's writes then
        # pause once the kernel's buffers between the two are full. Polled (neither side has an
        # event for it), bounded by the timeout.
        async with asyncio.timeout(10):
            while not protocol._read_paused or ws.can_send_now():
                await asyncio.sleep(0.01)
        assert not sending.done()
        assert protocol._messages is not None
        assert len(protocol._messages) < 400
        release.set()
        await asyncio.wait_for(sending, 20)
        await ws.close()
    assert received == ["x" * 60_000] * 400


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
async def test_denial_response_without_length_is_sent_in_chunks(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        start = {"type": "websocket.http.response.start", "status": 401, "headers": []}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})

    async with serving(app, http=http) as (_, url):
        with pytest.raises(fullduplex.InvalidStatus) as raised:
            await fullduplex.connect(url)
    response = raised.value.response
    assert response.status == 401
    assert response.headers["Transfer-Encoding"] == "chunked"


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
async def test_server_shutdown_closes_with_1012(http: str) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async with serving(app, http=http) as (server, url):
        ws = await fullduplex.connect(url, ping_interval=None)
        server.should_exit = True
        with pytest.raises(fullduplex.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 1012
    assert disconnects == [{"type": "websocket.disconnect", "code": 1012}]


# --- the FastAPI example of docs/asgi.md ------------------------------------------------------


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "fastapi_chat", REPO / "examples" / "fastapi_chat.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
async def test_fastapi_chat_relays_messages_between_fullduplex_clients(http: str) -> None:
    example = load_example()
    async with (
        serving(example.app, http=http) as (_, url),
        fullduplex.connect(f"{url}/chat?name=ada") as ada,
    ):
        assert await ada.recv() == "ada joined"
        async with fullduplex.connect(f"{url}/chat?name=bob") as bob:
            assert await ada.recv() == "bob joined"
            assert await bob.recv() == "bob joined"
            await bob.send("hello")
            assert await ada.recv() == "bob: hello"
            assert await bob.recv() == "bob: hello"
        assert await ada.recv() == "bob left"


async def test_fastapi_chat_refuses_a_client_without_name() -> None:
    example = load_example()
    async with serving(example.app, http="httptools") as (_, url):
        with pytest.raises(fullduplex.InvalidStatus) as raised:
            await fullduplex.connect(f"{url}/chat")
    assert raised.value.response.status == 400
    assert raised.value.response.body == b"name required"


@pytest.mark.browser
async def test_fastapi_chat_page_in_chromium_talks_to_a_fullduplex_client(
    chromium_browser: Browser,
) -> None:
    example = load_example()
    async with serving(example.app, http="httptools") as (_, url):
        http_url = url.replace("ws://", "http://")
        async with fullduplex.connect(f"{url}/chat?name=ada") as ada:
            assert await ada.recv() == "ada joined"
            page = await chromium_browser.new_page()
            await page.goto(f"{http_url}/?name=chromium")
            assert await asyncio.wait_for(ada.recv(), 10) == "chromium joined"
            await page.fill("#text", "héllo from the browser")
            await page.click("button")
            assert await asyncio.wait_for(ada.recv(), 10) == "chromium: héllo from the browser"
            await ada.send("hi, browser")
            assert await asyncio.wait_for(ada.recv(), 10) == "ada: hi, browser"
            await page.wait_for_function(
                "[...document.querySelectorAll('#log li')].some(li => li.textContent === "
                "'ada: hi, browser')",
                timeout=10_000,
            )
            await page.close()
            assert await asyncio.wait_for(ada.recv(), 10) == "chromium left"


# --- the ASGI protocol's other paths, in this process (uvicorn's suite runs in another) --------


async def test_close_before_accept_answers_403_and_reports_1006() -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})
        disconnects.append(await receive())

    async with serving(app) as (_, url):
        with pytest.raises(fullduplex.InvalidStatus) as raised:
            await fullduplex.connect(url)
    assert raised.value.response.status == 403
    assert disconnects == [{"type": "websocket.disconnect", "code": 1006}]


@pytest.mark.parametrize("failure", ["raises", "returns", "sends first"])
async def test_app_that_fails_before_the_handshake_gets_a_500(failure: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        if failure == "raises":
            raise ValueError("boom")
        if failure == "sends first":
            await send({"type": "websocket.send", "text": "too early"})

    async with serving(app) as (_, url):
        with pytest.raises(fullduplex.InvalidStatus) as raised:
            await fullduplex.connect(url)
    assert raised.value.response.status == 500
    assert raised.value.response.body == b"Internal Server Error"


async def test_app_close_sends_code_and_reason_and_refuses_later_sends() -> None:
    errors: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"\x00bye"})
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})
        try:
            await send({"type": "websocket.send", "text": "late"})
        except RuntimeError as exc:
            errors.append(str(exc))

    async with serving(app) as (_, url), fullduplex.connect(url) as ws:
        assert await ws.recv() == b"\x00bye"
        with pytest.raises(fullduplex.ConnectionClosed):
            await ws.recv()
    assert (ws.close_code, ws.close_reason) == (4000, "done")
    assert errors == ["Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."]


async def test_client_close_reaches_the_app_and_later_sends_raise_client_disconnected() -> None:
    events: list[Any] = []
    app_done = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        events.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
        except OSError as exc:
            events.append(type(exc).__name__)
        await send({"type": "websocket.close"})  # nothing left to close: ignored
        app_done.set()

    async with serving(app) as (_, url):
        async with fullduplex.connect(url) as ws:
            await ws.close(4001, "bye")
        await asyncio.wait_for(app_done.wait(), 5)
    assert events == [
        {"type": "websocket.disconnect", "code": 4001, "reason": "bye"},
        "ClientDisconnected",
    ]


async def test_message_over_ws_max_size_closes_with_1009() -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async with serving(app, ws_max_size=1000) as (_, url):
        async with fullduplex.connect(url, compression=None) as ws:
            await ws.send(b"x" * 1001)
            with pytest.raises(fullduplex.ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1009
    assert disconnects[0]["code"] == 1009


async def test_unanswered_keepalive_ping_closes_with_1011() -> None:
    async with serving(accept_and_wait, ws_ping_interval=0.05, ws_ping_timeout=0.1) as (_, url):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
        writer.write(upgrade_request())
        # A client that never answers pings: read until the server closes.
        received = await asyncio.wait_for(reader.read(-1), 10)
        writer.close()
    close_frame = received[received.rindex(b"\x88") :]
    assert close_frame[2:4] == (1011).to_bytes(2, "big")
    assert close_frame[4:] == b"keepalive ping timeout"


async def test_invalid_upgrade_is_refused_without_calling_the_app() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    async with serving(app) as (_, url):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
        writer.write(upgrade_request(headers={"Sec-WebSocket-Version": "11"}))
        response = await asyncio.wait_for(reader.read(-1), 10)
        writer.close()
    assert response.startswith(b"HTTP/1.1 426 ")
    assert b"Sec-WebSocket-Version: 13" in response


async def test_app_first_send_of_a_turn_is_written_at_once_and_the_rest_at_its_end() -> None:
    """The core's write batching (tests/io/test_writes.py), read the same way: the blocking
    read only returns what was written before the sending coroutine yielded."""
    sends: asyncio.Queue[Any] = asyncio.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        sends.put_nowait(send)
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with serving(app) as (_, url):
        sock = await blocking_client(port_of(url))
        try:
            send = await asyncio.wait_for(sends.get(), 5)
            await send({"type": "websocket.send", "text": "first"})
            assert read_now(sock) == b"first"
            await send({"type": "websocket.send", "text": "second"})
            await send({"type": "websocket.send", "bytes": b"third"})
            with pytest.raises(BlockingIOError):  # coalesced, not written yet
                sock.recv(1, socket.MSG_PEEK)
            await asyncio.sleep(0)
            assert read_now(sock) == b"second"
            assert read_now(sock) == b"third"
            await asyncio.sleep(0)
            await send({"type": "websocket.send", "text": "fourth"})  # a new turn: at once
            assert read_now(sock) == b"fourth"
        finally:
            sock.close()
