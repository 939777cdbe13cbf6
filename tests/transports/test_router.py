"""Router on `fullduplex.serve`, over real sockets on 127.0.0.1: WebSocket routes, mounted
endpoints, HTTP routes, 404 / 405 / 426, nesting, path handling, and the WebSocket options
of each route and mount."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from fullduplex import InvalidStatus, Request, Response, Server, connect, serve
from fullduplex.io.options import OptionOverrides
from fullduplex.transports import Endpoint, HTTPExchange, Router, Session
from fullduplex.transports.engineio import EngineIOEndpoint, EngineIOSession
from fullduplex.transports.router import request_path


def bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Fail a test that hangs instead of the whole run."""

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(10):
            await test(*args, **kwargs)

    return run


class Recorder(Endpoint):
    """An endpoint that tells what it saw: the path below its prefix and the request."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
        text = f"{self.name} {exchange.request.method} {path!r} {exchange.request.path}"
        await exchange.respond(200, [("Content-Type", "text/plain")], text.encode())

    def refuse_websocket(self, request: Request, path: str) -> Response | None:
        if path == "/forbidden":
            return Response(403, [], b"forbidden")
        return None

    async def handle_websocket(self, session: Session, path: str) -> None:
        await session.send(f"{self.name} {path!r} {session.transport}")


async def echo(session: Session) -> None:
    async for message in session:
        await session.send(message)


async def hello(exchange: HTTPExchange) -> None:
    await exchange.respond(200, [("Content-Type", "text/plain")], b"hello")


async def upload(exchange: HTTPExchange) -> None:
    await exchange.respond(201, [], await exchange.read_body(100))


def make_router() -> Router:
    app = Router()
    app.websocket("/echo", echo)
    app.route("/hello", hello)
    app.route("/upload", upload, methods=["POST", "PUT"])
    app.mount("/rec", Recorder("rec"))
    app.mount("/rec/deeper", Recorder("deeper"))
    inner = Router()
    inner.route("/leaf", hello)
    inner.websocket("/ws", echo)
    app.mount("/nested", inner)
    return app


@asynccontextmanager
async def running(app: Router) -> AsyncIterator[tuple[Server, aiohttp.ClientSession, str]]:
    async with (
        serve(app, "127.0.0.1", 0) as server,
        aiohttp.ClientSession() as client,
    ):
        yield server, client, f"http://127.0.0.1:{server.port}"


async def fetch(
    client: aiohttp.ClientSession, method: str, url: str, **options: Any
) -> tuple[int, str, Any]:
    async with client.request(method, url, **options) as response:
        return response.status, await response.text(), response.headers


@bounded
async def test_router_answers_http_routes_and_refuses_other_methods() -> None:
    async with running(make_router()) as (_, client, base):
        assert (await fetch(client, "GET", f"{base}/hello"))[:2] == (200, "hello")
        status, text, headers = await fetch(client, "HEAD", f"{base}/hello")
        assert (status, text, headers["Content-Length"]) == (200, "", "5")
        status, _, headers = await fetch(client, "POST", f"{base}/hello")
        assert (status, headers["Allow"]) == (405, "GET, HEAD")
        status, text, _ = await fetch(client, "PUT", f"{base}/upload", data=b"payload")
        assert (status, text) == (201, "payload")
        assert (await fetch(client, "GET", f"{base}/missing"))[0] == 404
        status, _, headers = await fetch(client, "GET", f"{base}/echo")
        assert (status, headers["Upgrade"]) == (426, "websocket")


@bounded
async def test_router_gives_a_mounted_endpoint_the_path_below_its_prefix() -> None:
    async with running(make_router()) as (_, client, base):
        for path, expected in [
            ("/rec", "rec GET '' /rec"),
            ("/rec/a/b?q=1", "rec GET '/a/b' /rec/a/b?q=1"),
            ("/rec/deeper/x", "deeper GET '/x' /rec/deeper/x"),
            ("/rec/deeperx", "rec GET '/deeperx' /rec/deeperx"),
        ]:
            assert (await fetch(client, "GET", base + path))[1] == expected
        # A prefix matches on a segment boundary only.
        assert (await fetch(client, "GET", f"{base}/recx"))[0] == 404


@bounded
async def test_router_keeps_one_connection_for_many_requests() -> None:
    async with running(make_router()) as (server, client, base):
        for _ in range(5):
            assert (await fetch(client, "GET", f"{base}/hello"))[0] == 200
        assert len(server._http_connections) == 1


@bounded
async def test_router_serves_websocket_routes_and_mounted_endpoints() -> None:
    async with running(make_router()) as (server, _, _base):
        async with connect(f"ws://127.0.0.1:{server.port}/echo?x=1") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        async with connect(f"ws://127.0.0.1:{server.port}/rec/sub") as ws:
            assert await ws.recv() == "rec '/sub' websocket"
        async with connect(f"ws://127.0.0.1:{server.port}/nested/ws") as ws:
            await ws.send(b"\x00")
            assert await ws.recv() == b"\x00"


@bounded
async def test_router_refuses_upgrades_to_unknown_or_refusing_paths() -> None:
    async with running(make_router()) as (server, _, _base):
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{server.port}/nowhere")
        assert caught.value.response.status == 404
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{server.port}/rec/forbidden")
        assert caught.value.response.status == 403
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{server.port}/hello")
        assert caught.value.response.status == 404


@bounded
async def test_router_nests_routers() -> None:
    async with running(make_router()) as (_, client, base):
        assert (await fetch(client, "GET", f"{base}/nested/leaf"))[:2] == (200, "hello")
        assert (await fetch(client, "GET", f"{base}/nested/other"))[0] == 404


@bounded
async def test_router_registers_with_decorators() -> None:
    app = Router()

    @app.route("/form", methods=["POST"])
    async def form(exchange: HTTPExchange) -> None:
        await exchange.respond(200, [], b"posted")

    @app.websocket("/ws")
    async def ws_handler(session: Session) -> None:
        await session.send("decorated")

    async with running(app) as (server, client, base):
        assert (await fetch(client, "POST", f"{base}/form"))[1] == "posted"
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            assert await ws.recv() == "decorated"


def test_router_rejects_paths_without_a_leading_slash() -> None:
    app = Router()
    with pytest.raises(ValueError):
        app.route("hello", hello)
    with pytest.raises(ValueError):
        app.mount("rec", Recorder("rec"))


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/a/b?c=d", "/a/b"),
        ("/", "/"),
        ("http://example.com/x/y?z", "/x/y"),
        ("http://example.com", "/"),
        ("*", "*"),
    ],
)
def test_request_path_drops_the_query_and_the_authority(target: str, path: str) -> None:
    assert request_path(target) == path


class Uncompressed(Recorder):
    """An endpoint that declares it wants no permessage-deflate, as Engine.IO does."""

    def websocket_options(self, request: Request, path: str) -> OptionOverrides:
        return {"compression": None}


async def negotiated(port: int, path: str) -> list[str]:
    """The extensions a default client (which offers permessage-deflate) gets at ``path``."""
    async with connect(f"ws://127.0.0.1:{port}{path}") as ws:
        await ws.recv()
        return [extension.name for extension in ws.protocol.extensions]


@bounded
async def test_router_runs_each_route_and_mount_with_its_websocket_options() -> None:
    app = Router()
    app.websocket("/deflate", echo_once)
    app.websocket("/plain", echo_once, websocket_options={"compression": None})
    app.mount("/declared", Uncompressed("declared"))
    app.mount(
        "/overridden", Uncompressed("overridden"), websocket_options={"compression": "deflate"}
    )
    app.mount("/off", Recorder("off"), websocket_options={"compression": None})
    inner = Router()
    inner.websocket("/plain", echo_once, websocket_options={"compression": None})
    inner.mount("/declared", Uncompressed("inner"))
    app.mount("/nested", inner)
    async with running(app) as (server, _, _base):
        port = server.port
        assert await negotiated(port, "/deflate") == ["permessage-deflate"]
        assert await negotiated(port, "/plain") == []
        assert await negotiated(port, "/declared/x") == []
        assert await negotiated(port, "/overridden") == ["permessage-deflate"]
        assert await negotiated(port, "/off") == []
        assert await negotiated(port, "/nested/plain") == []
        assert await negotiated(port, "/nested/declared") == []


@bounded
async def test_router_applies_a_routes_max_size_and_keeps_the_servers_elsewhere() -> None:
    app = Router()
    app.websocket("/small", echo, websocket_options={"max_size": 10})
    app.websocket("/echo", echo)
    async with running(app) as (server, _, _base):
        async with connect(f"ws://127.0.0.1:{server.port}/echo") as ws:
            await ws.send("x" * 11)
            assert await ws.recv() == "x" * 11
        async with connect(f"ws://127.0.0.1:{server.port}/small") as ws:
            await ws.send("x" * 10)
            assert await ws.recv() == "x" * 10
            await ws.send("x" * 11)
            await ws.wait_closed()
            assert ws.close_code == 1009


def test_router_checks_websocket_options_when_registered() -> None:
    app = Router()
    with pytest.raises(TypeError):
        app.websocket("/ws", echo, websocket_options={"no_such_option": 1})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError):
        app.mount("/rec", Recorder("rec"), websocket_options={"compression_threshold": -1})


async def echo_once(session: Session) -> None:
    await session.send("ready")


@bounded
async def test_router_serves_engineio_without_deflate_unless_it_is_asked_for() -> None:
    app = Router()
    app.mount("/engine.io", EngineIOEndpoint(engineio_echo))
    app.mount("/deflate", EngineIOEndpoint(engineio_echo, per_message_deflate=True))
    app.mount("/mounted", EngineIOEndpoint(engineio_echo), websocket_options=DEFLATE)
    query = "/?EIO=4&transport=websocket"
    async with running(app) as (server, _, _base):
        assert await negotiated(server.port, "/engine.io" + query) == []
        assert await negotiated(server.port, "/deflate" + query) == ["permessage-deflate"]
        assert await negotiated(server.port, "/mounted" + query) == ["permessage-deflate"]


DEFLATE: OptionOverrides = {"compression": "deflate"}


async def engineio_echo(session: EngineIOSession) -> None:
    async for message in session:
        await session.send(message)
