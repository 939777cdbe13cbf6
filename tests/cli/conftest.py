"""Fixtures of the command-line tests; helpers live in support.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from .support import SERVERS, Peer

ServerFactory = Callable[..., contextlib.AbstractAsyncContextManager[Peer]]


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> ServerFactory:
    """A server factory, once for fullduplex's server and once for the websockets library's:
    ``async with server(behaviour, **options) as peer``."""
    factory: ServerFactory = SERVERS[request.param]
    return factory


@dataclass
class SilentListener:
    """A port where TCP connections are accepted and then nothing is ever said."""

    port: int
    request_arrived: asyncio.Event
    """Set once a client sent its first bytes: it is running and waits for an answer."""


@pytest.fixture
async def silent_listener() -> AsyncIterator[SilentListener]:
    """A `SilentListener` on 127.0.0.1."""
    writers: list[asyncio.StreamWriter] = []
    request_arrived = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if await reader.read(1):
            request_arrived.set()

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield SilentListener(listener.sockets[0].getsockname()[1], request_arrived)
    finally:
        for writer in writers:
            writer.close()
        listener.close()
        await listener.wait_closed()
