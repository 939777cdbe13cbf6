"""`SockJSEndpoint` on a real fullduplex server, driven by a real HTTP client (aiohttp):
delivery across polling reconnects, the disconnect delay, queue bounds, backpressure on a
slow streaming reader, and each bad input."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest

import fullduplex
from fullduplex.exceptions import ConnectionClosed
from fullduplex.transports import Router, Session
from fullduplex.transports.sockjs import SockJSEndpoint


@asynccontextmanager
async def serving(endpoint: SockJSEndpoint) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The endpoint at /sockjs on a free port; yields its URL and a client."""
    app = Router()
    app.mount("/sockjs", endpoint)
    async with (
        fullduplex.serve(app, "127.0.0.1", 0) as server,
        aiohttp.ClientSession() as client,
    ):
        yield f"http://127.0.0.1:{server.port}/sockjs", client


def session_url(base: str) -> str:
    return f"{base}/000/{uuid.uuid4()}"


async def post(client: aiohttp.ClientSession, url: str, body: bytes = b"") -> tuple[int, str]:
    async with client.post(url, data=body) as response:
        return response.status, await response.text()


async def echo(session: Session) -> None:
    async for message in session:
        await session.send(message)


async def test_longpoll_delivers_queued_messages_after_reconnect_in_order() -> None:
    count = 300

    async def counter(session: Session) -> None:
        await session.recv()
        for index in range(count):
            await session.send(str(index))
            # A sender with pauses, so that the client's polls fall between messages.
            await asyncio.sleep(0.0005 if index % 7 else 0.01)

    async with serving(SockJSEndpoint(counter)) as (base, client):
        url = session_url(base)
        assert await post(client, url + "/xhr") == (200, "o\n")
        assert await post(client, url + "/xhr_send", b'["go"]') == (204, "")
        received: list[str] = []
        polls = 0
        while len(received) < count:
            status, body = await post(client, url + "/xhr")
            polls += 1
            assert status == 200 and body.startswith("a[")
            received += json.loads(body[1:])
            await asyncio.sleep(0.01)  # the client between two polls
        assert received == [str(index) for index in range(count)]
        assert 1 < polls < count  # messages between two polls came together


async def test_messages_sent_while_no_request_is_held_come_all_at_once() -> None:
    sent = asyncio.Event()

    async def burst(session: Session) -> None:
        async for message in session:
            for index in range(int(message)):
                await session.send(f"m{index}")
            sent.set()

    async with serving(SockJSEndpoint(burst)) as (base, client):
        url = session_url(base)
        assert await post(client, url + "/xhr") == (200, "o\n")
        assert await post(client, url + "/xhr_send", b'["50"]') == (204, "")
        await sent.wait()
        status, body = await post(client, url + "/xhr")
        assert status == 200
        assert json.loads(body[1:]) == [f"m{index}" for index in range(50)]


async def test_session_not_polled_within_the_disconnect_delay_is_closed_and_freed() -> None:
    closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def watcher(session: Session) -> None:
        try:
            await session.recv()
        except ConnectionClosed as error:
            closed.set_result(error.code)

    endpoint = SockJSEndpoint(watcher, disconnect_delay_s=0.2)
    async with serving(endpoint) as (base, client):
        url = session_url(base)
        assert await post(client, url + "/xhr") == (200, "o\n")
        assert endpoint.session_count == 1
        assert await asyncio.wait_for(closed, 5) == 1006
        assert endpoint.session_count == 0
        assert await post(client, url + "/xhr_send", b'["late"]') == (404, "")


async def test_full_queue_closes_the_session_with_the_close_policy() -> None:
    overflowed = asyncio.Event()

    async def flood(session: Session) -> None:
        await session.recv()
        try:
            for _ in range(100):
                await session.send("x" * 100)
        except ConnectionClosed:
            overflowed.set()
            raise

    endpoint = SockJSEndpoint(flood, max_queue_bytes=1000, overflow="close")
    async with serving(endpoint) as (base, client):
        url = session_url(base)
        assert await post(client, url + "/xhr") == (200, "o\n")
        assert await post(client, url + "/xhr_send", b'["go"]') == (204, "")
        await overflowed.wait()
        frames = [(await post(client, url + "/xhr"))[1] for _ in range(2)]
        assert len(json.loads(frames[0][1:])) == 10  # what fit in the queue
        assert frames[1] == 'c[4009,"Send queue overflow"]\n'


async def test_slow_streaming_reader_holds_the_sender_back() -> None:
    sent = 0

    async def producer(session: Session) -> None:
        nonlocal sent
        await session.recv()
        while True:
            await session.send("y" * 16384)
            sent += 1

    endpoint = SockJSEndpoint(
        producer, max_queue_bytes=65536, response_limit_bytes=1 << 30, heartbeat_s=60
    )
    async with serving(endpoint) as (base, client):
        url = session_url(base)
        host, port = base.split("//")[1].split("/")[0].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        path = url.split(port, 1)[1] + "/xhr_streaming"
        writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        await reader.readuntil(b"o\n")
        assert await post(client, url + "/xhr_send", b'["go"]') == (204, "")
        stalled_at = None
        # No event says the sender stopped for good: 0.2 s without a message sent does.
        for _ in range(50):  # the socket buffers fill, then the queue, then send waits
            before = sent
            await asyncio.sleep(0.2)
            if sent == before:
                stalled_at = sent
                break
        assert stalled_at is not None  # the sender waits; memory stays bounded
        # Socket buffers plus the queue: a few MiB at most, not everything ever sent.
        assert stalled_at * 16384 < 16 * 1024 * 1024
        for _ in range(20):
            await reader.read(1 << 20)
        while sent == stalled_at:  # reading lets it go on (bounded by the test's timeout)
            await asyncio.sleep(0.01)
        writer.close()


async def test_oversized_post_gets_413() -> None:
    async with serving(SockJSEndpoint(echo, max_body_bytes=1024)) as (base, client):
        url = session_url(base)
        assert await post(client, url + "/xhr") == (200, "o\n")
        status, _ = await post(client, url + "/xhr_send", b'["' + b"z" * 2000 + b'"]')
        assert status == 413
        assert await post(client, url + "/xhr_send", b'["fits"]') == (204, "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'["x', "Broken JSON encoding."), (b"", "Payload expected."), (b"[1]", "Broken JSON")],
)
async def test_bad_payload_gets_500_with_the_protocol_text(body: bytes, expected: str) -> None:
    async with serving(SockJSEndpoint(echo)) as (base, client):
        url = session_url(base)
        assert await post(client, url + "/xhr") == (200, "o\n")
        status, text = await post(client, url + "/xhr_send", body)
        assert status == 500 and expected in text


async def test_send_to_unknown_session_gets_404() -> None:
    async with serving(SockJSEndpoint(echo)) as (base, client):
        assert (await post(client, session_url(base) + "/xhr_send", b'["x"]'))[0] == 404
        async with client.post(
            session_url(base) + "/jsonp_send", data=b"d=%5B%22x%22%5D"
        ) as response:
            assert response.status == 404


async def test_flood_of_new_sessions_is_bounded() -> None:
    endpoint = SockJSEndpoint(echo, max_sessions=3)
    async with serving(endpoint) as (base, client):
        urls = [session_url(base) for _ in range(4)]
        for url in urls[:3]:
            assert await post(client, url + "/xhr") == (200, "o\n")
        assert (await post(client, urls[3] + "/xhr"))[0] == 503
        assert endpoint.session_count == 3
        assert await post(client, urls[0] + "/xhr_send", b'["still"]') == (204, "")
        assert await post(client, urls[0] + "/xhr") == (200, 'a["still"]\n')


async def test_htmlfile_message_holding_a_script_end_tag_stays_inside_the_script() -> None:
    async with serving(SockJSEndpoint(echo)) as (base, client):
        url = session_url(base)
        async with client.get(url + "/htmlfile?c=cb") as response:
            await response.content.readuntil(b"</script>\r\n")  # o
            await post(client, url + "/xhr_send", b'["</script><b>x</b>"]')
            chunk = await response.content.readuntil(b"</script>\r\n")
        assert chunk.count(b"</script>") == 1
        assert b"\\u003c/script\\u003e" in chunk


async def test_eventsource_message_with_line_breaks_and_percent_stays_one_event() -> None:
    async with serving(SockJSEndpoint(echo)) as (base, client):
        url = session_url(base)
        async with client.get(url + "/eventsource") as response:
            await response.content.readuntil(b"data: o\r\n\r\n")
            await post(client, url + "/xhr_send", json.dumps(["a\r\nb%41\nc"]).encode())
            event = await response.content.readuntil(b"\r\n\r\n")
        # sockjs-client decodeURI()s the line: "%" travels as "%25".
        assert event == b'data: a["a\\r\\nb%2541\\nc"]\r\n\r\n'


async def test_handler_error_closes_the_session_with_1011() -> None:
    async def broken(session: Session) -> None:
        raise RuntimeError("bug")

    async with serving(SockJSEndpoint(broken)) as (base, client):
        url = session_url(base)
        assert await post(client, url + "/xhr") == (200, "o\n")
        assert await post(client, url + "/xhr") == (200, 'c[1011,"Internal error"]\n')


async def test_same_handler_serves_raw_websocket_and_sockjs_websocket() -> None:
    handler: Callable[[Session], Awaitable[None]] = echo
    async with serving(SockJSEndpoint(handler)) as (base, client):
        ws_base = base.replace("http", "ws")
        async with client.ws_connect(ws_base + "/websocket") as raw:
            await raw.send_str("plain")
            assert await raw.receive_str() == "plain"
        async with client.ws_connect(session_url(ws_base) + "/websocket") as framed:
            assert await framed.receive_str() == "o"
            await framed.send_str('["framed"]')
            assert await framed.receive_str() == 'a["framed"]'


async def test_vanished_streaming_reader_closes_the_session_with_1002() -> None:
    closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def watcher(session: Session) -> None:
        try:
            await session.recv()
        except ConnectionClosed as error:
            closed.set_result(error.code)

    async with serving(SockJSEndpoint(watcher)) as (base, client):
        url = session_url(base)
        async with client.post(url + "/xhr_streaming") as response:
            await response.content.readuntil(b"o\n")
        # The client went away: the session is interrupted, and says so to the next request.
        assert await asyncio.wait_for(closed, 5) == 1002
        assert await post(client, url + "/xhr") == (200, 'c[1002,"Connection interrupted"]\n')


async def test_reused_session_id_gets_the_close_frame_until_forgotten_then_a_new_session() -> None:
    async def close_at_once(session: Session) -> None:
        await session.close(3000, "Go away!")

    endpoint = SockJSEndpoint(close_at_once, disconnect_delay_s=0.1)
    async with serving(endpoint) as (base, client):
        url = session_url(base)
        assert await post(client, url + "/xhr") == (200, "o\n")
        assert await post(client, url + "/xhr") == (200, 'c[3000,"Go away!"]\n')
        assert await post(client, url + "/xhr_send", b'["x"]') == (404, "")
        while endpoint.session_count:  # polled, bounded by the test's timeout
            await asyncio.sleep(0.02)
        assert await post(client, url + "/xhr") == (200, "o\n")
