"""`EngineIOEndpoint` and `EngineIOSession`, driven request by request in memory.

Each test plays a client by hand (`memory.http`, `memory.websocket`), so every status, body and
packet is checked exactly; `test_suite.py` and `test_node_client.py` run real clients.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fullduplex.exceptions import ConnectionClosed
from fullduplex.transports.engineio import EngineIOEndpoint, EngineIOSession

from .memory import MemoryWebSocket, http, target, websocket

FAST = {"ping_interval_ms": 300, "ping_timeout_ms": 200}


async def echo(session: EngineIOSession) -> None:
    async for message in session:
        await session.send(message)


@pytest.fixture
async def make_endpoint() -> AsyncIterator[Callable[..., EngineIOEndpoint]]:
    endpoints: list[EngineIOEndpoint] = []

    def make(handler: Any = echo, **options: Any) -> EngineIOEndpoint:
        endpoint = EngineIOEndpoint(handler, **{**FAST, **options})
        endpoints.append(endpoint)
        return endpoint

    yield make
    for endpoint in endpoints:
        await asyncio.wait_for(endpoint.aclose(), 5)


async def handshake(endpoint: EngineIOEndpoint, **headers: str) -> dict[str, Any]:
    exchange = await http(
        endpoint, "GET", target(EIO="4", transport="polling"), b"", headers.items()
    )
    status, _, body = await exchange.answer()
    assert status == 200
    assert body.startswith(b"0")
    opened: dict[str, Any] = json.loads(body[1:])
    return opened


async def poll(endpoint: EngineIOEndpoint, sid: str) -> tuple[int, bytes]:
    exchange = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    status, _, body = await exchange.answer()
    return status, body


async def post(endpoint: EngineIOEndpoint, sid: str, body: bytes) -> tuple[int, bytes]:
    exchange = await http(endpoint, "POST", target(EIO="4", transport="polling", sid=sid), body)
    status, _, answer = await exchange.answer()
    return status, answer


async def open_websocket(endpoint: EngineIOEndpoint) -> tuple[MemoryWebSocket, dict[str, Any]]:
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket"))
    opening = await ws.client_recv()
    assert isinstance(opening, str) and opening.startswith("0")
    return ws, json.loads(opening[1:])


# --- handshake ---


async def test_polling_handshake_advertises_settings_and_upgrades(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
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


# --- bad requests: each status and body ---

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
    from .memory import MemoryExchange

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


# --- CORS ---


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


# --- polling messages ---


async def test_polling_echoes_text_and_binary(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    assert await post(endpoint, sid, b"4hello\x1ebAQIDBA==\x1e4x") == (200, b"ok")
    assert await poll(endpoint, sid) == (200, b"4hello\x1ebAQIDBA==\x1e4x")


async def test_held_poll_gets_message_sent_later(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    await asyncio.sleep(0.01)
    assert not held.is_answered
    await endpoint.sessions[sid].send("later")
    assert (await held.answer())[2] == b"4later"


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


async def test_client_gone_from_held_poll_allows_next_poll(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    first = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    first.disconnect()
    await asyncio.sleep(0.01)
    await endpoint.sessions[sid].send("x")
    assert await poll(endpoint, sid) == (200, b"4x")
    assert not first.is_answered


async def test_client_close_packet_ends_held_poll_with_noop(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    assert await post(endpoint, sid, b"1") == (200, b"ok")
    assert (await held.answer())[::2] == (200, b"6")
    assert (session.close_code, session.close_reason) == (1000, "transport close")
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


async def test_post_waits_while_application_reads_slowly(make_endpoint: Any) -> None:
    received: list[str | bytes] = []
    release = asyncio.Event()

    async def slow(session: EngineIOSession) -> None:
        await release.wait()
        async for message in session:
            received.append(message)

    endpoint = make_endpoint(slow, max_queue_messages=2)
    sid = (await handshake(endpoint))["sid"]
    flood = b"\x1e".join(b"4%d" % i for i in range(50))
    pending = await http(endpoint, "POST", target(EIO="4", transport="polling", sid=sid), flood)
    await asyncio.sleep(0.02)
    assert not pending.is_answered
    assert len(endpoint.sessions[sid]._inbox) == 2
    release.set()
    assert (await pending.answer())[::2] == (200, b"ok")
    await asyncio.sleep(0.01)
    assert received == [str(i) for i in range(50)]


async def test_send_waits_while_client_does_not_poll(make_endpoint: Any) -> None:
    sent: list[int] = []

    async def flood(session: EngineIOSession) -> None:
        for i in range(10):
            await session.send(str(i))
            sent.append(i)
        await session.wait_closed()

    endpoint = make_endpoint(flood, max_queue_messages=3)
    sid = (await handshake(endpoint))["sid"]
    await asyncio.sleep(0.02)
    assert sent == [0, 1, 2]
    assert await poll(endpoint, sid) == (200, b"40\x1e41\x1e42")
    await asyncio.sleep(0.01)
    assert sent == [0, 1, 2, 3, 4, 5]


# --- heartbeat ---


async def test_polling_heartbeat_pings_and_times_out(make_endpoint: Any) -> None:
    endpoint = make_endpoint(ping_interval_ms=30, ping_timeout_ms=20)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    for _ in range(3):
        assert await poll(endpoint, sid) == (200, b"2")
        assert await post(endpoint, sid, b"3") == (200, b"ok")
    await asyncio.wait_for(session.wait_closed(), 1)
    assert (session.close_code, session.close_reason) == (1011, "ping timeout")
    assert (await poll(endpoint, sid))[0] == 400


async def test_websocket_heartbeat_pings_and_times_out(make_endpoint: Any) -> None:
    endpoint = make_endpoint(ping_interval_ms=30, ping_timeout_ms=20)
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    for _ in range(3):
        assert await ws.client_recv() == "2"
        ws.client_send("3")
    assert await ws.client_recv() == "2"
    assert await ws.client_recv() is None
    assert (session.close_code, ws.close_code) == (1011, 1011)


# --- WebSocket ---


async def test_websocket_echoes_text_and_binary(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    ws, _ = await open_websocket(endpoint)
    ws.client_send("4hello")
    assert await ws.client_recv() == "4hello"
    ws.client_send(b"\x01\x02")
    assert await ws.client_recv() == b"\x01\x02"


async def test_invalid_packet_closes_websocket(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    ws.client_send("abc")
    assert await ws.client_recv() is None
    assert (session.close_code, ws.close_code) == (1002, 1002)


async def test_oversized_websocket_message_closes_with_1009(make_endpoint: Any) -> None:
    endpoint = make_endpoint(max_payload_bytes=10)
    ws, _ = await open_websocket(endpoint)
    ws.client_send("4" + "x" * 10)
    assert await ws.client_recv() is None
    assert ws.close_code == 1009


async def test_client_close_packet_closes_websocket(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    ws.client_send("1")
    assert await ws.client_recv() is None
    assert session.close_code == 1000
    assert not endpoint.sessions


@pytest.mark.parametrize(("websocket_code", "session_code"), [(1000, 1000), (1001, 1006)])
async def test_websocket_closed_without_close_packet_ends_session(
    make_endpoint: Any, websocket_code: int, session_code: int
) -> None:
    endpoint = make_endpoint()
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    ws.client_close(websocket_code)
    await asyncio.wait_for(session.wait_closed(), 1)
    assert (session.close_code, session.close_reason) == (session_code, "transport close")


# --- upgrade ---


async def test_upgrade_probes_ends_poll_with_noop_and_switches(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    assert (await held.answer())[::2] == (200, b"6")
    # Until the UPGRADE packet, messages still go out by polling.
    assert session.transport == "polling"
    await session.send("before")
    assert await poll(endpoint, sid) == (200, b"4before")
    assert await poll(endpoint, sid) == (200, b"6")
    ws.client_send("5")
    ws.client_send("4hello")
    assert await ws.client_recv() == "4hello"
    assert session.transport == "websocket"
    assert (await poll(endpoint, sid))[0] == 400
    assert (await post(endpoint, sid, b"4x"))[0] == 400


async def test_upgrade_flushes_packets_queued_during_the_switch(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    await session.send("a")
    await session.send(b"b")
    ws.client_send("5")
    assert await ws.client_recv() == "4a"
    assert await ws.client_recv() == b"b"


async def test_second_websocket_for_same_session_is_closed(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    ws.client_send("5")
    assert await ws.client_recv() == "3probe"
    await asyncio.sleep(0.01)
    second, task = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    assert await second.client_recv() is None
    await task
    ws.client_send("4hello")
    assert await ws.client_recv() == "4hello"


async def test_upgrade_without_upgrade_packet_times_out(make_endpoint: Any) -> None:
    endpoint = make_endpoint(upgrade_timeout_ms=30)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    ws, task = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("2probe")
    assert await ws.client_recv() == "3probe"
    assert await ws.client_recv() is None
    await task
    assert session.transport == "polling" and not session.is_closed
    await session.send("still")
    assert await poll(endpoint, sid) == (200, b"4still")


async def test_other_packet_during_probe_abandons_upgrade(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    ws, task = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    ws.client_send("4hello")
    assert await ws.client_recv() is None
    await task
    assert endpoint.sessions[sid].transport == "polling"


# --- closing ---


async def test_application_close_over_polling_sends_rest_then_close(make_endpoint: Any) -> None:
    async def bye(session: EngineIOSession) -> None:
        await session.send("bye")
        await session.close(4000, "done")

    endpoint = make_endpoint(bye)
    sid = (await handshake(endpoint))["sid"]
    session = endpoint.sessions[sid]
    assert await poll(endpoint, sid) == (200, b"4bye\x1e1")
    assert (session.close_code, session.close_reason) == (4000, "done")
    with pytest.raises(ConnectionClosed):
        await session.send("x")


async def test_application_close_over_websocket_sends_rest_then_closes(make_endpoint: Any) -> None:
    async def bye(session: EngineIOSession) -> None:
        await session.send("bye")

    endpoint = make_endpoint(bye)
    ws, _ = await open_websocket(endpoint)
    assert await ws.client_recv() == "4bye"
    assert await ws.client_recv() is None
    assert ws.close_code == 1000


async def test_failing_handler_closes_session_with_1011(make_endpoint: Any) -> None:
    async def fails(session: EngineIOSession) -> None:
        raise RuntimeError("boom")

    endpoint = make_endpoint(fails)
    ws, _ = await open_websocket(endpoint)
    assert await ws.client_recv() is None
    assert ws.close_code == 1011


async def test_ended_session_leaves_no_timer_or_task(make_endpoint: Any) -> None:
    endpoint = make_endpoint()
    ws, opened = await open_websocket(endpoint)
    session = endpoint.sessions[opened["sid"]]
    ws.client_send("1")
    await asyncio.wait_for(session.wait_closed(), 1)
    await asyncio.sleep(0.01)
    assert session._ping_timer is None and session._pong_deadline is None
    assert session._linger_timer is None and session._upgrade_timer is None
    assert session._writer is not None and session._writer.done()
    assert not session._closing_tasks
    assert not endpoint._handler_tasks
    assert not endpoint.sessions


async def test_poll_held_across_probe_and_upgrade_is_refused(make_endpoint: Any) -> None:
    # The client sent PING probe and UPGRADE at once; the poll it made meanwhile is read
    # before them: by the time the poll runs the session is on WebSocket, so 400.
    endpoint = make_endpoint()
    sid = (await handshake(endpoint))["sid"]
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket", sid=sid))
    held = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    ws.client_send("2probe")
    ws.client_send("5")
    assert (await held.answer())[0] == 400
    assert await ws.client_recv() == "3probe"
    ws.client_send("4hello")
    assert await ws.client_recv() == "4hello"


async def test_request_after_overdue_pong_sees_session_gone_on_a_busy_loop(
    make_endpoint: Any,
) -> None:
    endpoint = make_endpoint(ping_interval_ms=20, ping_timeout_ms=20)
    sid = (await handshake(endpoint))["sid"]
    await asyncio.sleep(0.03)
    assert endpoint.sessions[sid]._pong_deadline is not None
    # The loop is blocked past the deadline: its timer has not run when the poll is read.
    time.sleep(0.03)
    status, body = await poll(endpoint, sid)
    assert (status, json.loads(body)["code"]) == (400, 1)
    assert sid not in endpoint.sessions
