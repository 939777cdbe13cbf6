"""`EngineIOEndpoint` on `fullduplex.serve`, driven by aiohttp's client over 127.0.0.1.

The refusals, limits and floods of `test_endpoint.py` again, this time through the real HTTP
server and WebSocket connections: statuses, JSON bodies and CORS headers as a client gets them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import fullduplex
from fullduplex.transports import Router
from fullduplex.transports.engineio import EngineIOEndpoint, EngineIOSession

from .server import echo


class Served:
    """An endpoint served on a free port, with an aiohttp client session."""

    def __init__(self, endpoint: EngineIOEndpoint, port: int, client: aiohttp.ClientSession):
        self.endpoint = endpoint
        self.url = f"http://127.0.0.1:{port}/engine.io/"
        self.client = client

    async def request(self, method: str, body: bytes = b"", **query: str) -> tuple[int, Any, bytes]:
        async with self.client.request(method, self.url, params=query, data=body) as response:
            return response.status, response.headers, await response.read()

    async def handshake(self) -> str:
        status, _, body = await self.request("GET", EIO="4", transport="polling")
        assert status == 200
        sid: str = json.loads(body[1:])["sid"]
        return sid


@pytest.fixture
async def serve_endpoint() -> AsyncIterator[Any]:
    stack: list[tuple[EngineIOEndpoint, Any]] = []

    async def start(handler: Any = echo, **options: Any) -> Served:
        endpoint = EngineIOEndpoint(
            handler, **{"ping_interval_ms": 300, "ping_timeout_ms": 200, **options}
        )
        app = Router()
        app.mount("/engine.io", endpoint)
        server = fullduplex.serve(app, "127.0.0.1", 0)
        running = await server.__aenter__()
        stack.append((endpoint, server))
        return Served(endpoint, running.port, client)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        yield start
        for endpoint, server in reversed(stack):
            await asyncio.wait_for(endpoint.aclose(), 5)
            await server.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("method", "query", "status", "code"),
    [
        ("GET", {"EIO": "4"}, 400, 0),
        ("GET", {"EIO": "4", "transport": "xhr"}, 400, 0),
        ("GET", {"transport": "polling"}, 400, 5),
        ("POST", {"EIO": "4", "transport": "polling"}, 400, 2),
        ("GET", {"EIO": "4", "transport": "polling", "sid": "guess"}, 400, 1),
        ("GET", {"EIO": "4", "transport": "websocket"}, 400, 3),
    ],
)
async def test_server_refuses_bad_request_with_status_body_and_cors(
    serve_endpoint: Any, method: str, query: dict[str, str], status: int, code: int
) -> None:
    served = await serve_endpoint(cors="*")
    answer_status, headers, body = await served.request(method, **query)
    assert answer_status == status
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(body)["code"] == code


async def test_server_refuses_websocket_for_unknown_sid_with_400(serve_endpoint: Any) -> None:
    served = await serve_endpoint()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await served.client.ws_connect(
            served.url, params={"EIO": "4", "transport": "websocket", "sid": "guess"}
        )
    assert refused.value.status == 400


async def test_guessed_session_ids_are_all_refused(serve_endpoint: Any) -> None:
    served = await serve_endpoint()
    sid = await served.handshake()
    guesses = [secrets.token_urlsafe(15) for _ in range(100)] + [sid[:-1], sid.upper(), ""]
    for guess in guesses:
        status, _, body = await served.request("GET", EIO="4", transport="polling", sid=guess)
        assert (status, json.loads(body)) == (400, {"code": 1, "message": "Session ID unknown"})
    assert list(served.endpoint.sessions) == [sid]


async def test_oversized_post_is_refused_with_413_and_ends_session(serve_endpoint: Any) -> None:
    served = await serve_endpoint(max_payload_bytes=1000)
    sid = await served.handshake()
    status, _, _ = await served.request(
        "POST", b"4" + b"x" * 1000, EIO="4", transport="polling", sid=sid
    )
    assert status == 413
    status, _, _ = await served.request("GET", EIO="4", transport="polling", sid=sid)
    assert status == 400


async def test_oversized_websocket_message_closes_with_1009(serve_endpoint: Any) -> None:
    served = await serve_endpoint(max_payload_bytes=1000)
    ws = await served.client.ws_connect(served.url, params={"EIO": "4", "transport": "websocket"})
    opening = await ws.receive_str()
    assert json.loads(opening[1:])["maxPayload"] == 1000
    await ws.send_str("4" + "x" * 1000)
    message = await ws.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == 1009
    assert not served.endpoint.sessions


async def test_websocket_flood_reaches_a_slow_handler_in_order_with_bounded_queue(
    serve_endpoint: Any,
) -> None:
    received: list[str | bytes] = []
    high_water = 0

    async def slow(session: EngineIOSession) -> None:
        nonlocal high_water
        async for message in session:
            high_water = max(high_water, len(session._inbox))
            received.append(message)
            if len(received) % 100 == 0:
                await asyncio.sleep(0.001)  # the point: a handler slower than the flood
            if len(received) == 2000:
                await session.send("done")

    # A heartbeat slower than the flood: this client answers PINGs only at the end.
    served = await serve_endpoint(slow, max_queue_messages=16, ping_interval_ms=10_000)
    ws = await served.client.ws_connect(served.url, params={"EIO": "4", "transport": "websocket"})
    await ws.receive_str()
    for i in range(2000):
        await ws.send_str(f"4{i}")
    assert await ws.receive_str() == "4done"
    assert received == [str(i) for i in range(2000)]
    assert high_water <= 16
    await ws.close()


async def test_polling_flood_reaches_a_slow_handler_in_order(serve_endpoint: Any) -> None:
    received: list[str | bytes] = []
    all_received = asyncio.Event()

    async def slow(session: EngineIOSession) -> None:
        async for message in session:
            received.append(message)
            if len(received) == 1000:
                all_received.set()
            await asyncio.sleep(0)  # the point: a handler slower than the flood

    served = await serve_endpoint(slow, max_queue_messages=8, ping_interval_ms=10_000)
    sid = await served.handshake()
    for batch in range(5):
        body = "\x1e".join(f"4{batch}-{i}" for i in range(200)).encode()
        status, _, answer = await served.request(
            "POST", body, EIO="4", transport="polling", sid=sid
        )
        assert (status, answer) == (200, b"ok")
        assert len(served.endpoint.sessions[sid]._inbox) <= 8
    await asyncio.wait_for(all_received.wait(), 5)
    assert received == [f"{batch}-{i}" for batch in range(5) for i in range(200)]


async def test_websocket_upgrade_by_hand_keeps_order_across_the_switch(serve_endpoint: Any) -> None:
    sessions: list[EngineIOSession] = []

    async def talk(session: EngineIOSession) -> None:
        sessions.append(session)
        await echo(session)

    served = await serve_endpoint(talk, ping_interval_ms=10_000)
    sid = await served.handshake()
    ws = await served.client.ws_connect(
        served.url, params={"EIO": "4", "transport": "websocket", "sid": sid}
    )
    await ws.send_str("2probe")
    assert await ws.receive_str() == "3probe"
    await sessions[0].send("queued during the upgrade")
    status, _, body = await served.request("GET", EIO="4", transport="polling", sid=sid)
    assert (status, body) == (200, b"4queued during the upgrade")
    status, _, body = await served.request("GET", EIO="4", transport="polling", sid=sid)
    assert (status, body) == (200, b"6")
    await sessions[0].send("after the last poll")
    await ws.send_str("5")
    assert await ws.receive_str() == "4after the last poll"
    await ws.send_bytes(b"\x00\x01")
    assert await ws.receive_bytes() == b"\x00\x01"
    assert sessions[0].transport == "websocket"
    status, _, _ = await served.request("GET", EIO="4", transport="polling", sid=sid)
    assert status == 400
    await ws.send_str("1")
    message = await ws.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE
    await asyncio.wait_for(sessions[0].wait_closed(), 2)
    assert sessions[0].close_code == 1000
