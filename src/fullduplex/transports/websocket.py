"""`WebSocketSession`: the `Session` interface over fullduplex's own WebSocket connection."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from ..exceptions import ConnectionClosed
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
        lock = connection._send_lock
        if connection._writing_paused or (lock is not None and lock.locked()):
            return False
        connection.send_nowait(message)
        return True

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
