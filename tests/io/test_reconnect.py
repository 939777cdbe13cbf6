"""``async for ws in connect(url)``: which ends reconnect and which stop, which failures are
retried and which raised, the waits between tries, and the log of each retry."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator

import pytest

from fullduplex import (
    Backoff,
    ConnectionClosed,
    InvalidStatus,
    Request,
    Response,
    Server,
    ServerConnection,
    State,
    connect,
    serve,
)
from fullduplex.exceptions import InvalidRedirect, InvalidResponse, ProxyError
from fullduplex.io.asyncio.reconnect import RetrySchedule, is_retryable, retry_after_s

from .peers import echo

Handler = Callable[[ServerConnection], Awaitable[None]]

# Short waits: the tests exercise the policy, not the clock.
FAST = Backoff(initial_delay_s=0.001, factor=2, max_delay_s=0.01, jitter=0)


class LogWatcher(logging.Handler):
    """Collects the "fullduplex" logger's records; `wait_for` wakes when one matches."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        for text, waiter in self._waiters:
            if text in record.getMessage() and not waiter.done():
                waiter.set_result(None)

    def messages(self, text: str) -> list[str]:
        return [r.getMessage() for r in self.records if text in r.getMessage()]

    async def wait_for(self, text: str) -> None:
        if self.messages(text):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((text, waiter))
        await waiter


@pytest.fixture
def log() -> Iterator[LogWatcher]:
    watcher = LogWatcher()
    logger = logging.getLogger("fullduplex")
    level = logger.level
    logger.addHandler(watcher)
    logger.setLevel(logging.DEBUG)
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)
        logger.setLevel(level)


def closes_with(*codes: int) -> tuple[list[int], Handler]:
    """A handler for `serve` that closes its n-th connection with ``codes[n]``."""
    served: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        code = codes[len(served)]
        served.append(code)
        await ws.send(f"connection {len(served)}")
        await ws.close(code)

    return served, handler


# --- how a connection's end decides -------------------------------------------------------


async def test_client_reconnects_until_the_server_closes_normally(log: LogWatcher) -> None:
    served, handler = closes_with(1011, 1001, 1012, 1000)
    received = []
    async with serve(handler, "127.0.0.1", 0) as server:
        async for ws in connect(f"ws://127.0.0.1:{server.port}/", backoff=FAST):
            try:
                async for message in ws:  # ends on 1000/1001, raises otherwise
                    received.append(message)
            except ConnectionClosed:
                continue
    assert served == [1011, 1001, 1012, 1000]
    assert received == [f"connection {n}" for n in (1, 2, 3, 4)]
    reconnects = log.messages("reconnecting in")
    assert len(reconnects) == 3
    assert "1011" in reconnects[0] and "1001" in reconnects[1]


async def test_client_stops_after_closing_normally_itself() -> None:
    connections = 0
    async with serve(echo, "127.0.0.1", 0) as server:
        async for ws in connect(f"ws://127.0.0.1:{server.port}/", backoff=FAST):
            connections += 1
            await ws.close()
            continue
    assert connections == 1


async def test_client_closes_a_connection_the_body_left_open_and_stops() -> None:
    connections = []
    async with serve(echo, "127.0.0.1", 0) as server:
        async for ws in connect(f"ws://127.0.0.1:{server.port}/", backoff=FAST):
            connections.append(ws)
    assert len(connections) == 1
    assert connections[0].state is State.CLOSED
    assert connections[0].close_code == 1000


async def test_client_reconnects_after_a_lost_connection(log: LogWatcher) -> None:
    drops = 0

    async def drop_first(ws: ServerConnection) -> None:
        nonlocal drops
        if drops == 0:
            drops += 1
            assert ws.transport is not None
            ws.transport.abort()  # no closing handshake: 1006 on the client
            return
        await ws.close(1000)

    codes = []
    async with serve(drop_first, "127.0.0.1", 0) as server:
        async for ws in connect(f"ws://127.0.0.1:{server.port}/", backoff=FAST):
            await ws.wait_closed()
            codes.append(ws.close_code)
    assert codes == [1006, 1000]
    assert len(log.messages("reconnecting in")) == 1


async def test_client_comes_back_after_the_server_restarts(log: LogWatcher) -> None:
    """The server goes away (1001), refuses connections for a while, then listens again."""
    first = await serve(echo, "127.0.0.1", 0)
    port = first.port
    second: asyncio.Task[Server] | None = None
    replies = []
    try:
        async for ws in connect(f"ws://127.0.0.1:{port}/", backoff=FAST):
            await ws.send("hello")
            replies.append(await ws.recv())
            if second is not None:
                await ws.close()  # a normal closure: the loop ends
                continue
            # Listen again on the port once the client was refused there at least once.
            second = asyncio.create_task(_serve_after(log.wait_for("retrying in"), port))
            first.close()  # closes the connection with 1001
            await first.wait_closed()
            await ws.wait_closed()
            assert ws.close_code == 1001
    finally:
        if second is not None:
            server = await second
            server.close()
            await server.wait_closed()
    assert replies == ["hello", "hello"]
    assert any("ConnectionRefusedError" in m for m in log.messages("retrying in"))


async def _serve_after(event: Awaitable[None], port: int) -> Server:
    await event
    return await serve(echo, "127.0.0.1", port)


async def test_breaking_out_of_the_loop_closes_the_connection() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        iterator = aiter(connect(f"ws://127.0.0.1:{server.port}/", backoff=FAST))
        ws = await anext(iterator)
        assert ws.state is State.OPEN
        await iterator.aclose()  # what `break` leads to, once the iterator is collected
        assert ws.state is State.CLOSED
        assert ws.close_code == 1000


# --- which failures to connect are retried --------------------------------------------------


async def test_client_retries_5xx_and_honours_retry_after(log: LogWatcher) -> None:
    refusals = [Response(503, [("Retry-After", "0")]), Response(429), Response(500)]

    def refuse_three(ws: ServerConnection, request: Request) -> Response | None:
        return refusals.pop(0) if refusals else None

    async with serve(echo, "127.0.0.1", 0, process_request=refuse_three) as server:
        async for ws in connect(f"ws://127.0.0.1:{server.port}/", backoff=FAST):
            await ws.send("finally")
            assert await ws.recv() == "finally"
            break
    retries = log.messages("retrying in")
    assert len(retries) == 3
    for retry, status in zip(retries, (503, 429, 500), strict=True):
        assert f"HTTP {status}" in retry


@pytest.mark.parametrize("status", [400, 401, 403, 404, 426])
async def test_client_raises_a_4xx_refusal_at_once(log: LogWatcher, status: int) -> None:
    def refuse(ws: ServerConnection, request: Request) -> Response:
        return Response(status)

    async with serve(echo, "127.0.0.1", 0, process_request=refuse) as server:
        with pytest.raises(InvalidStatus) as caught:
            async for _ in connect(f"ws://127.0.0.1:{server.port}/", backoff=FAST):
                pytest.fail("connected despite the refusal")
    assert caught.value.response.status == status
    assert log.messages("retrying in") == []


async def test_client_retries_a_refused_connection_until_the_server_listens(
    log: LogWatcher,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listening = asyncio.create_task(_serve_after(log.wait_for("retrying in"), port))
    try:
        async for ws in connect(f"ws://127.0.0.1:{port}/", backoff=FAST):
            await ws.send("late")
            assert await ws.recv() == "late"
            await ws.close()
    finally:
        server = await listening
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (socket.gaierror(), True),
        (InvalidStatus(Response(502)), True),
        (InvalidStatus(Response(408)), True),
        (InvalidStatus(Response(404)), False),
        (InvalidStatus(Response(200)), False),
        (InvalidRedirect(Response(302), "ws://x/", "downgrade"), False),
        (InvalidResponse("connection closed during the opening handshake"), True),
        (InvalidResponse("invalid Sec-WebSocket-Accept"), False),
        (ProxyError("refused", "http://p:1", status=407), False),
        (ProxyError("bad gateway", "http://p:1", status=502, is_transient=True), True),
        (ValueError(), False),
    ],
)
def test_only_failures_that_time_may_cure_are_retried(error: Exception, retryable: bool) -> None:
    assert is_retryable(error) is retryable


def test_an_untrusted_certificate_is_not_retried() -> None:
    assert not is_retryable(ssl.SSLCertVerificationError("untrusted"))
    assert is_retryable(ssl.SSLError("EOF"))


# --- the waits ----------------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_its_limit() -> None:
    delays = Backoff(initial_delay_s=1, factor=2, max_delay_s=10, jitter=0).delays()
    assert [next(delays) for _ in range(6)] == [1, 2, 4, 8, 10, 10]


def test_backoff_jitter_removes_at_most_its_fraction() -> None:
    backoff = Backoff(initial_delay_s=4, factor=1, max_delay_s=4, jitter=0.5)
    delays = backoff.delays(random.Random(7))
    waits = [next(delays) for _ in range(200)]
    assert all(2 <= wait <= 4 for wait in waits)
    assert len(set(waits)) > 100  # spread out, not one value


def test_default_backoff_is_documented() -> None:
    assert Backoff() == Backoff(initial_delay_s=1.0, factor=2.0, max_delay_s=60.0, jitter=0.5)


@pytest.mark.parametrize(
    "options",
    [
        {"initial_delay_s": -1},
        {"initial_delay_s": 5, "max_delay_s": 1},
        {"factor": 0.5},
        {"jitter": 1.5},
    ],
)
def test_backoff_refuses_nonsense(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**options)


def test_retry_after_lengthens_the_wait_up_to_the_limit() -> None:
    schedule = RetrySchedule(Backoff(initial_delay_s=1, max_delay_s=30, jitter=0))
    assert schedule.after_failure(InvalidStatus(Response(503, [("Retry-After", "7")]))) == 7
    assert schedule.after_failure(InvalidStatus(Response(429, [("Retry-After", "3600")]))) == 30
    assert retry_after_s(InvalidStatus(Response(503, [("Retry-After", "soon")]))) is None
    assert retry_after_s(InvalidStatus(Response(500, [("Retry-After", "7")]))) is None


def test_waits_start_over_only_after_a_healthy_connection() -> None:
    schedule = RetrySchedule(Backoff(initial_delay_s=1, factor=2, max_delay_s=60, jitter=0))
    assert [schedule.after_close(0.1) for _ in range(3)] == [1, 2, 4]
    assert schedule.after_close(60) == 1
