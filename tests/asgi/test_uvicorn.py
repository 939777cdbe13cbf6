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

if TYPE_CHECKING:
    from playwright.async_api import Browser

REPO = Path(__file__).resolve().parents[2]
HTTP_IMPLEMENTATIONS = ["h11", "httptools"]

Scope = dict[str, Any]


@contextlib.asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    """uvicorn serving ``app`` on 127.0.0.1 with fullduplex's WebSocket implementation."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    options = {"lifespan": "off", "log_level": "warning", **options}
    server = uvicorn.Server(uvicorn.Config(app, ws=WebSocketProtocol, **options))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield server, f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        listener.close()


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
        async with asyncio.timeout(5):
            while protocol.ping_sent_at == 0.0:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
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
        # The client's send blocks once the kernel buffers between the two fill up.
        await asyncio.sleep(0.5)
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
