"""``for ws in fullduplex.sync.connect(url)``, and the blocking client through proxies and
redirects: the same policy as the asyncio client's, over its loop threads."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest

from fullduplex import (
    Backoff,
    ConnectionClosed,
    InvalidStatus,
    ProxyError,
    Request,
    Response,
    ServerConnection,
    State,
    sync,
)

from ..proxy_servers import PROXY_PASSWORD, PROXY_USER, run_pproxy
from .test_client import TIMEOUT_S, echo, server_thread

FAST = Backoff(initial_delay_s=0.001, factor=2, max_delay_s=0.01, jitter=0)


@pytest.fixture
def retries(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[str], list[str]]]:
    caplog.set_level(logging.INFO, logger="fullduplex")
    yield lambda text: [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_blocking_client_reconnects_until_the_server_closes_normally(
    retries: Callable[[str], list[str]],
) -> None:
    codes = [1011, 1001, 1000]
    served: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        served.append(codes[len(served)])
        await ws.send(f"connection {len(served)}")
        await ws.close(served[-1])

    def body() -> list[str]:
        received = []
        for ws in sync.connect(f"ws://127.0.0.1:{port}/", backoff=FAST):
            try:
                for message in ws:
                    assert isinstance(message, str)
                    received.append(message)
            except ConnectionClosed:
                continue
        return received

    with server_thread(handler) as port:
        received = body()
    assert received == ["connection 1", "connection 2", "connection 3"]
    assert len(retries("reconnecting in")) == 2


def test_blocking_client_retries_503_and_raises_403(retries: Callable[[str], list[str]]) -> None:
    refusals = [Response(503), Response(403)]

    def refuse(ws: ServerConnection, request: Request) -> Response | None:
        return refusals.pop(0) if refusals else None

    def body() -> None:
        for _ in sync.connect(f"ws://127.0.0.1:{port}/", backoff=FAST):
            pytest.fail("connected despite the refusals")

    with (
        server_thread(echo, process_request=refuse) as port,
        pytest.raises(InvalidStatus) as caught,
    ):
        body()
    assert caught.value.response.status == 403
    assert len(retries("retrying in")) == 1


def test_leaving_the_blocking_loop_closes_the_connection() -> None:
    def body() -> sync.ClientConnection:
        iterator = iter(sync.connect(f"ws://127.0.0.1:{port}/", backoff=FAST))
        ws = next(iterator)
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT_S) == "x"
        iterator.close()  # what `break` leads to
        return ws

    with server_thread(echo) as port:
        ws = body()
    assert ws.state is State.CLOSED


def test_blocking_client_connects_through_proxies() -> None:
    credentials = f"{quote(PROXY_USER)}:{quote(PROXY_PASSWORD, safe='')}@"
    with run_pproxy("http+socks5") as proxy_port, server_thread(echo) as port:
        for scheme in ("http", "socks5"):
            proxy = f"{scheme}://{credentials}127.0.0.1:{proxy_port}"
            with sync.connect(f"ws://127.0.0.1:{port}/", proxy=proxy) as ws:
                assert ws.remote_address[1] == proxy_port
                ws.send(scheme)
                assert ws.recv(timeout=TIMEOUT_S) == scheme
        with pytest.raises(ProxyError) as caught:
            sync.connect(f"ws://127.0.0.1:{port}/", proxy=f"http://127.0.0.1:{proxy_port}").open()
        assert caught.value.status == 407


def test_blocking_client_follows_redirects() -> None:
    def redirect(ws: ServerConnection, request: Request) -> Response | None:
        return Response(302, [("Location", "/there")]) if request.path == "/here" else None

    async def path(ws: ServerConnection) -> None:
        await ws.send(ws.request.path)
        await ws.close()

    with (
        server_thread(path, process_request=redirect) as port,
        sync.connect(f"ws://127.0.0.1:{port}/here") as ws,
    ):
        assert ws.recv(timeout=TIMEOUT_S) == "/there"
