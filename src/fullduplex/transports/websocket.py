"""`WebSocketSession`: the `Session` interface over fullduplex's own WebSocket connection."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..exceptions import ConnectionClosed, ConnectionClosedOK
from ..io.asyncio.server import ServerConnection
from ..protocol.http11 import Request
from .base import Session

__all__ = ["WebSocketSession"]


class WebSocketSession(Session):
    """A `Session` carried by a raw WebSocket connection (transport ``"websocket"``).

    A thin view: `recv`, `send` and `close` are the connection's own, with no task and no
    extra coroutine per message. ``connection`` gives the `ServerConnection` itself for what
    sessions do not offer (ping, subprotocol, fragments).
    """

    __slots__ = ("connection",)

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        """The WebSocket connection carrying the session."""

    @property
    def transport(self) -> str:
        """Always ``"websocket"``."""
        return "websocket"

    @property
    def request(self) -> Request:
        """The upgrade request."""
        return self.connection.request

    @property
    def remote_address(self) -> Any:
        """The peer's address as the socket gives it."""
        return self.connection.remote_address

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed (1006: no close frame); None before."""
        return self.connection.close_code

    @property
    def close_reason(self) -> str:
        """The close reason once the connection is closed."""
        return self.connection.close_reason

    def recv(self) -> Coroutine[Any, Any, str | bytes]:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Raises:
            ConnectionClosed: the connection is closed and every message was received.
        """
        # The connection's coroutine itself: no frame of ours per message.
        return self.connection.recv()

    def send(self, message: str | bytes) -> Coroutine[Any, Any, None]:
        """Send one message (``str``: text, ``bytes``: binary); waits while the peer reads
        too slowly.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` is neither ``str`` nor bytes-like.
        """
        return self.connection.send(message)

    def try_send_nowait(self, message: str | bytes) -> bool:
        """Send ``message`` now unless the write buffer is above its limit (the peer reads
        slowly) or a fragmented message is being sent; then return False: use `send`.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        connection = self.connection
        if not connection.can_send_now():
            return False
        connection.send_nowait(message)
        return True

    async def consume(self, consumer: Callable[[str | bytes], Awaitable[None] | None]) -> None:
        """Give every message to ``consumer`` until the connection closes (see
        `Session.consume`), through the connection's message callback: while ``consumer`` has
        nothing pending it runs inside the read that brought the message, and what it sends
        with `try_send_nowait` goes out with that read's other replies in one system call.
        """
        await _CallbackReader(self.connection, consumer).run()

    def close(self, code: int = 1000, reason: str = "") -> Coroutine[Any, Any, None]:
        """Start the closing handshake with ``code`` and ``reason`` and wait until closed."""
        return self.connection.close(code, reason)

    async def __anext__(self) -> str | bytes:
        try:
            return await self.connection.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        return f"<WebSocketSession {self.connection.request.path!r}>"


class _CallbackReader:
    """`WebSocketSession.consume`: the connection's message callback calls the consumer
    while it is idle; messages that come while an awaitable it returned runs wait in a
    backlog, and reading pauses once ``max_queue`` wait there, as it would for `recv`."""

    __slots__ = ("_connection", "_consumer", "_backlog", "_pending", "_wakeup", "_is_pausing")

    def __init__(
        self,
        connection: ServerConnection,
        consumer: Callable[[str | bytes], Awaitable[None] | None],
    ) -> None:
        self._connection = connection
        self._consumer = consumer
        self._backlog: collections.deque[str | bytes] = collections.deque()
        self._pending: Awaitable[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._is_pausing = False

    async def run(self) -> None:
        connection = self._connection
        backlog = self._backlog
        connection.add_close_callback(self._wake)
        connection.on_message(self._on_message)
        try:
            while True:
                if self._pending is not None:
                    await self._pending
                    self._pending = None
                elif backlog:
                    message = backlog.popleft()
                    if self._is_pausing and len(backlog) <= connection.max_queue // 4:
                        self._resume_reading()
                    self._pending = self._consumer(message)
                elif connection.is_closed:
                    error = connection.protocol.closed_error()
                    if isinstance(error, ConnectionClosedOK):
                        return
                    raise error
                else:
                    self._wakeup = asyncio.get_running_loop().create_future()
                    await self._wakeup
        finally:
            connection.remove_close_callback(self._wake)
            if self._is_pausing:
                self._resume_reading()

    def _on_message(self, message: str | bytes) -> None:
        if self._pending is not None or self._backlog:
            self._backlog.append(message)
            if len(self._backlog) >= self._connection.max_queue and not self._is_pausing:
                self._is_pausing = True
                self._connection.pause_reading()
            return
        try:
            pending = self._consumer(message)
        except Exception as exc:
            pending = _reraise(exc)
        if pending is not None:
            self._pending = pending
            self._wake()

    def _wake(self, _: object = None) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _resume_reading(self) -> None:
        self._is_pausing = False
        self._connection.resume_reading()


async def _reraise(exc: Exception) -> None:
    """Raise, in `consume`'s task, what the consumer raised inside a read."""
    raise exc
