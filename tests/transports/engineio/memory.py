"""In-memory implementations of `HTTPExchange` and of a WebSocket `Session`.

They let the endpoint's and the session's logic run step by step, with no socket: a test
plays the client's side (`MemoryExchange.answer`, `MemoryWebSocket.client_send`...). The
real-socket tests (`test_suite.py`, `test_node_client.py`) cover the same paths end to end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from fullduplex.exceptions import BodyTooLarge, ConnectionClosedError, ConnectionClosedOK
from fullduplex.protocol.http11 import Headers, Request
from fullduplex.transports.base import HTTPExchange, Session
from fullduplex.transports.engineio import EngineIOEndpoint

__all__ = [
    "MemoryExchange",
    "MemoryWebSocket",
    "Answer",
    "http",
    "websocket",
    "target",
    "handshake",
    "poll",
    "post",
    "open_websocket",
]

Answer = tuple[int, Headers, bytes]


def target(**query: str) -> str:
    """``/engine.io/?EIO=4&...`` with ``query``."""
    return "/engine.io/?" + urlencode(query)


class MemoryExchange(HTTPExchange):
    """One HTTP request with its body given up front; the response lands in `answer`."""

    def __init__(
        self, method: str, path: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        self._request = Request(path, Headers(headers), method)
        self._body = body
        self._answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._disconnected = asyncio.Event()
        self._chunks: list[bytes] = []
        self._streamed: tuple[int, Headers] | None = None

    @property
    def request(self) -> Request:
        return self._request

    @property
    def remote_address(self) -> tuple[str, int]:
        return ("127.0.0.1", 50000)

    @property
    def is_disconnected(self) -> bool:
        return self._disconnected.is_set()

    async def read_body(self, max_bytes: int) -> bytes:
        if len(self._body) > max_bytes:
            raise BodyTooLarge(f"body over {max_bytes} bytes")
        return self._body

    async def respond(
        self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b""
    ) -> None:
        self._answer.set_result((status, Headers(headers), body))

    async def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self._streamed = (status, Headers(headers))

    async def write(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    async def end(self) -> None:
        assert self._streamed is not None
        self._answer.set_result((*self._streamed, b"".join(self._chunks)))

    async def wait_disconnected(self) -> None:
        await self._disconnected.wait()

    def disconnect(self) -> None:
        """The client goes away."""
        self._disconnected.set()

    @property
    def is_answered(self) -> bool:
        """Whether the response was sent."""
        return self._answer.done()

    async def answer(self, timeout: float = 2.0) -> Answer:
        """Wait for the response: status, headers, body."""
        return await asyncio.wait_for(asyncio.shield(self._answer), timeout)


_CLOSED = object()


class MemoryWebSocket(Session):
    """The server's side of an accepted WebSocket; the test drives the client's side."""

    def __init__(self, path: str) -> None:
        self._request = Request(path, Headers([("Upgrade", "websocket")]))
        self._to_server: asyncio.Queue[object] = asyncio.Queue()
        self._to_client: asyncio.Queue[object] = asyncio.Queue()
        self._close_code: int | None = None
        self._close_reason = ""

    @property
    def transport(self) -> str:
        return "websocket"

    @property
    def request(self) -> Request:
        return self._request

    @property
    def remote_address(self) -> tuple[str, int]:
        return ("127.0.0.1", 50001)

    @property
    def close_code(self) -> int | None:
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    def _closed(self) -> ConnectionClosedOK | ConnectionClosedError:
        code = self._close_code or 1006
        if code == 1000:
            return ConnectionClosedOK(code, self._close_reason, was_clean=True)
        return ConnectionClosedError(code, self._close_reason, was_clean=False)

    async def recv(self) -> str | bytes:
        message = await self._to_server.get()
        if message is _CLOSED:
            self._to_server.put_nowait(_CLOSED)
            raise self._closed()
        assert isinstance(message, str | bytes)
        return message

    async def send(self, message: str | bytes) -> None:
        if self._close_code is not None:
            raise self._closed()
        self._to_client.put_nowait(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason
            self._to_server.put_nowait(_CLOSED)
            self._to_client.put_nowait(_CLOSED)

    # --- the client's side ---

    def client_send(self, message: str | bytes) -> None:
        """The client sends ``message``."""
        self._to_server.put_nowait(message)

    def client_close(self, code: int = 1000) -> None:
        """The client closes the connection (no Engine.IO CLOSE packet)."""
        if self._close_code is None:
            self._close_code = code
            self._to_server.put_nowait(_CLOSED)

    async def client_recv(self, timeout: float = 2.0) -> str | bytes | None:
        """The next message the server sent, or None once the server closed."""
        message = await asyncio.wait_for(self._to_client.get(), timeout)
        if message is _CLOSED:
            self._to_client.put_nowait(_CLOSED)
            return None
        assert isinstance(message, str | bytes)
        return message


async def http(
    endpoint: EngineIOEndpoint,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
) -> MemoryExchange:
    """Start one request on ``endpoint``; await ``.answer()`` on the result for the response."""
    exchange = MemoryExchange(method, path, body, headers)
    task = asyncio.create_task(endpoint.handle_http(exchange, "/"))
    _running.add(task)
    task.add_done_callback(_running.discard)
    await asyncio.sleep(0)
    return exchange


def websocket(endpoint: EngineIOEndpoint, path: str) -> tuple[MemoryWebSocket, asyncio.Task[None]]:
    """Open a WebSocket on ``endpoint`` (refuse_websocket said yes); return it and its task."""
    ws = MemoryWebSocket(path)
    assert endpoint.refuse_websocket(ws.request, "/") is None
    task = asyncio.create_task(endpoint.handle_websocket(ws, "/"))
    return ws, task


_running: set[asyncio.Task[None]] = set()


async def handshake(endpoint: EngineIOEndpoint, **headers: str) -> dict[str, Any]:
    """Open a polling session; return the OPEN packet's JSON."""
    exchange = await http(
        endpoint, "GET", target(EIO="4", transport="polling"), b"", headers.items()
    )
    status, _, body = await exchange.answer()
    assert status == 200
    assert body.startswith(b"0")
    opened: dict[str, Any] = json.loads(body[1:])
    return opened


async def poll(endpoint: EngineIOEndpoint, sid: str) -> tuple[int, bytes]:
    """One GET for ``sid``, waited for: status and body."""
    exchange = await http(endpoint, "GET", target(EIO="4", transport="polling", sid=sid))
    status, _, body = await exchange.answer()
    return status, body


async def post(endpoint: EngineIOEndpoint, sid: str, body: bytes) -> tuple[int, bytes]:
    """One POST of ``body`` for ``sid``, waited for: status and body."""
    exchange = await http(endpoint, "POST", target(EIO="4", transport="polling", sid=sid), body)
    status, _, answer = await exchange.answer()
    return status, answer


async def open_websocket(endpoint: EngineIOEndpoint) -> tuple[MemoryWebSocket, dict[str, Any]]:
    """Open a session over WebSocket; return it and the OPEN packet's JSON."""
    ws, _ = websocket(endpoint, target(EIO="4", transport="websocket"))
    opening = await ws.client_recv()
    assert isinstance(opening, str) and opening.startswith("0")
    return ws, json.loads(opening[1:])
