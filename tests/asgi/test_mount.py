"""fullduplex.asgi.mount under real uvicorn, inside Starlette's Mount: the same Endpoint
answers the same requests identically there and on `fullduplex.serve`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from fullduplex import (
    ConnectionClosed,
    HTTPDisconnect,
    InvalidStatus,
    Request,
    Response,
    connect,
    serve,
)
from fullduplex.asgi import mount
from fullduplex.transports import Endpoint, HTTPExchange, Router, Session

from .uvicorn_server import uvicorn_serving

uvicorn = pytest.importorskip("uvicorn", reason="pip install -e '.[test]'")
starlette_applications = pytest.importorskip("starlette.applications")
starlette_routing = pytest.importorskip("starlette.routing")


pytestmark = pytest.mark.timeout_s(15)


class Probe(Endpoint):
    """Answers what it saw, echoes bodies, streams, holds a request until the client leaves,
    and echoes WebSocket messages."""

    def __init__(self) -> None:
        self.disconnected = asyncio.Event()

    async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
        request = exchange.request
        if path == "/echo":
            body = await exchange.read_body(1024)
            await exchange.respond(200, [("Content-Type", "application/octet-stream")], body)
        elif path == "/stream":
            await exchange.start(200, [("Content-Type", "text/plain")])
            for part in (b"a" * 1000, b"b" * 1000, b"c"):
                await exchange.write(part)
            await exchange.end()
        elif path == "/hold":
            await exchange.start(200, [("Content-Type", "text/plain")])
            await exchange.write(b"held")
            await exchange.wait_disconnected()
            assert exchange.is_disconnected
            self.disconnected.set()
        elif path == "/fail":
            raise RuntimeError("boom")
        elif path == "/fail-streaming":
            await exchange.start(200, [("Content-Type", "text/plain")])
            await exchange.write(b"partial")
            raise RuntimeError("boom")
        elif path == "/silent":
            pass
        elif path == "/twice":
            first = await exchange.read_body(10)
            assert await exchange.read_body(10) == first
            await exchange.respond(200, [], first)
        else:
            text = f"{request.method} {path!r} {request.path} {request.headers.get('X-Probe')}"
            await exchange.respond(200, [("Content-Type", "text/plain")], text.encode())

    def refuse_websocket(self, request: Request, path: str) -> Response | None:
        return Response(403, [], b"") if path == "/refused" else None

    async def handle_websocket(self, session: Session, path: str) -> None:
        await session.send(f"{session.transport} {path!r} {session.request.path}")
        async for message in session:
            if message == "close":
                await session.close(4001, "asked")
                return
            if message == "fail":
                raise RuntimeError("boom")
            await session.send(message)


@asynccontextmanager
async def native(endpoint: Endpoint) -> AsyncIterator[str]:
    app = Router()
    app.mount("/rt", endpoint)
    async with serve(app, "127.0.0.1", 0) as server:
        yield f"127.0.0.1:{server.port}"


@asynccontextmanager
async def under_uvicorn(endpoint: Endpoint) -> AsyncIterator[str]:
    app = starlette_applications.Starlette(
        routes=[starlette_routing.Mount("/rt", app=mount(endpoint))]
    )
    async with uvicorn_serving(app) as (_, port):
        yield f"127.0.0.1:{port}"


SERVERS = {"native": native, "uvicorn": under_uvicorn}


async def answers(address: str) -> list[tuple[int, bytes, str | None, str | None]]:
    """The answers to a fixed set of requests: status, body, content type and length."""
    results = []
    async with aiohttp.ClientSession(f"http://{address}") as client:
        for method, path, data in [
            ("GET", "/rt/a/b?q=1&r=%20", None),
            ("GET", "/rt/", None),
            ("POST", "/rt/echo", b"x" * 1000),
            ("POST", "/rt/echo", b"y" * 2000),  # beyond the endpoint's 1024 bytes: 413
            ("GET", "/rt/stream", None),
            ("GET", "/rt/fail", None),
            ("GET", "/rt/silent", None),
            ("HEAD", "/rt/a", None),
            ("POST", "/rt/twice", b"abc"),
        ]:
            async with client.request(
                method, path, data=data, headers={"X-Probe": "p"}
            ) as response:
                body = await response.read()
                length = response.headers.get("Content-Length")
                results.append(
                    (response.status, body, response.headers.get("Content-Type"), length)
                )
    return results


async def test_endpoint_answers_http_identically_natively_and_under_uvicorn() -> None:
    async with native(Probe()) as address:
        expected = await answers(address)
    async with under_uvicorn(Probe()) as address:
        assert await answers(address) == expected
    assert expected[0][1] == b"GET '/a/b' /rt/a/b?q=1&r=%20 p"
    assert [answer[0] for answer in expected] == [200, 200, 200, 413, 200, 500, 500, 200, 200]
    assert expected[4][1] == b"a" * 1000 + b"b" * 1000 + b"c"
    assert expected[7][1:] == (b"", "text/plain", str(len(b"HEAD '/a' /rt/a p")))
    assert expected[8][1] == b"abc"


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_response_cut_short_by_a_failure_is_not_taken_for_complete(kind: str) -> None:
    async with (
        SERVERS[kind](Probe()) as address,
        aiohttp.ClientSession(f"http://{address}") as client,
        client.get("/rt/fail-streaming") as response,
    ):
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


@pytest.mark.parametrize("kind", SERVERS)
async def test_held_request_notices_the_client_leaving(kind: str) -> None:
    probe = Probe()
    async with SERVERS[kind](probe) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /rt/hold HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"held")
        writer.close()
        await writer.wait_closed()
        await probe.disconnected.wait()


@pytest.mark.parametrize("kind", SERVERS)
async def test_endpoint_serves_websocket_sessions(kind: str) -> None:
    async with SERVERS[kind](Probe()) as address:
        async with connect(f"ws://{address}/rt/chat?id=7") as ws:
            assert await ws.recv() == "websocket '/chat' /rt/chat?id=7"
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            assert (caught.value.code, caught.value.reason) == (4001, "asked")
        async with connect(f"ws://{address}/rt/chat") as ws:
            await ws.recv()
            await ws.send("fail")
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            assert caught.value.code == 1011
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://{address}/rt/refused")
        assert refused.value.response.status == 403


async def test_mount_answers_lifespan() -> None:
    app = mount(Probe())
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "lifespan"}, receive, send)
    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


class ScriptedASGI:
    """An in-memory ASGI server side for paths uvicorn does not take: messages to receive
    are scripted, messages sent are recorded."""

    def __init__(self, *incoming: dict[str, Any]) -> None:
        self.incoming = list(incoming)
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return self.incoming.pop(0)

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))


def websocket_scope(path: str) -> dict[str, Any]:
    return {"type": "websocket", "path": path, "raw_path": path.encode(), "headers": []}


async def test_mount_refuses_an_upgrade_with_a_close_without_the_response_extension() -> None:
    asgi = ScriptedASGI({"type": "websocket.connect"})
    await mount(Probe())(websocket_scope("/refused"), asgi.receive, asgi.send)
    assert asgi.sent == [{"type": "websocket.close", "code": 1008}]


async def test_mount_reports_a_client_gone_while_sending_its_body() -> None:
    seen: list[BaseException] = []

    class Reader(Probe):
        async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
            try:
                await exchange.read_body(100)
            except HTTPDisconnect as exc:
                seen.append(exc)
                assert exchange.is_disconnected
                raise

    asgi = ScriptedASGI(
        {"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}
    )
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    await mount(Reader())(scope, asgi.receive, asgi.send)
    assert len(seen) == 1
    assert asgi.sent == []


async def test_session_send_after_the_server_refuses_raises_connection_closed() -> None:
    async def refusing_send(message: Any) -> None:
        if message["type"] == "websocket.send":
            raise RuntimeError("Unexpected ASGI message 'websocket.send'")

    errors: list[BaseException] = []

    class Sender(Probe):
        async def handle_websocket(self, session: Session, path: str) -> None:
            try:
                await session.send("x")
            except ConnectionClosed as exc:
                errors.append(exc)
            assert session.close_code == 1006

    asgi = ScriptedASGI({"type": "websocket.connect"})
    await mount(Sender())(websocket_scope("/"), asgi.receive, refusing_send)
    assert isinstance(errors[0], ConnectionClosed)
