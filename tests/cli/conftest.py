"""Every coroutine test in tests/cli runs under `TEST_TIMEOUT_S`; helpers live in support.py."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from .support import SERVERS, Peer

TEST_TIMEOUT_S = 60
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-asyncio runs `item.obj`; the wrapper keeps the signature for fixtures.
    for item in items:
        in_here = isinstance(item, pytest.Function) and HERE in item.path.parents
        if in_here and inspect.iscoroutinefunction(item.obj):
            item.obj = _bounded(item.obj)


def _bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(TEST_TIMEOUT_S):
            await test(*args, **kwargs)

    return run


ServerFactory = Callable[..., contextlib.AbstractAsyncContextManager[Peer]]


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> ServerFactory:
    """A server factory, once for fullduplex's server and once for the websockets library's:
    ``async with server(behaviour, **options) as peer``."""
    factory: ServerFactory = SERVERS[request.param]
    return factory


@dataclass(frozen=True)
class TLSFiles:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    server_context: ssl.SSLContext


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A trustme test CA and a certificate it issued for 127.0.0.1, as files and a context."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory = tmp_path_factory.mktemp("cli-tls")
    files = TLSFiles(
        directory / "ca.pem", directory / "cert.pem", directory / "key.pem", _context(cert)
    )
    ca.cert_pem.write_to_path(files.ca_pem)
    files.cert_pem.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(files.key_pem)
    return files


def _context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


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
