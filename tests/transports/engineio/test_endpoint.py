"""`EngineIOEndpoint`, driven request by request in memory: the checks every request goes
through (each refusal's status and body), CORS, the handshake, and the polling requests'
routing and limits. `test_over_sockets.py` does the same through real sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.protocol.http11 import Request
from fullduplex.transports.engineio import EngineIOEndpoint, EngineIOSession
from fullduplex.transports.engineio.endpoint import _query

from .memory import (
    MemoryExchange,
    MemoryWebSocket,
    handshake,
    http,
    open_websocket,
    poll,
    post,
    target,
)
from .server import echo


async def test_polling_handshake_advertises_settings_and_upgrades(make_endpoint: Any) -> None:
    endpoint = make_endpoint(ping_interval_ms=300, ping_timeout_ms=200)
    opened = await handshake(endpoint)
    assert opened.keys() == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert opened["upgrades"] == ["websocket"]
    assert (opened["pingInterval"], opened["pingTimeout"], opened["maxPayload"]) == (
        300,
        200,
        1_000_000,
    )
    assert opened["sid"] in endpoint.sessions
    assert endpoint.sessions[opened["sid"]].transport == "polling"


async def test_websocket_handshake_offers_no_upgrade(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    _, opened = await open_websocket(endpoint)
    assert opened["upgrades"] == []
    assert endpoint.sessions[opened["sid"]].transport == "websocket"


async def test_polling_only_endpoint_offers_no_upgrade(make_endpoint: Any) -> None:
    endpoint = make_endpoint(transports=["polling"])
    assert (await handshake(endpoint))["upgrades"] == []


async def test_session_ids_are_long_random_and_distinct(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sids = {(await handshake(endpoint))["sid"] for _ in range(20)}
    assert len(sids) == 20
    assert all(len(sid) == 20 for sid in sids)


BAD_REQUESTS = [
    ("GET", {"EIO": "4"}, 400, 0, "Transport unknown"),
    ("GET", {"EIO": "4", "transport": "abc"}, 400, 0, "Transport unknown"),
    ("GET", {"transport": "polling"}, 400, 5, "Unsupported protocol version"),
    ("GET", {"EIO": "abc", "transport": "polling"}, 400, 5, "Unsupported protocol version"),
    ("GET", {"EIO": "3", "transport": "polling"}, 400, 5, "Unsupported protocol version"),
    ("POST", {"EIO": "4", "transport": "polling"}, 400, 2, "Bad handshake method"),
    ("PUT", {"EIO": "4", "transport": "polling"}, 400, 2, "Bad handshake method"),
    ("GET", {"EIO": "4", "transport": "polling", "sid": "nope"}, 400, 1, "Session ID unknown"),
    ("POST", {"EIO": "4", "transport": "polling", "sid": "nope"}, 400, 1, "Session ID unknown"),
    ("GET", {"EIO": "4", "transport": "websocket"}, 400, 3, "Bad request"),
]


@pytest.mark.parametrize(("method", "query", "status", "code", "message"), BAD_REQUESTS)
async def test_endpoint_refuses_bad_request_with_engine_io_error(
    make_endpoint: Any, method: str, query: dict[str, str], status: int, code: int, message: str
) -> None:
    endpoint = make_endpoint()
    exchange = await http(endpoint, method, target(**query))
    answer_status, headers, body = await exchange.answer()
    assert answer_status == status
    assert headers.get("Content-Type") == "application/json"
    assert json.loads(body) == {"code": code, "message": message}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"EIO": "4"}, 0),
        ({"EIO": "4", "transport": "polling"}, 3),
        ({"transport": "websocket"}, 5),
        ({"EIO": "4", "transport": "websocket", "sid": "nope"}, 1),
    ],
)
async def test_endpoint_refuses_bad_websocket_upgrade(
    make_endpoint: Any, query: dict[str, str], code: int
) -> None:
    endpoint = make_endpoint()
    response = endpoint.refuse_websocket(MemoryWebSocket(target(**query)).request, "/")
    assert response is not None
    assert response.status == 400
    assert json.loads(response.body)["code"] == code


async def test_endpoint_answers_404_below_its_path(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    exchange = await http(endpoint, "GET", target(EIO="4", transport="polling"))
    await exchange.answer()

    other = MemoryExchange("GET", "/engine.io/x?EIO=4&transport=polling")
    await endpoint.handle_http(other, "/x")
    assert (await other.answer())[0] == 404
    assert endpoint.refuse_websocket(other.request, "/x") is not None


async def test_allow_request_refuses_handshake_with_403(make_endpoint: Any) -> None:
    endpoint = make_endpoint(allow_request=lambda request: "token=yes" in request.path)
    exchange = await http(endpoint, "GET", target(EIO="4", transport="polling"))
    status, _, body = await exchange.answer()
    assert (status, json.loads(body)) == (403, {"code": 4, "message": "Forbidden"})
    exchange = await http(endpoint, "GET", target(EIO="4", transport="polling", token="yes"))
    assert (await exchange.answer())[0] == 200


async def test_cors_star_allows_every_origin(make_endpoint: Any) -> None:
    endpoint = make_endpoint(cors="*")
    exchange = await http(
        endpoint, "GET", target(EIO="4", transport="polling"), headers=[("Origin", "http://a")]
    )
    _, headers, _ = await exchange.answer()
    assert headers.get("Access-Control-Allow-Origin") == "*"
    assert "Access-Control-Allow-Credentials" not in headers


async def test_cors_list_echoes_allowed_origin_with_credentials(make_endpoint: Any) -> None:
    endpoint = make_endpoint(cors=["http://a"], cors_credentials=True)
    exchange = await http(
        endpoint, "GET", target(EIO="4", transport="polling"), headers=[("Origin", "http://a")]
    )
    status, headers, _ = await exchange.answer()
    assert status == 200
    assert headers.get("Access-Control-Allow-Origin") == "http://a"
    assert headers.get("Access-Control-Allow-Credentials") == "true"
    assert headers.get("Vary") == "Origin"


async def test_cors_list_refuses_other_origins_with_403(make_endpoint: Any) -> None:
    endpoint = make_endpoint(cors=["http://a"])
    exchange = await http(
        endpoint, "GET", target(EIO="4", transport="polling"), headers=[("Origin", "http://b")]
    )
    status, headers, body = await exchange.answer()
    assert (status, json.loads(body)["code"]) == (403, 4)
    assert "Access-Control-Allow-Origin" not in headers
    request = MemoryWebSocket(target(EIO="4", transport="websocket")).request
    request.headers.add("Origin", "http://b")
    response = endpoint.refuse_websocket(request, "/")
    assert response is not None and response.status == 403


async def test_cors_preflight_is_answered_204(make_endpoint: Any) -> None:
    endpoint = make_endpoint(cors="*")
    exchange = await http(
        endpoint,
        "OPTIONS",
        target(EIO="4", transport="polling"),
        headers=[("Origin", "http://a"), ("Access-Control-Request-Headers", "content-type")],
    )
    status, headers, _ = await exchange.answer()
    assert status == 204
    assert "POST" in (headers.get("Access-Control-Allow-Methods") or "")
    assert headers.get("Access-Control-Allow-Headers") == "content-type"


async def test_no_cors_by_default(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    exchange = await http(
        endpoint, "GET", target(EIO="4", transport="polling"), headers=[("Origin", "http://a")]
    )
    _, headers, _ = await exchange.answer()
    assert "Access-Control-Allow-Origin" not in headers


async def test_polling_echoes_text_and_binary(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    assert await post(endpoint, sid, b"4hello\x1ebAQIDBA==\x1e4x") == (200, b"ok")
    assert await poll(endpoint, sid) == (200, b"4hello\x1ebAQIDBA==\x1e4x")


async def test_invalid_packet_closes_polling_session(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    status, body = await post(endpoint, sid, b"abc")
    assert (status, json.loads(body)["code"]) == (400, 3)
    assert (session.close_code, session.close_reason) == (1002, "parse error")
    assert (await poll(endpoint, sid))[0] == 400


async def test_duplicate_poll_closes_session(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    first = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    second = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    assert (await first.answer())[::2] == (200, b"1")
    assert (await second.answer())[0] == 400
    assert (await poll(endpoint, sid))[0] == 400


async def test_concurrent_posts_close_session(make_endpoint: Any) -> None:
    async def never_reads(session: EngineIOSession) -> None:
        await session.wait_closed()

    endpoint = make_endpoint(never_reads, max_queue_messages=1)
    sid = (await handshake(endpoint))["sid"]
    # The first POST waits: the inbox holds one message and nobody reads.
    first = await http(endpoint, "POST", target(EIO="4", transport="polling", sid=sid), b"4a\x1e4b")
    second = await http(endpoint, "POST", target(EIO="4", transport="polling", sid=sid), b"4c")
    assert (await second.answer())[0] == 400
    assert (await first.answer())[0] == 200
    assert sid not in endpoint.sessions


async def test_oversized_post_gets_413_and_closes_session(make_endpoint: Any) -> None:
    endpoint = make_endpoint(max_payload_bytes=100)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    assert (await post(endpoint, sid, b"4" + b"x" * 100))[0] == 413
    assert session.close_code == 1009
    assert (await poll(endpoint, sid))[0] == 400


async def test_request_after_overdue_pong_sees_session_gone_on_a_busy_loop(
    make_endpoint: Any,
) -> None:
    endpoint = make_endpoint(ping_interval_ms=20, ping_timeout_ms=20)
    sid = (await handshake(endpoint))["sid"]
    # Checked each loop turn (a PING sent has no event): the PING is due 20 ms from now.
    while endpoint.sessions[sid]._pong_deadline is None:
        await asyncio.sleep(0)
    # The loop is blocked past the deadline: its timer has not run when the poll is read.
    time.sleep(0.03)
    status, body = await poll(endpoint, sid)
    assert (status, json.loads(body)["code"]) == (400, 1)
    assert sid not in endpoint.sessions


@pytest.mark.parametrize(
    "options",
    [
        {"transports": ["polling", "flash"]},
        {"transports": []},
        {"ping_interval_ms": 0},
        {"max_queue_messages": -1},
    ],
)
def test_endpoint_refuses_invalid_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EngineIOEndpoint(echo, **options)


async def test_other_methods_on_a_session_are_bad_requests(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    exchange = await http(endpoint, "PUT", target(EIO="4", transport="polling", sid=sid))
    status, _, body = await exchange.answer()
    assert (status, json.loads(body)["code"]) == (400, 3)
    assert endpoint.options.ping_interval_ms == 10_000


async def test_websocket_for_a_session_that_just_ended_is_closed(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    ws = MemoryWebSocket(target(EIO="4", transport="websocket", sid=sid))
    assert endpoint.refuse_websocket(ws.request, "/") is None
    # The session ends between the handshake's check and the WebSocket's start.
    assert await post(endpoint, sid, b"1") == (200, b"ok")
    await endpoint.handle_websocket(ws, "/")
    assert ws.close_code == 1008


async def test_websocket_gone_before_the_open_packet_leaves_no_session(
    make_endpoint: Any,
) -> None:
    endpoint = make_endpoint()
    ws = MemoryWebSocket(target(EIO="4", transport="websocket"))
    ws.client_close(1001)
    await ws.close()
    await endpoint.handle_websocket(ws, "/")
    assert not endpoint.sessions
    assert not endpoint._handler_tasks


async def test_aclose_cancels_a_handler_that_ignores_the_close(make_endpoint: Any) -> None:
    cancelled = asyncio.Event()

    async def stubborn(session: EngineIOSession) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    endpoint = make_endpoint(stubborn)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    await endpoint.aclose(timeout_s=0.05)
    assert cancelled.is_set()
    assert (session.close_code, session.close_reason) == (1001, "server shutting down")
    assert not endpoint._handler_tasks


@given(st.text(alphabet="ab=&+%2E8#?;é ", max_size=30))
def test_query_reads_the_target_as_parse_qsl_does(query: str) -> None:
    target = "/socket.io/?" + query
    expected: dict[str, str] = {}
    for name, value in parse_qsl(urlsplit(target).query, keep_blank_values=True):
        expected.setdefault(name, value)
    assert _query(Request(target)) == expected


def test_query_of_a_target_without_one_is_empty() -> None:
    assert _query(Request("/socket.io/")) == {}
