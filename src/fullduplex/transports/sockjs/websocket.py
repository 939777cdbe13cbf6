"""SockJS's ``websocket`` transport: SockJS frames over one WebSocket connection.

Unlike the HTTP transports, the session lives exactly as long as its connection; the session
id in the URL is not looked up, and two connections may share it (sockjs-protocol 0.3.3).
The server sends ``o`` first, each message as an ``a`` frame, ``h`` every ``heartbeat_s``, and
``c[code,"reason"]`` before closing; the client sends JSON strings or arrays of strings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from ...exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from ...protocol.http11 import Request
from ..base import Session
from . import codec

__all__ = ["SockJSWebSocketSession"]

# RFC 6455 §7.4.1: 1002, the peer broke the (SockJS) protocol: its message is not JSON.
_PROTOCOL_ERROR = 1002


class SockJSWebSocketSession(Session):
    """A SockJS session carried by one WebSocket connection (``.../websocket``).

    Args:
        connection: the WebSocket connection, as a `Session`.
        heartbeat_s: seconds between heartbeat frames.
    """

    def __init__(self, connection: Session, *, heartbeat_s: float = 25.0) -> None:
        self._connection = connection
        self._heartbeat_s = heartbeat_s
        self._received: deque[str] = deque()
        self._close_code: int | None = None
        self._close_reason = ""
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def transport(self) -> str:
        """Always ``"websocket"``."""
        return "websocket"

    @property
    def request(self) -> Request:
        """The upgrade request."""
        return self._connection.request

    @property
    def remote_address(self) -> Any:
        """The client's address."""
        return self._connection.remote_address

    @property
    def close_code(self) -> int | None:
        """The close code once closed, else None."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        """The close reason once closed; empty while open."""
        return self._close_reason

    async def open(self) -> None:
        """Send the open frame and start the heartbeats."""
        await self._connection.send(codec.OPEN_FRAME)
        self._heartbeat = asyncio.ensure_future(self._beat())

    async def stop(self) -> None:
        """Stop the heartbeats (the connection is closing)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat

    async def _beat(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self._heartbeat_s)
                await self._connection.send(codec.HEARTBEAT_FRAME)

    async def recv(self) -> str:
        """Return the peer's next message.

        A message that is not a JSON string or array of strings closes the connection with
        1002 (sockjs-protocol: "abruptly terminate").

        Raises:
            ConnectionClosed: the connection closed.
        """
        while not self._received:
            try:
                message = await self._connection.recv()
            except ConnectionClosed as closed:
                self._closed(closed.code, closed.reason)
                raise
            try:
                if not isinstance(message, str):
                    raise codec.BrokenJSON
                self._received.extend(codec.decode_websocket_message(message))
            except codec.BrokenJSON:
                await self._connection.close(_PROTOCOL_ERROR, "Broken JSON encoding.")
                self._closed(_PROTOCOL_ERROR, "Broken JSON encoding.")
                raise ConnectionClosedError(
                    _PROTOCOL_ERROR, "Broken JSON encoding.", True
                ) from None
        return self._received.popleft()

    async def send(self, message: str | bytes) -> None:
        """Send one text message as an ``a`` frame.

        Raises:
            TypeError: ``message`` is bytes (SockJS carries text only).
            ConnectionClosed: the connection is closed.
        """
        if not isinstance(message, str):
            raise TypeError("SockJS carries text messages only")
        if self._close_code is not None:
            raise self._error()
        await self._connection.send(codec.message_frame([message]))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send the close frame ``c[code,reason]``, then close the connection."""
        if self._close_code is not None:
            return
        self._closed(code, reason)
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(codec.close_frame(code, reason))
        await self._connection.close(1000, "")

    def _closed(self, code: int, reason: str) -> None:
        if self._close_code is None:
            self._close_code = code
            self._close_reason = reason

    def _error(self) -> ConnectionClosed:
        code = self._close_code or 1000
        if code in (1000, 1001):
            return ConnectionClosedOK(code, self._close_reason, True)
        return ConnectionClosedError(code, self._close_reason, True)
