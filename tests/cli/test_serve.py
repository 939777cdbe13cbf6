"""`fullduplex serve` in a subprocess: its handlers, static files on the same port, TLS,
origins, subprotocols, limits, its log lines, and how it stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import websockets.asyncio.client
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame, Opcode
from websockets.typing import ExtensionParameter

import fullduplex

from ..conftest import TestCA
from .support import TIMEOUT_S, read_banner, run_cli, started_cli

LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d 127\.0\.0\.1:\d+ (?P<path>\S+) "
    r"subprotocol=(?P<subprotocol>\S+) code=(?P<code>\S+) duration=\d+\.\d\ds$"
)


async def log_lines(
    process: asyncio.subprocess.Process, count: int, others: list[str] | None = None
) -> list[re.Match[str]]:
    """The next ``count`` per-connection log lines on the server's stderr; the lines in
    between go to ``others``."""
    assert process.stderr is not None
    found: list[re.Match[str]] = []
    while len(found) < count:
        line = (await asyncio.wait_for(process.stderr.readline(), 10)).decode().rstrip("\n")
        match = LOG_LINE.match(line)
        if match:
            found.append(match)
        elif others is not None:
            others.append(line)
    return found


async def stderr_line_containing(process: asyncio.subprocess.Process, text: str) -> str:
    """Read the server's stderr up to the first line that contains ``text``; return that line."""
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT_S)).decode()
        assert line, f"stderr ended before a line with {text!r}"
        if text in line:
            return line


async def stop(process: asyncio.subprocess.Process, signum: int = signal.SIGTERM) -> int:
    process.send_signal(signum)
    return await asyncio.wait_for(process.wait(), 10)


async def test_serve_echoes_and_logs_each_connection() -> None:
    async with started_cli("serve", "--echo", "--port", "0", "--subprotocol", "chat") as server:
        port = await read_banner(server)
        async with fullduplex.connect(f"ws://127.0.0.1:{port}/room/1", subprotocols=["chat"]) as ws:
            await ws.send("text ☃")
            assert await ws.recv() == "text ☃"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
        [log] = await log_lines(server, 1)
        assert log.group("path", "subprotocol", "code") == ("/room/1", "chat", "1000")
        assert await stop(server) == 0


async def test_serve_echoes_by_default_for_the_connect_command() -> None:
    async with started_cli("serve", "--port", "0") as server:
        port = await read_banner(server)
        result = await run_cli("connect", f"ws://127.0.0.1:{port}/", "-n", "2", stdin=b"a\nb\n")
        assert (result.status, result.stdout) == (0, b"a\nb\n")
        assert await stop(server) == 0


async def test_serve_broadcast_sends_each_message_to_every_client() -> None:
    async with started_cli("serve", "--broadcast", "--port", "0") as server:
        url = f"ws://127.0.0.1:{await read_banner(server)}/"
        async with fullduplex.connect(url) as alice, websockets.asyncio.client.connect(url) as bob:
            await alice.send("from alice")
            assert await alice.recv() == "from alice"
            assert await bob.recv() == "from alice"
            await bob.send(b"from bob")
            assert await alice.recv() == b"from bob"
            assert await bob.recv() == b"from bob"
        assert await stop(server) == 0


async def test_serve_answers_plain_http_with_static_files_on_the_same_port(
    tmp_path: Path,
) -> None:
    (tmp_path / "index.html").write_text("<h1>orders</h1>")
    (tmp_path / "app.js").write_text("console.log('☃')")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("nested")
    (tmp_path.parent / "secret.txt").write_text("outside the root")
    async with started_cli("serve", "--echo", "--static", str(tmp_path), "--port", "0") as server:
        base = f"http://127.0.0.1:{await read_banner(server)}"

        def fetch(path: str, method: str = "GET") -> tuple[int, str, bytes]:
            request = urllib.request.Request(base + path, method=method)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, response.headers["Content-Type"], response.read()
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, error.headers["Content-Type"], error.read()

        assert await asyncio.to_thread(fetch, "/") == (
            200,
            "text/html; charset=utf-8",
            b"<h1>orders</h1>",
        )
        status, content_type, body = await asyncio.to_thread(fetch, "/app.js?v=2")
        assert (status, body.decode()) == (200, "console.log('☃')")
        assert "javascript" in content_type
        assert (await asyncio.to_thread(fetch, "/sub"))[2] == b"nested"  # after a 301 to /sub/
        assert (await asyncio.to_thread(fetch, "/../secret.txt"))[0] == 404
        assert (await asyncio.to_thread(fetch, "/%2e%2e/secret.txt"))[0] == 404
        assert (await asyncio.to_thread(fetch, "/missing"))[0] == 404
        assert (await asyncio.to_thread(fetch, "/", "HEAD"))[:2] == (
            200,
            "text/html; charset=utf-8",
        )
        assert (await asyncio.to_thread(fetch, "/", "DELETE"))[0] == 405
        async with fullduplex.connect(base.replace("http", "ws") + "/") as ws:
            await ws.send("still a WebSocket server")
            assert await ws.recv() == "still a WebSocket server"
        assert await stop(server) == 0


async def test_serve_keeps_serving_while_a_static_file_read_blocks(tmp_path: Path) -> None:
    # A FIFO: the server's read of it blocks until this test writes, a file read that takes
    # as long as the test wants. WebSocket traffic must go on meanwhile.
    fifo = tmp_path / "slow.txt"
    os.mkfifo(fifo)
    async with started_cli("serve", "--echo", "--static", str(tmp_path), "--port", "0") as server:
        base = f"http://127.0.0.1:{await read_banner(server)}"

        def fetch() -> bytes:
            with urllib.request.urlopen(base + "/slow.txt", timeout=TIMEOUT_S) as response:
                body: bytes = response.read()
                return body

        download = asyncio.ensure_future(asyncio.to_thread(fetch))
        # Opening the FIFO for writing returns once the server opened it for reading: from
        # then on its read waits for the bytes below.
        writer = await asyncio.wait_for(asyncio.to_thread(os.open, fifo, os.O_WRONLY), TIMEOUT_S)
        try:
            async with fullduplex.connect(base.replace("http", "ws") + "/") as ws:
                for _ in range(3):
                    await ws.send("not blocked")
                    assert await asyncio.wait_for(ws.recv(), TIMEOUT_S) == "not blocked"
            assert not download.done()
        finally:
            os.write(writer, b"at last")
            os.close(writer)
        assert await download == b"at last"
        assert await stop(server) == 0


async def test_serve_runs_the_app_named_module_callable(tmp_path: Path) -> None:
    (tmp_path / "shout.py").write_text(
        "async def handler(ws):\n"
        "    async for message in ws:\n"
        "        await ws.send(message.upper())\n"
    )
    async with started_cli(
        "serve", "--app", "shout:handler", "--port", "0", cwd=str(tmp_path)
    ) as server:
        port = await read_banner(server)
        result = await run_cli("connect", f"ws://127.0.0.1:{port}/", "--once", stdin=b"order\n")
        assert result.stdout == b"ORDER\n"
        assert await stop(server) == 0


async def test_serve_closes_with_1011_when_the_app_fails(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("async def handler(ws):\n    raise RuntimeError('bug')\n")
    async with started_cli(
        "serve", "--app", "broken:handler", "--port", "0", cwd=str(tmp_path)
    ) as server:
        port = await read_banner(server)
        result = await run_cli("connect", f"ws://127.0.0.1:{port}/", "--linger", "inf")
        assert result.status == 1
        assert "1011" in result.stderr
        before: list[str] = []
        [log] = await log_lines(server, 1, before)
        assert log.group("code") == "1011"
        assert "RuntimeError: bug" in before
        assert await stop(server) == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nomodule_here:handler", "cannot import nomodule_here"),
        ("json:no_such_thing", "json has no no_such_thing"),
        ("json", "write it as module:callable"),
        ("json:__doc__", "is not callable"),
    ],
)
async def test_serve_exits_2_when_the_app_cannot_be_loaded(spec: str, message: str) -> None:
    result = await run_cli("serve", "--app", spec, "--port", "0")
    assert result.status == 2
    assert message in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_serve_closes_every_connection_with_1001_when_stopped(signum: int) -> None:
    async with started_cli("serve", "--echo", "--port", "0") as server:
        url = f"ws://127.0.0.1:{await read_banner(server)}/"
        async with fullduplex.connect(url) as first, fullduplex.connect(url) as second:
            await first.send("x")
            await first.recv()
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await stop(server, signum) == 0
            assert loop.time() - started < 7  # twice the close timeout, at worst
            for ws in (first, second):
                await ws.wait_closed()
                assert ws.close_code == 1001
        assert server.stderr is not None
        output = (await server.stderr.read()).decode()
        assert "stopping: closing 2 connections with 1001" in output
        assert "Traceback" not in output


async def test_serve_exits_1_when_the_port_is_taken() -> None:
    async with started_cli("serve", "--port", "0") as first:
        port = await read_banner(first)
        result = await run_cli("serve", "--port", str(port))
        assert result.status == 1
        assert result.stderr == (
            f"fullduplex serve: cannot listen on 127.0.0.1:{port}: address already in use\n"
        )
        assert await stop(first) == 0


async def test_serve_over_tls(tls: TestCA) -> None:
    args = ["--tls-cert", str(tls.cert_pem), "--tls-key", str(tls.key_pem), "--port", "0"]
    async with started_cli("serve", "--echo", *args) as server:
        assert server.stderr is not None
        banner = (await server.stderr.readline()).decode()
        port = re.search(r"wss://127\.0\.0\.1:(\d+)/", banner)
        assert port, banner
        context = ssl.create_default_context(cafile=str(tls.ca_pem))
        async with fullduplex.connect(f"wss://127.0.0.1:{port.group(1)}/", ssl=context) as ws:
            await ws.send("over TLS")
            assert await ws.recv() == "over TLS"
        assert await stop(server) == 0


async def test_serve_exits_2_on_unreadable_tls_files(tmp_path: Path) -> None:
    result = await run_cli("serve", "--tls-cert", str(tmp_path / "none.pem"), "--port", "0")
    assert result.status == 2
    assert "cannot load the TLS certificate" in result.stderr


async def test_serve_refuses_other_origins_and_enforces_max_size() -> None:
    args = ["--origins", "https://a.example,https://b.example", "--max-size", "1K"]
    async with started_cli("serve", "--echo", "--port", "0", *args) as server:
        url = f"ws://127.0.0.1:{await read_banner(server)}/"
        with pytest.raises(fullduplex.InvalidStatus) as refused:
            await fullduplex.connect(url, origin="https://evil.example")
        assert refused.value.response.status == 403
        async with fullduplex.connect(url, origin="https://b.example") as ws:
            await ws.send("fits")
            assert await ws.recv() == "fits"
        async with fullduplex.connect(url) as ws:  # no Origin: not a browser
            await ws.send("x" * 2000)
            with pytest.raises(fullduplex.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.code == 1009
        assert await stop(server) == 0


async def test_serve_negotiates_the_subprotocol_it_supports() -> None:
    args = ["--subprotocol", "orders.v2", "--subprotocol", "orders.v1"]
    async with started_cli("serve", "--echo", "--port", "0", *args) as server:
        url = f"ws://127.0.0.1:{await read_banner(server)}/"
        async with fullduplex.connect(url, subprotocols=["orders.v1", "other"]) as ws:
            assert ws.subprotocol == "orders.v1"
        [log] = await log_lines(server, 1)
        assert log.group("subprotocol") == "orders.v1"
        assert await stop(server) == 0


STUBBORN_APP = """\
import asyncio

async def handler(ws):
    while True:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            pass  # a handler that will not end
"""


@contextlib.asynccontextmanager
async def stubborn_server(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`fullduplex serve` running STUBBORN_APP; yields the process and its URL."""
    (tmp_path / "stubborn.py").write_text(STUBBORN_APP)
    async with started_cli(
        "serve", "--app", "stubborn:handler", "--port", "0", cwd=str(tmp_path)
    ) as server:
        yield server, f"ws://127.0.0.1:{await read_banner(server)}/"


async def test_serve_exits_within_its_deadline_whatever_the_handlers_do(tmp_path: Path) -> None:
    async with stubborn_server(tmp_path) as (server, url):
        async with fullduplex.connect(url) as ws:
            loop = asyncio.get_running_loop()
            started = loop.time()
            server.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.wait(), 15) == 130
            assert 6 < loop.time() - started < 12  # 7 s, the documented bound
            await ws.wait_closed()
            assert ws.close_code == 1001
        assert server.stderr is not None
        assert b"still stopping after 7 s; exiting" in await server.stderr.read()


async def test_serve_exits_at_once_on_a_second_signal(tmp_path: Path) -> None:
    async with stubborn_server(tmp_path) as (server, url), fullduplex.connect(url):
        server.send_signal(signal.SIGINT)
        await stderr_line_containing(server, "stopping: closing 1 connections")
        server.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(server.wait(), 3) == 130


class RecordingDeflate(ClientPerMessageDeflateFactory):
    """websockets' permessage-deflate, noting whether each message received was compressed."""

    def __init__(self) -> None:
        super().__init__(client_max_window_bits=True)
        self.compressed: list[bool] = []

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> PerMessageDeflate:
        extension = super().process_response_params(params, accepted_extensions)
        decode = extension.decode

        def recording_decode(frame: Frame, *, max_size: int | None = None) -> Frame:
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                self.compressed.append(frame.rsv1)
            return decode(frame, max_size=max_size)

        extension.decode = recording_decode  # type: ignore[method-assign]
        return extension


@pytest.mark.parametrize(("threshold", "compressed"), [([], [False, True]), (["0"], [True, True])])
async def test_serve_compresses_messages_from_the_compression_threshold(
    threshold: list[str], compressed: list[bool]
) -> None:
    args = [f"--compression-threshold={value}" for value in threshold]
    async with started_cli("serve", "--echo", "--port", "0", *args) as server:
        url = f"ws://127.0.0.1:{await read_banner(server)}/"
        deflate = RecordingDeflate()
        async with websockets.asyncio.client.connect(url, extensions=[deflate]) as ws:
            for message in ["short", "long enough to compress; " * 50]:
                await ws.send(message)
                assert await ws.recv() == message
        assert deflate.compressed == compressed
        assert await stop(server) == 0
