"""The draft-76 (hixie-76) WebSocket handshake and framing, for the SockJS suite's HAProxy case.

No browser has spoken draft 76 since 2012, but sockjs-protocol still checks that a server
answers it the way HAProxy needs: the response head goes out *before* the 8-byte nonce that
follows the request is read, then the 16-byte answer. After that, a text message is
``0x00 <UTF-8> 0xFF`` and ``0xFF 0x00`` closes.

`Hixie76Connection` is a `Session` over the connection's streams; `SockJSEndpoint` serves it
like an RFC 6455 connection, with SockJS framing on top.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ...exceptions import ConnectionClosedError, ConnectionClosedOK
from ...protocol.http11 import Request
from ..base import Session
from . import codec

__all__ = ["is_hixie76_request", "response_headers", "Hixie76Connection"]

_MAX_MESSAGE_BYTES = 1024 * 1024


def is_hixie76_request(request: Request) -> bool:
    """Whether ``request`` is a draft-76 upgrade (two keys, no RFC 6455 version)."""
    headers = request.headers
    return (
        "Sec-WebSocket-Key1" in headers
        and "Sec-WebSocket-Key2" in headers
        and "Sec-WebSocket-Version" not in headers
    )


def response_headers(request: Request, location: str) -> list[tuple[str, str]]:
    """The 101 response's headers, sent before the client's nonce is read (HAProxy's order).

    Args:
        request: the upgrade request.
        location: its ``ws://`` URL, for ``Sec-WebSocket-Location``.
    """
    return [
        ("Upgrade", "WebSocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Origin", request.headers.get("Origin") or ""),
        ("Sec-WebSocket-Location", location),
    ]


class Hixie76Connection(Session):
    """A draft-76 WebSocket connection over asyncio streams, as a `Session` (text only).

    Args:
        request: the upgrade request.
        reader: the connection's incoming bytes, after the request head (as
            `NativeExchange.take_over` gives them, once the 101 head went out).
        writer: its outgoing side.
    """

    def __init__(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._request = request
        self._reader = reader
        self._writer = writer
        self._close_code: int | None = None

    @property
    def transport(self) -> str:
        """Always ``"websocket"``."""
        return "websocket"

    @property
    def request(self) -> Request:
        """The upgrade request."""
        return self._request

    @property
    def remote_address(self) -> Any:
        """The client's address."""
        return self._writer.get_extra_info("peername")

    @property
    def close_code(self) -> int | None:
        """1000 once closed (draft 76 has no close codes), else None."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        """Always empty: draft 76 has no close reasons."""
        return ""

    async def answer_nonce(self) -> None:
        """Read the client's 8-byte nonce and send its answer; the head went out already.

        Raises:
            ValueError: the keys are malformed (close the connection).
            asyncio.IncompleteReadError: the client left before sending its nonce.
        """
        headers = self._request.headers
        nonce = await self._reader.readexactly(8)
        answer = codec.hixie76_challenge_response(
            headers["Sec-WebSocket-Key1"], headers["Sec-WebSocket-Key2"], nonce
        )
        self._writer.write(answer)
        await self._writer.drain()

    async def recv(self) -> str:
        """Return the next text message.

        Raises:
            ConnectionClosed: the client closed, left, or sent a malformed frame.
        """
        try:
            frame_type = await self._reader.readexactly(1)
            if frame_type != b"\x00":
                raise ValueError("not a text frame")
            data = await self._reader.readuntil(b"\xff")
            if len(data) > _MAX_MESSAGE_BYTES:
                raise ValueError("message too big")
            return data[:-1].decode()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self._abort()
            raise ConnectionClosedError(1006, "", False) from None

    async def send(self, message: str | bytes) -> None:
        """Send one text message.

        Raises:
            TypeError: ``message`` is bytes.
            ConnectionClosed: the connection is closed.
        """
        if not isinstance(message, str):
            raise TypeError("draft-76 WebSocket carries text messages only")
        if self._close_code is not None:
            raise ConnectionClosedOK(self._close_code, "", True)
        self._writer.write(b"\x00" + message.encode() + b"\xff")
        await self._writer.drain()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send the closing frame and close the connection (``code``, ``reason`` unused)."""
        if self._close_code is not None:
            return
        self._close_code = 1000
        with contextlib.suppress(ConnectionError):
            self._writer.write(b"\xff\x00")
            await self._writer.drain()
        await self._abort()

    async def _abort(self) -> None:
        if self._close_code is None:
            self._close_code = 1006
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
