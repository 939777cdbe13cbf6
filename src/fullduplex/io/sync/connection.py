"""A WebSocket connection for blocking code, on top of the asyncio connection.

Theory of operation
-------------------
`Connection` owns a `LoopThread`. The asyncio `WebSocketConnection` lives on that loop, as it
would in an asyncio application, and keeps making every decision (keepalive, close timeout,
back-pressure). Each blocking method runs the matching coroutine on the loop and waits for its
outcome in the caller's thread. Several threads may call at once: their coroutines interleave on
the one loop exactly as concurrent tasks do, which makes `send` thread-safe (one frame is written
in one step, so messages never interleave) and lets one thread `recv` while others send.

A timeout is enforced on the loop (``asyncio.timeout``), not in the waiting thread, so that a
`recv` either returns a message or times out having taken none.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

from ...exceptions import ConnectionClosedOK
from ...protocol.connection import Connection as ProtocolConnection
from ...protocol.connection import State
from ...protocol.frames import CloseCode
from ..asyncio.connection import Data, Message, WebSocketConnection
from .loop import LoopStopped, LoopThread

__all__ = ["Connection"]

T = TypeVar("T")


class Connection:
    """An open WebSocket connection for blocking code: `send`, `recv`, iterate, `close`.

    Use it as a context manager: leaving the ``with`` block closes the connection and stops
    its loop thread. Returned by `fullduplex.sync.connect`; not instantiated directly.
    """

    def __init__(self, connection: WebSocketConnection, loop_thread: LoopThread) -> None:
        self._connection = connection
        self._loop_thread = loop_thread
        # Collected without `close`: drop the connection and stop the thread.
        weakref.finalize(self, _abandon, connection, loop_thread)

    # --- state ---------------------------------------------------------------------------

    @property
    def protocol(self) -> ProtocolConnection:
        """The sans-I/O connection (``protocol.extensions``, ``protocol.was_clean``...)."""
        return self._connection.protocol

    @property
    def state(self) -> State:
        """CONNECTING, OPEN, CLOSING or CLOSED."""
        return self._connection.state

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or None."""
        return self._connection.subprotocol

    @property
    def remote_address(self) -> Any:
        """The peer's address, as the socket reports it."""
        return self._connection.remote_address

    @property
    def local_address(self) -> Any:
        """This end's address, as the socket reports it."""
        return self._connection.local_address

    @property
    def close_code(self) -> int | None:
        """The peer's close code (1005: none given, 1006: no close frame); None while open."""
        return self._connection.close_code

    @property
    def close_reason(self) -> str:
        """The reason the peer gave in its close frame, or an empty string."""
        return self._connection.close_reason

    # --- messages ------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Message:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Args:
            timeout: seconds to wait at most; None waits as long as the connection lives,
                0 only takes a message already received.

        Raises:
            TimeoutError: no message came within ``timeout``; none was lost, call again.
            ConnectionClosed: the connection is closed, after every message received before
                the closure was returned (`ConnectionClosedOK` after a normal close).
            RuntimeError: another thread is already waiting in `recv`.
        """
        return self._call(self._recv(timeout))

    async def _recv(self, timeout: float | None) -> Message:
        async with asyncio.timeout(timeout):
            return await self._connection.recv()

    def __iter__(self) -> Iterator[Message]:
        """Yield messages until the connection closes: normally ends the loop, else raises."""
        try:
            while True:
                yield self.recv()
        except ConnectionClosedOK:
            return

    def send(self, message: Data | Iterable[Data]) -> None:
        """Send one message; safe to call from several threads at once.

        Blocks while the write buffer is above its limit (``write_limit``).

        Args:
            message: ``str`` for a text message, ``bytes``-like for binary, or an iterable of
                them (all ``str`` or all bytes-like) to send one message in fragments; the
                iterable is consumed on the connection's loop thread.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` has an unsupported type.
        """
        self._call(self._connection.send(message))

    def ping(self, data: str | bytes | None = None, *, timeout: float | None = None) -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds.

        Raises:
            TimeoutError: no pong within ``timeout`` seconds.
            ConnectionClosed: the connection is closing or closed, or closed before the pong.
            ValueError: the payload exceeds 125 bytes.
        """
        return self._call(self._ping(data, timeout))

    async def _ping(self, data: str | bytes | None, timeout: float | None) -> float:
        async with asyncio.timeout(timeout):
            return await self._connection.ping(data)

    def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong, a one-way heartbeat.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        self._call(self._connection.pong(data))

    # --- closing -------------------------------------------------------------------------

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection and wait for the closing handshake (``close_timeout`` at most).

        Messages already received stay readable with `recv`. Closing twice only waits.

        Raises:
            ValueError: the code may not be sent or the reason exceeds 123 UTF-8 bytes.
        """
        if not self._loop_thread.is_stopped:
            with contextlib.suppress(LoopStopped):
                self._loop_thread.run(self._connection.close(code, reason))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.close()
        finally:
            self._loop_thread.stop()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            return self._loop_thread.run(coroutine)
        except LoopStopped:
            raise self._connection.protocol.closed_error() from None


def _abandon(connection: WebSocketConnection, loop_thread: LoopThread) -> None:
    """Drop a connection that was never closed, then its loop thread: `Connection`'s finalizer."""
    try:
        loop_thread.loop.call_soon_threadsafe(_abort, connection)
    except RuntimeError:  # the loop is closed already
        return
    loop_thread.stop()


def _abort(connection: WebSocketConnection) -> None:
    if connection.transport is not None:
        connection.transport.abort()
