"""The asyncio Socket.IO client against our server (examples/socketio_test_server.py, in this
process) and against the reference Node server (socket.io 4.8, from the suites' set-up)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import sys
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest

import fullduplex
from fullduplex.realtime.socketio import AckTimeout, AsyncClient, ConnectRefused, Server, Socket

from .support import EXAMPLE, SOCKETIO_NODE_DIR


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("socketio_test_server", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


@contextlib.asynccontextmanager
async def our_server() -> AsyncIterator[tuple[str, Server]]:
    # A heartbeat a loaded machine cannot miss: the suites test the 300 ms one.
    app, endpoints, sio = example.build(ping_interval_ms=2000, ping_timeout_ms=10000)
    async with fullduplex.serve(app, "127.0.0.1", 0) as server:
        try:
            yield f"http://127.0.0.1:{server.port}", sio
        finally:
            await sio.close()
            for endpoint in endpoints:
                await endpoint.aclose()


@contextlib.asynccontextmanager
async def reference_server(port: int) -> AsyncIterator[str]:
    script = SOCKETIO_NODE_DIR / "node" / "server.mjs"
    node = shutil.which("node")
    if node is None or not (SOCKETIO_NODE_DIR / "node" / "node_modules" / "socket.io").exists():
        pytest.skip(f"the reference server is not installed in {script.parent}; run setup.sh")
    process = await asyncio.create_subprocess_exec(
        node,
        str(script),
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        # It prints the port it was given once it listens (port 0 would print 0).
        await asyncio.wait_for(process.stdout.readline(), 15)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


class Collector:
    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def __call__(self, *args: Any) -> None:
        self.items.put_nowait(args)

    async def next(self) -> tuple[Any, ...]:
        return await asyncio.wait_for(self.items.get(), 5)


async def exercise(url: str) -> None:
    """What both servers answer the same way: auth, events, acks, binary, namespaces."""
    auth, custom_auth, back = Collector(), Collector(), Collector()
    client = AsyncClient(url, namespaces=("/", "/custom"), auth={"token": "abc"})
    client.on("auth", auth)
    client.on("auth", custom_auth, namespace="/custom")
    client.on("message-back", back)
    async with client:
        assert await auth.next() == ({"token": "abc"},)
        assert await custom_auth.next() == ({"token": "abc"},)
        await client.emit("message", 1, "2", {"3": [True]})
        assert await back.next() == (1, "2", {"3": [True]})
        assert await client.call("message-with-ack", 1, "2") == (1, "2")
        assert (
            await client.call("message-with-ack", b"\x01\x02", namespace="/custom") == b"\x01\x02"
        )
        assert await client.call("message-with-ack") is None


async def test_client_against_our_server() -> None:
    async with our_server() as (url, _):
        await exercise(url)


async def test_client_against_the_reference_server(free_port: int) -> None:
    async with reference_server(free_port) as url:
        await exercise(url)


async def test_client_answers_server_calls_and_reports_refusals() -> None:
    async with our_server() as (url, sio):
        guarded = sio.of("/guarded")

        @guarded.use
        def check(socket: Socket, auth: dict[str, Any]) -> None:
            raise ConnectRefused("go away", {"code": 7})

        client = AsyncClient(url)
        client.on("question", lambda n: ("answer", n + 1))
        async with client:
            (socket,) = sio.of("/").sockets.values()
            assert await socket.call("question", 41, timeout=5) == ("answer", 42)
            with pytest.raises(AckTimeout):
                await client.call("no-such-handler", timeout=0.2)
        refused = AsyncClient(url, namespaces=("/guarded",))
        with pytest.raises(ConnectRefused) as caught:
            await refused.connect()
        assert (caught.value.message, caught.value.data) == ("go away", {"code": 7})


async def test_client_reconnects_and_recovers_missed_events() -> None:
    async with our_server() as (url, sio):
        news = Collector()
        dropped = asyncio.Event()
        client = AsyncClient(url, namespaces=("/recovery",), reconnection_delay_s=0.1)
        client.on("room-message", news, namespace="/recovery")
        client.on("disconnect", lambda reason: dropped.set(), namespace="/recovery")
        async with client:
            await client.call("join", "news", namespace="/recovery")
            await sio.of("/recovery").to("news").emit("room-message", "before")
            assert (await news.next())[0] == "before"
            first_sid, first_engine = client.sid("/recovery"), client.engine_id
            await client.drop()
            await dropped.wait()
            for n in range(3):
                await sio.of("/recovery").to("news").emit("room-message", n)
            await client.wait_connected("/recovery")
            assert client.recovered("/recovery")
            assert client.sid("/recovery") == first_sid and client.engine_id != first_engine
            assert [(await news.next())[0] for _ in range(3)] == [0, 1, 2]
            # The point: no event arrives twice. No event says so; 0.1 s without one does.
            await asyncio.sleep(0.1)
            assert news.items.empty()
