"""The interfaces between the transports layer and what is above and below it.

- `Session`: one conversation with one peer, whatever carries it. The realtime layer and
  applications only ever see this.
- `HTTPExchange` (defined in `fullduplex.io.asyncio.exchange`, re-exported here): one HTTP
  request and its response, as an endpoint sees it. Implemented by fullduplex's own server and
  by the ASGI adapter, so every endpoint runs under both.
- `Endpoint`: what a server mounts at a path prefix (SockJS, Engine.IO, a WebSocket route).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import Any

from ..exceptions import ConnectionClosed, ConnectionClosedOK
from ..io.asyncio.exchange import HTTPExchange
from ..io.asyncio.native_exchange import NativeExchange
from ..io.options import OptionOverrides
from ..protocol.http11 import Request, Response

__all__ = ["Session", "HTTPExchange", "Endpoint"]


class Session(abc.ABC):
    """One conversation with one peer: messages in order both ways, then a close.

    ``async for message in session`` yields ``str`` (text) and ``bytes`` (binary) until the
    session closes; `send` queues one message; `close` ends the session with a code and reason.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def transport(self) -> str:
        """The name of what carries this session now, e.g. ``"websocket"``, ``"xhr-polling"``,
        ``"polling"``; it may change during the session (an Engine.IO upgrade)."""

    @property
    @abc.abstractmethod
    def request(self) -> Request:
        """The HTTP request that opened the session."""

    @property
    @abc.abstractmethod
    def remote_address(self) -> Any:
        """The peer's address as the socket gives it (``(host, port)`` for TCP), or None."""

    @property
    @abc.abstractmethod
    def close_code(self) -> int | None:
        """The close code, once the session is closed; None while it is open."""

    @property
    @abc.abstractmethod
    def close_reason(self) -> str:
        """The close reason, once the session is closed; empty while it is open."""

    @abc.abstractmethod
    async def recv(self) -> str | bytes:
        """Return the next message.

        Raises:
            ConnectionClosed: the session is closed and every message was received.
        """

    @abc.abstractmethod
    async def send(self, message: str | bytes) -> None:
        """Send one message; waits while the peer reads too slowly.

        Raises:
            ConnectionClosed: the session is closed.
            TypeError: the transport cannot carry binary messages and ``message`` is bytes.
        """

    def try_send_nowait(self, message: str | bytes) -> bool:
        """Send ``message`` now if that needs no waiting, else do nothing and return False.

        A broadcast to thousands of sessions calls it first, and `send` only when it returns
        False. The default never sends; a transport overrides it when it can write without
        waiting (a WebSocket whose peer keeps up).

        Raises:
            ConnectionClosed: the session is closed.
        """
        return False

    @abc.abstractmethod
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the session with ``code`` and ``reason`` and wait until it is closed."""

    async def consume(self, consumer: Callable[[str | bytes], Awaitable[None] | None]) -> None:
        """Give every message to ``consumer`` until the session closes, then return.

        ``async for`` is the way to read a session; this is the lower-level way for a protocol
        layered on sessions (Socket.IO), where a task switch per message shows in profiles.
        ``consumer(message)`` returns None once it is done with the message, or an awaitable
        that finishes it: the next message is given only after that awaitable completes, so
        messages are handled in order and the transport waits while the consumer is busy.
        A transport may call ``consumer`` inside its own read (no task switch when it returns
        None); the default reads with `recv`. ``consumer`` must not raise; an exception it
        raises or its awaitable raises ends `consume` with it.

        Raises:
            ConnectionClosedError: the session closed abnormally (after every message was
                given); after a normal close `consume` returns.
        """
        while True:
            try:
                message = await self.recv()
            except ConnectionClosedOK:
                return
            pending = consumer(message)
            if pending is not None:
                await pending

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None


class Endpoint(abc.ABC):
    """What a server mounts at a path prefix: SockJS, Engine.IO, a plain WebSocket route.

    ``path`` is the request path below the mount prefix, without the query, starting with
    ``/`` (``""`` when the request is for the prefix itself).
    """

    __slots__ = ()

    @abc.abstractmethod
    async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
        """Answer one plain HTTP request."""

    def handle_http_nowait(self, exchange: NativeExchange, path: str) -> bool:
        """Answer one plain HTTP request synchronously, if that needs no waiting; return
        whether it was taken.

        fullduplex's own server asks this first, with no coroutine and no task: the cheap
        way for requests that are answered at once (`NativeExchange.body_nowait`,
        `NativeExchange.respond_nowait`) or held and answered later from a callback. Return
        False having done nothing to have `handle_http` answer it in a task; the default
        does so for every request. Under ASGI only `handle_http` runs.
        """
        return False

    def refuse_websocket(self, request: Request, path: str) -> Response | None:
        """Return a response refusing this WebSocket upgrade (404, 400...), or None to accept.

        Called before the handshake is answered; the default refuses nothing.
        """
        return None

    def websocket_options(self, request: Request, path: str) -> OptionOverrides:
        """Return the `Options` fields an accepted upgrade's connection needs other than the
        server's (``{"compression": None}``...); the default changes none.

        Called after `refuse_websocket`, before the handshake is answered, so compression
        settings apply to the permessage-deflate negotiation. Only fullduplex's own server
        applies them: under ASGI the server (uvicorn) negotiates with its own settings.
        """
        return {}

    @abc.abstractmethod
    async def handle_websocket(self, session: Session, path: str) -> None:
        """Serve one accepted WebSocket connection; it closes when this returns."""
