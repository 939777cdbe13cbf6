"""HTTPConnection (io.asyncio.http) and NativeExchange (io.asyncio.native_exchange) over real
sockets on 127.0.0.1: keep-alive, pipelining, request bodies and their limits, streamed
responses with backpressure, clients that go away, the idle timeout, and WebSocket upgrades on
a keep-alive connection."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from fullduplex import (
    HTTPDisconnect,
    Request,
    Response,
    Server,
    ServerConnection,
    connect,
    serve,
)
from fullduplex.io.asyncio.exchange import HTTPExchange
from fullduplex.io.asyncio.http import HTTPApplication, HTTPConnection
from fullduplex.io.asyncio.native_exchange import NativeExchange
from fullduplex.io.options import OptionOverrides

from ..conftest import TestCA
from .peers import TEXT, HTTPReply, RawPeer, upgrade_request

ExchangeHandler = Callable[[HTTPExchange], Awaitable[None]]


class App:
    """An `HTTPApplication` running one HTTP handler for every path and echoing WebSocket.

    It has no ``upgrade_options``: that method is optional (see `TunedApp`)."""

    def __init__(self, handler: ExchangeHandler) -> None:
        self.handler = handler
        self.exchanges: list[HTTPExchange] = []

    def refuse_upgrade(self, request: Request) -> Response | None:
        if request.path.startswith("/refused"):
            return Response(403, [("Content-Type", "text/plain")], b"no\n")
        return None

    async def serve_websocket(self, connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def serve_http(self, exchange: HTTPExchange) -> None:
        self.exchanges.append(exchange)
        await self.handler(exchange)


class TunedApp(App):
    """An `App` whose upgrades on ``/plain`` run without permessage-deflate."""

    def upgrade_options(self, request: Request) -> OptionOverrides:
        return {"compression": None} if request.path == "/plain" else {}


async def hello(exchange: HTTPExchange) -> None:
    await exchange.respond(200, [("Content-Type", "text/plain")], exchange.request.path.encode())


async def echo_body(exchange: HTTPExchange) -> None:
    body = await exchange.read_body(1000)
    await exchange.respond(200, [], body)


@asynccontextmanager
async def http_server(handler: ExchangeHandler, **options: object) -> AsyncIterator[Server]:
    async with serve(App(handler), "127.0.0.1", 0, **options) as server:  # type: ignore[arg-type]
        yield server


async def read_response(peer: RawPeer) -> HTTPReply:
    """A response, its body framed by Content-Length, chunked, or the end of the stream."""
    reply = await peer.read_http_response()
    if reply.headers.get("transfer-encoding") == "chunked":
        body = bytearray()
        while True:
            size = int((await peer.reader.readuntil(b"\r\n"))[:-2], 16)
            if size == 0:
                await peer.reader.readuntil(b"\r\n")
                break
            body += await peer.reader.readexactly(size)
            await peer.reader.readexactly(2)
        reply.body = bytes(body)
    elif "content-length" not in reply.headers and reply.status >= 200:
        reply.body = await peer.read_until_eof()
    return reply


def get(path: str, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: 127.0.0.1", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_an_application_is_an_http_application_with_or_without_upgrade_options() -> None:
    assert isinstance(App(hello), HTTPApplication)
    assert isinstance(TunedApp(hello), HTTPApplication)
    assert not isinstance(hello, HTTPApplication)


async def test_server_upgrades_with_its_own_options_for_an_app_without_upgrade_options() -> None:
    async with (
        serve(App(hello), "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/plain") as ws,
    ):
        await ws.send("hi")
        assert await ws.recv() == "hi"
        assert [type(e).__name__ for e in ws.protocol.extensions] == ["PerMessageDeflate"]


async def test_server_upgrades_with_the_options_upgrade_options_returns() -> None:
    async with serve(TunedApp(hello), "127.0.0.1", 0) as server:
        for path, extensions in [("/plain", []), ("/other", ["PerMessageDeflate"])]:
            async with connect(f"ws://127.0.0.1:{server.port}{path}") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                assert [type(e).__name__ for e in ws.protocol.extensions] == extensions


async def test_server_answers_several_requests_on_one_connection() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        for path in ("/a", "/b", "/c"):
            peer.write(get(path))
            reply = await read_response(peer)
            assert (reply.status, reply.body) == (200, path.encode())
        (connection,) = server._http_connections
        assert isinstance(connection, HTTPConnection)
        await peer.close()


async def test_server_answers_pipelined_requests_in_order() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        peer.write(b"".join(get(f"/{i}") for i in range(20)))
        for i in range(20):
            assert (await read_response(peer)).body == f"/{i}".encode()
        await peer.close()


async def test_server_closes_after_connection_close() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/a", "Connection: close") + get("/ignored"))
        reply = await read_response(peer)
        assert reply.headers["connection"] == "close"
        assert await peer.read_until_eof() == b""
        await peer.close()


async def test_server_closes_after_an_http_10_request() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/a", version="1.0"))
        reply = await read_response(peer)
        assert reply.body == b"/a"
        assert await peer.read_until_eof() == b""
        await peer.close()


async def test_server_keeps_an_http_10_connection_that_asks_for_it() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        for path in ("/a", "/b"):
            peer.write(get(path, "Connection: keep-alive", version="1.0"))
            reply = await read_response(peer)
            assert (reply.body, reply.headers["connection"]) == (path.encode(), "keep-alive")
        await peer.close()


async def test_server_reads_a_chunked_body_sent_in_odd_pieces() -> None:
    async with http_server(echo_body) as server:
        peer = await RawPeer.open(server.port)
        data = (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
        )
        for i in range(0, len(data), 7):
            peer.write(data[i : i + 7])
            await peer.writer.drain()
            await asyncio.sleep(0)
        reply = await read_response(peer)
        assert reply.body == b"abc0123456789abcdef"
        peer.write(get("/again"))  # still usable
        assert (await read_response(peer)).status == 200
        await peer.close()


async def test_server_answers_413_to_a_declared_length_beyond_the_limit() -> None:
    async with http_server(echo_body) as server:
        peer = await RawPeer.open(server.port)
        peer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        reply = await read_response(peer)
        assert reply.status == 413
        assert reply.headers["connection"] == "close"
        assert await peer.read_until_eof() == b""
        await peer.close()


async def test_server_answers_413_to_a_chunked_body_beyond_the_limit() -> None:
    async with http_server(echo_body) as server:
        peer = await RawPeer.open(server.port)
        chunk = b"%x\r\n%b\r\n" % (600, b"x" * 600)
        peer.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2)
        assert (await read_response(peer)).status == 413
        await peer.close()


async def test_server_answers_400_to_a_malformed_chunk_and_closes() -> None:
    async with http_server(echo_body) as server:
        peer = await RawPeer.open(server.port)
        peer.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n")
        reply = await read_response(peer)
        assert reply.status == 400
        assert await peer.read_until_eof() == b""
        await peer.close()


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/3\r\nHost: x\r\n\r\n", 505),
    ],
)
async def test_server_refuses_unframeable_requests(head: bytes, status: int) -> None:
    async with http_server(echo_body) as server:
        peer = await RawPeer.open(server.port)
        peer.write(head)
        assert (await read_response(peer)).status == status
        assert await peer.read_until_eof() == b""
        await peer.close()


async def test_server_sends_100_continue_when_the_body_is_read() -> None:
    async with http_server(echo_body) as server:
        peer = await RawPeer.open(server.port)
        peer.write(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert (await peer.read_http_response()).status == 100
        peer.write(b"body")
        assert (await read_response(peer)).body == b"body"
        await peer.close()


async def test_server_answers_500_for_a_failing_or_silent_handler() -> None:
    async def failing(exchange: HTTPExchange) -> None:
        if exchange.request.path == "/fail":
            raise RuntimeError("boom")

    async with http_server(failing) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/fail") + get("/silent"))
        assert (await read_response(peer)).status == 500
        assert (await read_response(peer)).status == 500
        await peer.close()


async def test_server_streams_a_chunked_response() -> None:
    async def stream(exchange: HTTPExchange) -> None:
        await exchange.start(200, [("Content-Type", "text/plain")])
        for part in (b"one ", b"", b"two ", b"three"):
            await exchange.write(part)
        await exchange.end()

    async with http_server(stream) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/") + get("/"))
        for _ in range(2):
            reply = await read_response(peer)
            assert reply.headers["transfer-encoding"] == "chunked"
            assert reply.body == b"one two three"
        await peer.close()


async def test_streamed_writes_wait_for_a_slow_reader() -> None:
    chunk = b"x" * 65536
    total_chunks = 400  # 25 MiB: more than the kernel's buffers hold
    written = 0
    largest_buffer = 0

    async def stream(exchange: HTTPExchange) -> None:
        nonlocal written, largest_buffer
        assert isinstance(exchange, NativeExchange)
        transport = exchange._connection.transport
        assert transport is not None
        await exchange.start(200, [("Content-Length", str(len(chunk) * total_chunks))])
        for _ in range(total_chunks):
            await exchange.write(chunk)
            written += 1
            largest_buffer = max(largest_buffer, transport.get_write_buffer_size())
        await exchange.end()

    async with http_server(stream, write_limit=65536) as server:
        peer = await RawPeer.open(server.port, rcvbuf=65536)
        peer.write(get("/"))
        # Wait until the writer stalls: the client reads nothing. No event says it stopped for
        # good (writing pauses and resumes while the kernel's buffers fill): 0.1 s without a
        # chunk written does.
        previous = -1
        while written != previous:
            previous = written
            await asyncio.sleep(0.1)
        assert written < total_chunks
        # The server buffers at most its write limit beyond the chunk being written.
        assert largest_buffer <= 2 * 65536
        reply = await read_response(peer)
        assert len(reply.body) == len(chunk) * total_chunks
        await peer.close()


async def test_held_request_notices_that_the_client_went_away() -> None:
    noticed = asyncio.Event()

    async def hold(exchange: HTTPExchange) -> None:
        await exchange.start(200, [])
        await exchange.wait_disconnected()
        assert exchange.is_disconnected
        with pytest.raises(HTTPDisconnect):
            await exchange.write(b"late")
        noticed.set()

    async with http_server(hold) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/poll"))
        await peer.read_http_response()
        await peer.close()
        await noticed.wait()


async def test_held_request_notices_a_reset() -> None:
    holding = asyncio.Event()
    noticed = asyncio.Event()

    async def hold(exchange: HTTPExchange) -> None:
        holding.set()
        await exchange.wait_disconnected()
        noticed.set()
        await exchange.respond(200, [], b"nobody reads this")

    async with http_server(hold) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/poll"))
        await holding.wait()
        peer.writer.transport.abort()
        await noticed.wait()
        await peer.close()


async def test_server_closes_an_idle_keep_alive_connection() -> None:
    async with http_server(hello, http_keepalive_timeout=0.2) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/"))
        await read_response(peer)
        assert await peer.read_until_eof() == b""
        await peer.close()


async def test_server_stops_reading_pipelined_requests_beyond_its_bound() -> None:
    release = asyncio.Event()

    async def held(exchange: HTTPExchange) -> None:
        await release.wait()
        await exchange.respond(200, [], b"")

    async with http_server(held) as server:
        peer = await RawPeer.open(server.port)
        requests = get("/") * 20000  # about 700 KiB of pipelined requests
        peer.write(requests)
        # Polled, bounded by the test's timeout: reading pauses once the buffer is full.
        while not any(c._reading_paused for c in server._http_connections):
            await asyncio.sleep(0.01)
        (connection,) = server._http_connections
        assert connection.parser.buffered_bytes <= 64 * 1024 + 256 * 1024
        release.set()
        for _ in range(20000):
            assert (await read_response(peer)).status == 200
        await peer.close()


async def test_server_upgrades_a_keep_alive_connection_to_websocket() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/first"))
        assert (await read_response(peer)).body == b"/first"
        reply = await peer.handshake("/ws")
        assert reply.status == 101
        peer.send_frame(TEXT, b"hi")
        frame = await peer.read_frame()
        assert (frame.opcode, frame.payload) == (TEXT, b"hi")
        assert not server._http_connections
        assert len(server.connections) == 1
        await peer.close()


async def test_server_upgrades_the_first_request_with_frames_right_behind_it() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        peer.write(upgrade_request("/ws"))
        peer.send_frame(TEXT, b"early")
        assert (await peer.read_http_response()).status == 101
        frame = await peer.read_frame()
        assert (frame.opcode, frame.payload) == (TEXT, b"early")
        await peer.close()


async def test_server_answers_a_refused_upgrade_over_http() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        reply = await peer.handshake("/refused")
        assert (reply.status, reply.body) == (403, b"no\n")
        assert await peer.read_until_eof() == b""
        await peer.close()


async def test_server_refuses_an_http_10_upgrade() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        peer.write(upgrade_request("/ws").replace(b"HTTP/1.1", b"HTTP/1.0"))
        assert (await peer.read_http_response()).status == 505
        await peer.close()


async def test_server_shutdown_closes_idle_http_connections() -> None:
    async with http_server(hello) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/"))
        await read_response(peer)
        server.close()
        assert await peer.read_until_eof() == b""
        await server.wait_closed()
        await peer.close()


async def test_server_without_an_application_answers_426_as_before() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close()

    async with serve(handler, "127.0.0.1", 0) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/"))
        assert (await peer.read_http_response()).status == 426
        assert not server._http_connections
        await peer.close()


async def test_server_shutdown_ends_a_held_request() -> None:
    held = asyncio.Event()

    async def hold(exchange: HTTPExchange) -> None:
        await exchange.start(200, [])
        held.set()
        await exchange.wait_disconnected()

    async with http_server(hold) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/poll"))
        await held.wait()
        started = asyncio.get_running_loop().time()
        server.close()
        await server.wait_closed()
        assert asyncio.get_running_loop().time() - started < 1
        reply = await read_response(peer)
        assert (reply.status, reply.body) == (200, b"")
        await peer.close()


async def test_server_times_out_a_body_that_stops_arriving() -> None:
    async with http_server(echo_body, open_timeout=0.2) as server:
        peer = await RawPeer.open(server.port)
        peer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        reply = await read_response(peer)
        assert reply.status == 408
        assert await peer.read_until_eof() == b""
        await peer.close()


async def test_server_serves_http_and_upgrades_over_tls(tls: TestCA) -> None:
    async with http_server(hello, ssl=tls.server_context) as server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=tls.client_context, server_hostname="127.0.0.1"
        )
        peer = RawPeer(reader, writer, masks=True)
        peer.write(get("/secure"))
        assert (await read_response(peer)).body == b"/secure"
        assert (await peer.handshake("/ws")).status == 101
        peer.send_frame(TEXT, b"tls")
        assert (await peer.read_frame()).payload == b"tls"
        await peer.close()


async def test_held_request_over_tls_notices_the_client_leaving(
    tls: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    noticed = asyncio.Event()

    async def hold(exchange: HTTPExchange) -> None:
        await exchange.start(200, [])
        await exchange.wait_disconnected()
        noticed.set()

    async with http_server(hold, ssl=tls.server_context) as server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=tls.client_context, server_hostname="127.0.0.1"
        )
        peer = RawPeer(reader, writer, masks=True)
        peer.write(get("/poll"))
        await peer.read_http_response()
        await peer.close()
        await noticed.wait()
    assert "has no effect when using ssl" not in caplog.text


def test_server_serves_http_and_upgrades_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        async with asyncio.timeout(10), http_server(hello) as server:
            peer = await RawPeer.open(server.port)
            peer.write(get("/a") + get("/b"))
            assert (await read_response(peer)).body == b"/a"
            assert (await read_response(peer)).body == b"/b"
            assert (await peer.handshake("/ws")).status == 101
            peer.send_frame(TEXT, b"uv")
            assert (await peer.read_frame()).payload == b"uv"
            await peer.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_handler_takes_the_stream_over_after_a_head() -> None:
    async def hixie_like(exchange: HTTPExchange) -> None:
        assert isinstance(exchange, NativeExchange)
        reader, writer = await exchange.take_over(
            101, [("Upgrade", "WebSocket"), ("Connection", "Upgrade")]
        )
        key3 = await reader.readexactly(8)
        writer.write(key3[::-1])
        while data := await reader.read(100):
            writer.write(data.upper())
            await writer.drain()

    async with http_server(hixie_like) as server:
        peer = await RawPeer.open(server.port)
        # hixie-76: no Sec-WebSocket-Key, so this is plain HTTP; 8 bytes follow the head.
        peer.write(
            get("/", "Upgrade: WebSocket", "Connection: Upgrade", "Sec-WebSocket-Key1: 1 2")
            + b"abcd"
        )
        reply = await peer.read_http_response()
        assert (reply.status, reply.headers["upgrade"]) == (101, "WebSocket")
        assert "content-length" not in reply.headers
        peer.write(b"efgh")
        assert await peer.reader.readexactly(8) == b"hgfedcba"
        peer.write(b"more")
        assert await peer.reader.readexactly(4) == b"MORE"
        peer.writer.write_eof()
        assert await peer.read_until_eof() == b""
        assert not server._http_connections
        await peer.close()


async def test_refusal_reaches_a_client_still_sending_its_body() -> None:
    async with http_server(echo_body) as server:
        peer = await RawPeer.open(server.port)
        peer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
        peer.write(b"x" * 1_000_000)  # unread by the server: a plain close would reset
        reply = await read_response(peer)
        assert (reply.status, reply.headers["connection"]) == (413, "close")
        # The server half-closed and drops the rest; it closes once the client does.
        assert await peer.read_until_eof() == b""
        (connection,) = server._http_connections
        assert connection._is_lingering
        await peer.close()


async def test_closed_connections_are_not_kept_by_timers() -> None:
    app = App(hello)
    async with serve(app, "127.0.0.1", 0) as server:  # type: ignore[arg-type]
        for _ in range(3):
            peer = await RawPeer.open(server.port)
            peer.write(get("/", "Connection: close"))
            await read_response(peer)
            assert await peer.read_until_eof() == b""
            await peer.close()
        while server._http_connections:  # checked each loop turn: each one's connection_lost
            await asyncio.sleep(0)
        app.exchanges.clear()
        gc.collect()
        alive = [
            o for o in gc.get_objects() if isinstance(o, HTTPConnection) and o.server is server
        ]
        assert alive == []


async def test_process_request_sees_the_upgrades_an_application_accepted() -> None:
    seen: list[str] = []

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        seen.append(request.path)
        return Response(401, [], b"") if request.path == "/ws?token=bad" else None

    async with http_server(hello, process_request=process_request) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/plain"))
        assert (await read_response(peer)).body == b"/plain"
        assert (await peer.handshake("/ws?token=bad")).status == 401
        await peer.close()
        peer = await RawPeer.open(server.port)
        assert (await peer.handshake("/ws?token=good")).status == 101
        await peer.close()
    assert seen == ["/ws?token=bad", "/ws?token=good"]


class NowaitApp(App):
    """An `App` that answers ``/now...`` synchronously (``serve_http_nowait``), holds
    ``/held`` until `release` is called, and leaves every other path to `serve_http`."""

    def __init__(self, handler: ExchangeHandler) -> None:
        super().__init__(handler)
        self.held: list[NativeExchange] = []
        self.tasks: list[asyncio.Task[object] | None] = []

    def serve_http_nowait(self, exchange: NativeExchange) -> bool:
        path = exchange.request.path
        if path.startswith("/now"):
            body = exchange.body_nowait(1000)
            if body is None:
                return False  # still arriving: serve_http reads it
            exchange.respond_nowait(200, [], path.encode() + body)
            return True
        if path == "/held":
            self.held.append(exchange)
            return True
        return False

    async def serve_http(self, exchange: HTTPExchange) -> None:
        self.tasks.append(asyncio.current_task())
        await super().serve_http(exchange)

    def release(self, body: bytes) -> None:
        self.held.pop(0).respond_nowait(200, [], body)


async def held_request(app: NowaitApp, port: int) -> RawPeer:
    """A client whose request ``/held`` the application holds."""
    peer = await RawPeer.open(port)
    peer.write(get("/held"))
    while not app.held:  # polled, bounded by the test's timeout
        await asyncio.sleep(0.01)
    return peer


async def test_nowait_application_answers_pipelined_requests_in_order() -> None:
    # Hundreds of pipelined requests answered without a coroutine: each starts from the loop
    # once the one before it was answered, never nested inside it.
    app = NowaitApp(hello)
    async with serve(app, "127.0.0.1", 0) as server:
        peer = await RawPeer.open(server.port)
        peer.write(b"".join(get(f"/now{i}") for i in range(500)))
        for i in range(500):
            assert (await read_response(peer)).body == f"/now{i}".encode()
        await peer.close()
    assert app.tasks == []


async def test_nowait_application_leaves_a_body_still_arriving_to_serve_http() -> None:
    app = NowaitApp(echo_body)
    async with serve(app, "127.0.0.1", 0) as server:
        peer = await RawPeer.open(server.port)
        peer.write(b"POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
        while not app.tasks:  # polled, bounded by the test's timeout
            await asyncio.sleep(0.01)
        peer.write(b"cd")
        assert (await read_response(peer)).body == b"abcd"
        peer.write(b"POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nef")
        assert (await read_response(peer)).body == b"/nowef"
        await peer.close()
    assert len(app.tasks) == 1 and app.tasks[0] is not None


async def test_nowait_answers_wait_for_a_client_that_reads_slowly() -> None:
    # Pipelined requests whose answers go out without waiting: the server parses the next one
    # only once the client has taken most of what it was sent.
    big = b"x" * (1 << 20)
    answered = 0
    largest_buffer = 0

    class BigApp(NowaitApp):
        def serve_http_nowait(self, exchange: NativeExchange) -> bool:
            nonlocal answered, largest_buffer
            transport = exchange._connection.transport
            assert transport is not None
            exchange.respond_nowait(200, [], big)
            answered += 1
            largest_buffer = max(largest_buffer, transport.get_write_buffer_size())
            return True

    async with serve(BigApp(hello), "127.0.0.1", 0, write_limit=65536) as server:
        peer = await RawPeer.open(server.port, rcvbuf=65536)
        peer.write(b"".join(get(f"/{i}") for i in range(40)))  # 40 MiB of answers
        previous = -1
        while answered != previous:  # stalled for 0.1 s: the client reads nothing
            previous = answered
            await asyncio.sleep(0.1)
        assert answered < 40
        assert largest_buffer <= 3 * len(big)
        for _ in range(40):
            assert (await read_response(peer)).body == big
        assert answered == 40
        await peer.close()


async def test_held_nowait_request_answered_later_lets_the_next_one_through() -> None:
    app = NowaitApp(hello)
    async with serve(app, "127.0.0.1", 0) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/held") + get("/now-after"))
        while not app.held:
            await asyncio.sleep(0.01)
        app.release(b"late")
        assert (await read_response(peer)).body == b"late"
        assert (await read_response(peer)).body == b"/now-after"
        await peer.close()


async def test_held_nowait_request_is_dropped_when_its_client_half_closes() -> None:
    app = NowaitApp(hello)
    async with serve(app, "127.0.0.1", 0) as server:
        peer = await held_request(app, server.port)
        peer.writer.write_eof()
        # Nothing will answer the held request: the server closes the connection.
        assert await peer.reader.read() == b""
        assert app.held[0].is_disconnected
        await peer.close()


async def test_server_shutdown_closes_a_connection_holding_a_nowait_request() -> None:
    app = NowaitApp(hello)
    async with serve(app, "127.0.0.1", 0) as server:
        peer = await held_request(app, server.port)
        started = asyncio.get_running_loop().time()
        server.close()
        await server.wait_closed()
        assert asyncio.get_running_loop().time() - started < 1
        assert await peer.reader.read() == b""
        await peer.close()


async def test_held_request_is_called_back_once_its_client_went_away() -> None:
    called: list[str] = []
    noticed = asyncio.Event()

    async def hold(exchange: HTTPExchange) -> None:
        forget = exchange.call_on_disconnect(lambda: called.append("forgotten"))
        exchange.call_on_disconnect(noticed.set)
        forget()
        await noticed.wait()
        # Registered after the client left: called all the same.
        exchange.call_on_disconnect(lambda: called.append("late"))

    async with http_server(hold) as server:
        peer = await RawPeer.open(server.port)
        peer.write(get("/poll"))
        while not server._http_connections or not any(
            c._exchange is not None for c in server._http_connections
        ):
            await asyncio.sleep(0.01)
        await peer.close()
        await noticed.wait()
        while not called:
            await asyncio.sleep(0.01)
        assert called == ["late"]
