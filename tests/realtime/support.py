"""Test helpers for the realtime layer: a fake clock and an in-memory `Session` pair."""

from __future__ import annotations

import asyncio

from fullduplex.exceptions import ConnectionClosedError, ConnectionClosedOK
from fullduplex.protocol.http11 import Headers, Request
from fullduplex.transports.base import Session

__all__ = ["FakeClock", "MemorySession"]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemorySession(Session):
    """A `Session` whose peer is the test: `client_send` feeds it, `client_recv` reads it.

    ``send`` waits while ``paused`` is set, like a transport whose peer stopped reading.
    """

    def __init__(self, path: str = "/socket.io/?EIO=4&transport=websocket") -> None:
        self._incoming: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._request = Request(path, Headers([("Host", "127.0.0.1")]))
        self._close_code: int | None = None
        self._close_reason = ""
        self.writable = asyncio.Event()
        self.writable.set()

    @property
    def transport(self) -> str:
        return "memory"

    @property
    def request(self) -> Request:
        return self._request

    @property
    def remote_address(self) -> tuple[str, int]:
        return ("127.0.0.1", 40000)

    @property
    def close_code(self) -> int | None:
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    async def recv(self) -> str | bytes:
        if self._close_code is not None and self._incoming.empty():
            raise ConnectionClosedOK(self._close_code, self._close_reason, True)
        message = await self._incoming.get()
        if message is None:
            raise ConnectionClosedError(self._close_code or 1006, self._close_reason, False)
        return message

    async def send(self, message: str | bytes) -> None:
        await self.writable.wait()
        if self._close_code is not None:
            raise ConnectionClosedError(self._close_code, self._close_reason, False)
        self.sent.put_nowait(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason
            self._incoming.put_nowait(None)
            self.writable.set()

    # --- the test's side ---

    def client_send(self, *messages: str | bytes) -> None:
        for message in messages:
            self._incoming.put_nowait(message)

    def vanish(self) -> None:
        """The peer disappears without a close (what a heartbeat timeout reports)."""
        self._close_code, self._close_reason = 1006, "ping timeout"
        self._incoming.put_nowait(None)

    async def client_recv(self, timeout: float = 2.0) -> str | bytes:
        async with asyncio.timeout(timeout):
            return await self.sent.get()

    def client_pending(self) -> list[str | bytes]:
        items = []
        while not self.sent.empty():
            items.append(self.sent.get_nowait())
        return items
