"""serve / Server / ServerConnection over real sockets on 127.0.0.1: the handshake and its
refusals, plain HTTP on the same port, protocol violations, keepalive, backpressure on
reading, and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import urllib.error
import urllib.request

import pytest

from fullduplex import (
    ClientConnection,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
    Request,
    RequestHook,
    Response,
    ServerConnection,
    connect,
    serve,
)

from .peers import (
    BINARY,
    CLOSE,
    CONTINUATION,
    MASK,
    PING,
    PONG,
    TEXT,
    Holder,
    RawPeer,
    echo,
    encode_frame,
    upgrade_request,
)


async def test_server_echoes_text_and_binary() -> None:
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"


async def test_server_closes_with_1000_when_the_handler_returns() -> None:
    async def greet(ws: ServerConnection) -> None:
        await ws.send(f"hello {ws.request.path}")

    async with (
        serve(greet, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/room?id=1") as ws,
    ):
        assert await ws.recv() == "hello /room?id=1"
        with pytest.raises(ConnectionClosedOK) as caught:
            await ws.recv()
        assert caught.value.code == 1000


async def test_server_negotiates_a_subprotocol() -> None:
    async def report(ws: ServerConnection) -> None:
        await ws.send(str(ws.subprotocol))

    async with serve(report, "127.0.0.1", 0, subprotocols=["chat.v2", "chat.v1"]) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with connect(url, subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert await ws.recv() == "chat.v2"


async def test_server_reports_its_connections_and_addresses() -> None:
    hold = Holder()
    async with (
        serve(hold, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as client,
    ):
        ws = await hold.next()
        assert server.connections == {ws}
        assert ws.local_address == ("127.0.0.1", server.port)
        assert ws.remote_address == client.local_address


async def _accept_everything(ws: ServerConnection, request: Request) -> None:
    await asyncio.sleep(0)  # answered in a later turn than the request's


@pytest.mark.parametrize("hook", [None, _accept_everything], ids=["at-once", "process_request"])
async def test_server_answers_in_order_messages_sent_with_the_request(
    hook: RequestHook | None,
) -> None:
    # A client may pipeline frames right behind its request, in the same write; they must
    # not wait for more data, and come in order.
    async with serve(echo, "127.0.0.1", 0, compression=None, process_request=hook) as server:
        peer = await RawPeer.open(server.port)
        frames = b"".join(encode_frame(TEXT, f"early {n}".encode(), mask=MASK) for n in range(3))
        peer.write(upgrade_request() + frames)
        reply = await peer.read_http_response()
        assert reply.status == 101
        for n in range(3):
            frame = await peer.read_frame()
            assert (frame.opcode, frame.payload) == (TEXT, f"early {n}".encode())
        peer.send_frame(TEXT, b"later")
        frame = await peer.read_frame()
        assert frame.payload == b"later"
        await peer.close()


async def test_server_delivers_a_close_frame_sent_with_the_request() -> None:
    received: list[str] = []

    async def record(ws: ServerConnection) -> None:
        async for message in ws:
            received.append(str(message))

    async with serve(record, "127.0.0.1", 0, compression=None) as server:
        peer = await RawPeer.open(server.port)
        peer.write(
            upgrade_request()
            + encode_frame(TEXT, b"last words", mask=MASK)
            + encode_frame(CLOSE, b"\x03\xe8", mask=MASK)
        )
        assert (await peer.read_http_response()).status == 101
        assert (await peer.read_close()).close_code == 1000
        await peer.close()
    assert received == ["last words"]


# --- refusing a handshake --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status", "header"),
    [
        pytest.param(upgrade_request(method="POST"), 405, ("allow", "GET"), id="not-GET"),
        pytest.param(upgrade_request(headers={"Upgrade": None}), 426, None, id="no-upgrade"),
        pytest.param(
            upgrade_request(headers={"Sec-WebSocket-Version": "8"}),
            426,
            ("sec-websocket-version", "13"),
            id="bad-version",
        ),
        pytest.param(upgrade_request(extra=[("X-Big", "a" * 20000)]), 431, None, id="big-head"),
        pytest.param(upgrade_request(headers={"Sec-WebSocket-Key": "short"}), 400, None, id="key"),
        pytest.param(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", 505, None, id="http-1.0"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, None, id="tls"),
    ],
)
async def test_server_refuses_a_malformed_handshake_with_a_readable_answer(
    request_bytes: bytes,
    status: int,
    header: tuple[str, str] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fullduplex")
    async with serve(echo, "127.0.0.1", 0) as server:
        peer = await RawPeer.open(server.port)
        peer.write(request_bytes)
        reply = await peer.read_http_response()
        assert reply.status == status
        assert reply.headers["content-type"].startswith("text/plain")
        assert reply.body.decode().startswith("Failed to open a WebSocket connection: ")
        if header is not None:
            assert reply.headers[header[0]] == header[1]
        await peer.read_until_eof()  # the server closes the connection
        await peer.close()
        # ... and goes on serving everyone else.
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("still there?")
            assert await ws.recv() == "still there?"
    assert "bad handshake request" in caplog.text


async def test_server_refuses_a_disallowed_origin_with_403() -> None:
    origins = ["https://good.example", None]
    async with serve(echo, "127.0.0.1", 0, origins=origins) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with pytest.raises(InvalidStatus) as caught:
            await connect(url, origin="https://evil.example")
        assert caught.value.response.status == 403
        assert b"origin 'https://evil.example' is not allowed" in caught.value.response.body
        async with connect(url, origin="https://good.example") as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
        async with connect(url) as ws:  # no Origin: a non-browser client, allowed by None
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_server_refusal_is_readable_when_the_client_sent_more_behind_its_request() -> None:
    # Bytes the server never reads make the kernel answer its close with a reset, which can
    # discard the refusal before the client reads it: the server half-closes and reads on.
    async with serve(echo, "127.0.0.1", 0, origins=["https://good.example"]) as server:
        peer = await RawPeer.open(server.port)
        request = upgrade_request(headers={"Origin": "https://evil.example"})
        peer.write(request + encode_frame(BINARY, b"x" * 200_000, mask=MASK))
        reply = await peer.read_http_response()
        assert reply.status == 403
        assert b"is not allowed" in reply.body
        assert await peer.read_until_eof() == b""  # the server's side is closed...
        peer.write(b"more")  # ... and it still reads, until the client closes
        # Nothing to wait for: the connection must still be there after a moment to read.
        await asyncio.sleep(0.05)
        (connection,) = server.connections
        await peer.close()
        await connection.wait_closed()
        assert not server.connections


async def test_server_drops_a_handshake_that_never_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fullduplex")
    async with serve(echo, "127.0.0.1", 0, open_timeout=0.2) as server:
        peer = await RawPeer.open(server.port)
        peer.write(upgrade_request()[:40])  # half a request, then silence (slowloris)
        started = time.monotonic()
        assert await peer.read_until_eof() == b""
        assert 0.1 < time.monotonic() - started < 2
        await peer.close()
        assert server.connections == frozenset()
    assert "opening handshake timed out" in caplog.text


# --- plain HTTP on the same port -------------------------------------------------------------


def _health(ws: ServerConnection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return Response(200, [("Content-Type", "text/plain")], b"OK\n")
    if request.path == "/missing":
        return Response(404, [("Content-Type", "text/plain")], b"nothing here\n")
    return None


async def test_server_answers_plain_http_requests_through_process_request() -> None:
    async with serve(echo, "127.0.0.1", 0, process_request=_health) as server:
        url = f"http://127.0.0.1:{server.port}/healthz"

        def get() -> tuple[int, bytes]:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()

        assert await asyncio.to_thread(get) == (200, b"OK\n")
        # WebSocket upgrades on other paths go through.
        async with connect(f"ws://127.0.0.1:{server.port}/chat") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"


async def test_server_answers_a_raw_http_get_through_an_async_process_request() -> None:
    async def health(ws: ServerConnection, request: Request) -> Response | None:
        await asyncio.sleep(0)  # a hook that suspends: answered in a later turn
        return _health(ws, request)

    async with serve(echo, "127.0.0.1", 0, process_request=health) as server:
        peer = await RawPeer.open(server.port)
        peer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = await peer.read_http_response()
        assert (reply.status, reply.body) == (200, b"OK\n")
        assert reply.headers["connection"] == "close"
        await peer.read_until_eof()
        await peer.close()
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{server.port}/missing")
        assert caught.value.response.status == 404
        assert caught.value.response.body == b"nothing here\n"


async def test_server_answers_500_when_process_request_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(ws: ServerConnection, request: Request) -> Response | None:
        raise RuntimeError("hook bug")

    async with serve(echo, "127.0.0.1", 0, process_request=broken) as server:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{server.port}/")
        assert caught.value.response.status == 500
    assert "process_request failed" in caplog.text


# --- protocol violations and failures --------------------------------------------------------


@pytest.mark.parametrize(
    ("send", "code"),
    [
        pytest.param(lambda peer: peer.send_frame(TEXT, b"hi", masked=False), 1002, id="unmasked"),
        pytest.param(lambda peer: peer.send_frame(TEXT, b"hi", rsv1=True), 1002, id="rsv1"),
        pytest.param(lambda peer: peer.send_frame(TEXT, b"hi", rsv2=True), 1002, id="rsv2"),
        pytest.param(lambda peer: peer.send_frame(CONTINUATION, b"x"), 1002, id="lone-cont"),
        pytest.param(lambda peer: peer.send_frame(0x3, b""), 1002, id="reserved-opcode"),
        pytest.param(lambda peer: peer.send_frame(PING, b"", fin=False), 1002, id="frag-ping"),
        pytest.param(lambda peer: peer.send_frame(TEXT, b"\xff\xfe"), 1007, id="bad-utf8"),
        pytest.param(lambda peer: peer.send_frame(BINARY, b"x" * 2000), 1009, id="too-big"),
        pytest.param(lambda peer: peer.send_frame(TEXT, b"fail me"), 1008, id="ws.fail"),
    ],
)
async def test_server_fails_a_protocol_violation_with_its_close_code(
    send: object, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fullduplex")
    handler_saw: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                if message == "fail me":
                    ws.fail(reason="not welcome")
                else:
                    await ws.send(message)
        except ConnectionClosed as exc:
            handler_saw.set_result(exc)
            raise

    async with serve(handler, "127.0.0.1", 0, max_size=1024) as server:
        peer = await RawPeer.connected(server.port)
        send(peer)  # type: ignore[operator]
        close = await peer.read_close()
        assert close.close_code == code
        peer.send_close(close.close_code)
        await peer.read_until_eof()
        await peer.close()
        exc = await handler_saw
        assert isinstance(exc, ConnectionClosedError)
        assert exc.code == code
        # The server goes on serving everyone else.
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("next")
            assert await ws.recv() == "next"
    assert "connection failed: " in caplog.text
    assert any(record.levelno == logging.DEBUG for record in caplog.records)


async def test_server_closes_with_1011_and_logs_when_the_handler_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def buggy(ws: ServerConnection) -> None:
        if await ws.recv() == "crash":
            raise ZeroDivisionError("handler bug")
        await ws.send("fine")

    async with serve(buggy, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with connect(url) as ws:
            await ws.send("crash")
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.code == 1011
        async with connect(url) as ws:
            await ws.send("hello")
            assert await ws.recv() == "fine"
    (record,) = [r for r in caplog.records if r.name == "fullduplex" and r.exc_info]
    assert record.getMessage() == "connection handler failed"
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


async def test_server_runs_a_handler_that_returns_a_future() -> None:
    def greet(ws: ServerConnection) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async with (
        serve(greet, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        with pytest.raises(ConnectionClosedOK) as caught:
            await ws.recv()
        assert caught.value.code == 1000


async def test_server_closes_with_1011_when_a_plain_function_handler_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(ws: ServerConnection) -> asyncio.Future[None]:
        raise ZeroDivisionError("handler bug")

    async with (
        serve(broken, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
        assert caught.value.code == 1011
    assert "connection handler failed" in caplog.text


async def test_server_enforces_max_size_against_a_fullduplex_client() -> None:
    async with (
        serve(echo, "127.0.0.1", 0, max_size=1024) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        await ws.send("x" * 1024)
        assert await ws.recv() == "x" * 1024
        await ws.send("x" * 1025)
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
        assert caught.value.code == 1009


# --- keepalive -------------------------------------------------------------------------------


async def test_server_keepalive_closes_with_1011_when_the_peer_stops_answering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fullduplex")
    handler_saw: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            handler_saw.set_result(exc)

    options = dict(ping_interval=0.1, ping_timeout=0.1, close_timeout=0.2)
    async with serve(handler, "127.0.0.1", 0, **options) as server:
        peer = await RawPeer.connected(server.port)  # then ignores everything
        started = time.monotonic()
        frames = []
        while (frame := await peer.read_frame()).opcode != CLOSE:
            frames.append(frame)
        assert [f.opcode for f in frames] == [PING]
        assert frame.close_code == 1011
        assert await peer.read_until_eof() == b""  # dropped after close_timeout
        exc = await handler_saw
        assert time.monotonic() - started < 2
        assert isinstance(exc, ConnectionClosedError)
        assert exc.code == 1011  # the peer sent no close frame; this is the code we sent
        await peer.close()
    assert "no pong within 0.1 s" in caplog.text


async def test_server_keepalive_keeps_an_answering_peer_connected() -> None:
    hold = Holder()
    # Pings come often; the timeout is long enough for a loaded machine to answer in time.
    options = dict(ping_interval=0.02, ping_timeout=2)
    async with serve(hold, "127.0.0.1", 0, **options) as server:
        peer = await RawPeer.connected(server.port)
        ws = await hold.next()
        for _ in range(5):  # several rounds: a second ping comes only after a pong
            frame = await peer.read_frame()
            assert frame.opcode == PING, frame
            peer.send_frame(PONG, frame.payload)
        peer.send_frame(TEXT, b"alive")
        assert await ws.recv() == "alive"
        await peer.close()


# --- backpressure on reading -----------------------------------------------------------------


async def test_server_stops_reading_while_its_message_queue_is_full() -> None:
    hold = Holder()
    write_limit = 16384
    options = dict(max_queue=4, compression=None)
    async with serve(hold, "127.0.0.1", 0, **options) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with connect(url, compression=None, write_limit=write_limit) as client:
            ws = await hold.next()  # it never reads until told below
            assert ws.transport is not None and client.transport is not None
            _shrink(ws.transport, socket.SO_RCVBUF)
            _shrink(client.transport, socket.SO_SNDBUF)
            sent = 0
            while True:  # until a send blocks: the server's queue and both kernels are full
                send = asyncio.ensure_future(client.send(bytes([sent % 256]) * 4096))
                done, _ = await asyncio.wait([send], timeout=0.2)
                if not done and client.transport.get_write_buffer_size() > write_limit // 4:
                    break
                await send  # not blocked, only slow
                sent += 1
                assert sent < 1000  # bounded: max_queue messages plus the kernel buffers
            assert not ws.transport.is_reading()
            received = [await ws.recv() for _ in range(sent)]
            await send
            received.append(await ws.recv())
            assert ws.transport.is_reading()
        assert [message[0] for message in received] == [i % 256 for i in range(sent + 1)]


async def test_server_closes_promptly_a_connection_whose_queue_is_full() -> None:
    # Reading is paused, so the client's close frame waits behind unread messages: closing
    # must read on rather than wait close_timeout and drop the connection.
    hold = Holder()
    options = dict(max_queue=2, compression=None, close_timeout=5)
    async with serve(hold, "127.0.0.1", 0, **options) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with connect(url, compression=None, write_limit=4096) as client:
            ws = await hold.next()
            assert ws.transport is not None and client.transport is not None
            _shrink(ws.transport, socket.SO_RCVBUF)
            _shrink(client.transport, socket.SO_SNDBUF)
            flood = asyncio.create_task(_send_until_closed(client, b"f" * 4096))
            while ws.transport.is_reading():  # bounded by the test's timeout
                await asyncio.sleep(0.01)
            started = time.monotonic()
            await ws.close(1000, "enough")
            assert time.monotonic() - started < 2
            await flood
            await client.wait_closed()
            assert (ws.close_code, client.close_code, client.close_reason) == (1000, 1000, "enough")
            # What was queued before the close is still there to read.
            assert [await ws.recv() for _ in range(2)] == [b"f" * 4096] * 2
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()


async def _send_until_closed(ws: ClientConnection, message: bytes) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.send(message)


def _shrink(transport: asyncio.BaseTransport, option: int) -> None:
    """Shrink a kernel socket buffer, so that backpressure shows after kilobytes, not MB."""
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, option, 4096)


# --- graceful shutdown -----------------------------------------------------------------------


async def test_server_shutdown_closes_every_connection_with_1001() -> None:
    server = await serve(echo, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.port}/"
    clients = [await connect(url) for _ in range(3)]
    server.close()
    await server.wait_closed()
    for client in clients:
        with pytest.raises(ConnectionClosedOK) as caught:
            await client.recv()
        assert caught.value.code == 1001
        await client.close()
    assert server.connections == frozenset()
    with pytest.raises(OSError):
        await connect(url)


async def test_server_shutdown_sends_the_code_and_reason_given_to_close() -> None:
    server = await serve(echo, "127.0.0.1", 0)
    client = await connect(f"ws://127.0.0.1:{server.port}/")
    with pytest.raises(ValueError):
        server.close(1006)  # reserved for reporting, never sent
    server.close(1012, "restarting")
    await server.wait_closed()
    with pytest.raises(ConnectionClosedError) as caught:
        await client.recv()
    assert (caught.value.code, caught.value.reason) == (1012, "restarting")
    await client.close()


async def test_server_shutdown_waits_for_handlers_to_finish() -> None:
    finished = []

    async def tidy(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedOK:
            await asyncio.sleep(0.05)  # a slow cleanup after the close, which shutdown awaits
            finished.append(ws.close_code)

    async with serve(tidy, "127.0.0.1", 0) as server:
        client = await connect(f"ws://127.0.0.1:{server.port}/")
    assert finished == [1001]
    await client.close()


async def test_server_shutdown_started_by_a_handler_does_not_wait_for_that_handler() -> None:
    stopped = asyncio.Event()

    async def stop_on_request(ws: ServerConnection) -> None:
        await ws.recv()
        ws.server.close()
        await ws.server.wait_closed()  # the shutdown must not wait for this very handler
        stopped.set()

    server = await serve(stop_on_request, "127.0.0.1", 0, close_timeout=5)
    other = await connect(f"ws://127.0.0.1:{server.port}/")
    client = await connect(f"ws://127.0.0.1:{server.port}/")
    started = time.monotonic()
    await client.send("stop")
    await asyncio.wait_for(stopped.wait(), 3)
    await server.wait_closed()
    assert time.monotonic() - started < 2
    for ws in (client, other):
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1001


async def test_server_shutdown_cancels_a_handler_that_ignores_closure() -> None:
    cancelled = asyncio.Event()

    async def stubborn(ws: ServerConnection) -> None:
        try:
            await asyncio.Event().wait()  # never ends by itself: only cancellation ends it
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with serve(stubborn, "127.0.0.1", 0, close_timeout=0.3) as server:
        client = await connect(f"ws://127.0.0.1:{server.port}/")
        started = time.monotonic()
    assert time.monotonic() - started < 1.5
    assert cancelled.is_set()
    with pytest.raises(ConnectionClosedOK):
        await client.recv()
    await client.close()


async def test_server_shutdown_is_bounded_when_a_peer_ignores_the_close() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0, close_timeout=0.3) as server:
        peer = await RawPeer.connected(server.port)  # never answers the close
        await hold.next()
        started = time.monotonic()
    assert time.monotonic() - started < 1.5
    assert (await peer.read_close()).close_code == 1001
    await peer.read_until_eof()
    await peer.close()


async def test_server_shutdown_drops_handshakes_in_progress_at_once() -> None:
    stalling = asyncio.Event()

    async def stalled(ws: ServerConnection, request: Request) -> Response | None:
        stalling.set()
        await asyncio.Event().wait()  # never answers: the shutdown must not wait for it
        return None

    options = dict(open_timeout=30, close_timeout=0.5, process_request=stalled)
    async with serve(echo, "127.0.0.1", 0, **options) as server:
        half = await RawPeer.open(server.port)
        half.write(upgrade_request()[:40])  # mid-request
        waiting = await RawPeer.open(server.port)
        waiting.write(upgrade_request())  # complete, stuck in process_request
        await stalling.wait()
        while len(server.connections) < 2:  # bounded by the test's timeout
            await asyncio.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 1.5
    for peer in (half, waiting):
        assert await peer.read_until_eof() == b""
        await peer.close()
