"""connect / ClientConnection over real sockets: TLS, Unix sockets, IPv6, the client's errors
(refused, non-101, timeouts), keepalive, and the messages that arrive before a close."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Iterator

import pytest

from fullduplex import (
    ClientConnection,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    ServerConnection,
    connect,
    serve,
)

from ..conftest import TestCA
from .peers import (
    CLOSE,
    PING,
    TEXT,
    RawFrame,
    RawPeer,
    close_payload,
    echo,
    encode_frame,
    has_ipv6_loopback,
    serve_raw,
)


async def test_client_exchanges_text_and_binary_messages() -> None:
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        assert isinstance(ws, ClientConnection)
        assert ws.response.status == 101
        await ws.send("text")
        await ws.send(b"binary")
        assert await ws.recv() == "text"
        assert await ws.recv() == b"binary"
    assert ws.close_code == 1000


async def test_client_can_be_awaited_instead_of_used_as_a_context_manager() -> None:
    server = await serve(echo, "127.0.0.1", 0)
    try:
        ws = await connect(f"ws://127.0.0.1:{server.port}/")
        await ws.send("plain await")
        assert await ws.recv() == "plain await"
        await ws.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_client_measures_ping_latency() -> None:
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        latency = await ws.ping()
        assert isinstance(latency, float) and 0 <= latency < 1


# --- transports: TLS, Unix sockets, IPv6 -----------------------------------------------------


async def test_client_connects_over_tls(tls: TestCA) -> None:
    server_context, client_context = tls.server_context, tls.client_context
    async with (
        serve(echo, "127.0.0.1", 0, ssl=server_context) as server,
        connect(f"wss://127.0.0.1:{server.port}/", ssl=client_context) as ws,
    ):
        assert ws.transport is not None
        assert ws.transport.get_extra_info("ssl_object") is not None
        await ws.send("secret")
        assert await ws.recv() == "secret"


async def test_client_refuses_a_server_certificate_it_does_not_trust(
    tls: TestCA,
) -> None:
    server_context = tls.server_context
    async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(f"wss://127.0.0.1:{server.port}/")  # the system's CAs only


async def test_client_refuses_an_ssl_context_for_a_ws_url(
    tls: TestCA,
) -> None:
    with pytest.raises(ValueError, match="wss://"):
        connect("ws://127.0.0.1:1/", ssl=tls.client_context)
    with pytest.raises(ValueError, match="scheme"):
        connect("http://127.0.0.1:1/")


@pytest.fixture
def unix_path() -> Iterator[str]:
    # Short, under /tmp: AF_UNIX paths are limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="fd-", dir="/tmp") as directory:
        yield os.path.join(directory, "ws.sock")


async def test_client_connects_over_a_unix_socket(unix_path: str) -> None:
    async with (
        serve(echo, unix_path=unix_path) as server,
        connect("ws://localhost/chat", unix_path=unix_path) as ws,
    ):
        await ws.send("over AF_UNIX")
        assert await ws.recv() == "over AF_UNIX"
        with pytest.raises(RuntimeError, match="no TCP socket"):
            _ = server.port


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
async def test_client_connects_over_ipv6() -> None:
    async def report(ws: ServerConnection) -> None:
        await ws.send(ws.request.headers["Host"])

    async with (
        serve(report, "::1", 0) as server,
        connect(f"ws://[::1]:{server.port}/") as ws,
    ):
        assert await ws.recv() == f"[::1]:{server.port}"
        assert ws.remote_address[0] == "::1"


# --- errors while opening --------------------------------------------------------------------


async def test_client_raises_os_error_when_the_connection_is_refused(free_port: int) -> None:
    with pytest.raises(OSError):
        await connect(f"ws://127.0.0.1:{free_port}/")


async def test_client_raises_invalid_status_for_a_non_101_answer() -> None:
    async with serve(echo, "127.0.0.1", 0, origins=["https://app.example"]) as server:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{server.port}/", origin="https://other.example")
    assert caught.value.response.status == 403
    assert caught.value.response.body.startswith(b"Failed to open a WebSocket connection")


async def test_client_raises_invalid_handshake_when_the_server_hangs_up() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(InvalidHandshake, match="closed during the opening handshake"):
            await connect(f"ws://127.0.0.1:{port}/")
    finally:
        server.close()
        await server.wait_closed()


async def test_client_raises_timeout_error_after_open_timeout_and_drops_the_socket(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client_closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        # The client drops the socket of the handshake it gave up on. Its transport closes
        # the socket right after calling connection_lost, so that call is over by the time
        # the end of the stream arrives here.
        with contextlib.suppress(ConnectionResetError):
            await reader.read()
        client_closed.set_result(None)
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await connect(f"ws://127.0.0.1:{port}/", open_timeout=0.2)
        assert time.monotonic() - started < 2
        await client_closed
        gc.collect()
    finally:
        server.close()
        await server.wait_closed()
    # The abandoned handshake's future must not complain when collected.
    assert "never retrieved" not in caplog.text


# --- receiving until the close ---------------------------------------------------------------


async def test_client_receives_every_message_sent_before_the_close() -> None:
    async def burst_then_close(peer: RawPeer) -> None:
        frames = [encode_frame(TEXT, f"m{i}".encode()) for i in range(3)]
        peer.write(b"".join([*frames, encode_frame(CLOSE, close_payload(1000, "done"))]))
        assert (await peer.read_close()).close_code == 1000
        peer.writer.close()

    async with (
        serve_raw(burst_then_close) as port,
        connect(f"ws://127.0.0.1:{port}/", compression=None) as ws,
    ):
        await ws.wait_closed()
        assert [await ws.recv() for _ in range(3)] == ["m0", "m1", "m2"]
        with pytest.raises(ConnectionClosedOK) as caught:
            await ws.recv()
        assert (caught.value.code, caught.value.reason) == (1000, "done")


async def test_client_receives_every_message_sent_before_the_server_shut_down() -> None:
    async def burst(ws: ServerConnection) -> None:
        for index in range(50):
            await ws.send(f"message {index}")

    async with (
        serve(burst, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        received = [message async for message in ws]
    assert received == [f"message {index}" for index in range(50)]


async def test_client_enforces_max_size() -> None:
    async def big(ws: ServerConnection) -> None:
        await ws.send(os.urandom(2048))
        await ws.wait_closed()

    async with (
        serve(big, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/", max_size=1024) as ws,
    ):
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
        assert caught.value.code == 1009


# --- keepalive -------------------------------------------------------------------------------


async def test_client_keepalive_closes_with_1011_when_the_server_stops_answering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fullduplex")
    received: list[RawFrame] = []

    async def record_and_ignore(peer: RawPeer) -> None:
        try:
            while True:
                received.append(await peer.read_frame())
        except asyncio.IncompleteReadError:
            await asyncio.Event().wait()

    options = dict(ping_interval=0.1, ping_timeout=0.1, close_timeout=0.2)
    async with serve_raw(record_and_ignore) as port:
        started = time.monotonic()
        async with connect(f"ws://127.0.0.1:{port}/", **options) as ws:
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
        assert time.monotonic() - started < 2
    assert [frame.opcode for frame in received] == [PING, CLOSE]
    assert received[1].close_code == 1011
    assert "no pong within 0.1 s" in caplog.text
