"""WebSocketSession: the Session interface over a ServerConnection, on real sockets."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fullduplex import ConnectionClosed, ConnectionClosedOK, connect, serve
from fullduplex.transports import Router, Session, WebSocketSession


def bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Fail a test that hangs instead of the whole run."""

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(10):
            await test(*args, **kwargs)

    return run


@bounded
async def test_session_describes_its_connection_and_echoes() -> None:
    seen: list[Session] = []

    async def handler(session: Session) -> None:
        seen.append(session)
        await session.send(f"{session.transport} {session.request.path}")
        async for message in session:
            await session.send(message)

    app = Router()
    app.websocket("/chat", handler)
    async with serve(app, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/chat?room=1") as ws:
            assert await ws.recv() == "websocket /chat?room=1"
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"bytes")
            assert await ws.recv() == b"bytes"
            (session,) = seen
            assert isinstance(session, WebSocketSession)
            assert session.remote_address[1] == ws.local_address[1]
            assert session.close_code is None
        await session.connection.wait_closed()
        assert session.close_code == 1000


@bounded
async def test_session_closes_with_a_code_and_reason() -> None:
    async def handler(session: Session) -> None:
        await session.close(4000, "bye")
        assert session.close_code == 4000
        with pytest.raises(ConnectionClosed):
            await session.send("late")

    app = Router()
    app.websocket("/", handler)
    async with (
        serve(app, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
        assert (caught.value.code, caught.value.reason) == (4000, "bye")


@bounded
async def test_session_iteration_ends_when_the_peer_closes_abnormally() -> None:
    ended = asyncio.Event()

    async def handler(session: Session) -> None:
        async for _ in session:
            pass
        assert session.close_code == 1006
        ended.set()

    app = Router()
    app.websocket("/", handler)
    async with serve(app, "127.0.0.1", 0) as server:
        ws = await connect(f"ws://127.0.0.1:{server.port}/")
        assert ws.transport is not None
        ws.transport.abort()
        await ended.wait()


@bounded
async def test_session_recv_raises_after_a_normal_close() -> None:
    result: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(session: Session) -> None:
        try:
            await session.recv()
        except ConnectionClosed as exc:
            result.set_result(exc)

    app = Router()
    app.websocket("/", handler)
    async with serve(app, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/"):
            pass
        assert isinstance(await result, ConnectionClosedOK)


@bounded
async def test_session_sends_without_waiting_while_the_peer_reads() -> None:
    async def handler(session: Session) -> None:
        assert session.try_send_nowait("now")
        assert session.try_send_nowait(b"and now")
        await session.recv()

    app = Router()
    app.websocket("/", handler)
    async with serve(app, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with connect(url) as ws:
            assert await ws.recv() == "now"
            assert await ws.recv() == b"and now"
