"""The blocking WebSocket client: `connect` opens a connection, or keeps one open by
reconnecting."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from ...protocol.http11 import Response
from ..asyncio import client as asyncio_client
from ..asyncio.reconnect import Backoff, RetrySchedule, ends_conversation, is_retryable
from .connection import Connection
from .loop import LoopThread

__all__ = ["connect", "ClientConnection"]

logger = logging.getLogger("fullduplex")


class ClientConnection(Connection):
    """A client's blocking connection to a WebSocket server; made by `connect`.

    ``response`` is the server's 101 response (``response.headers``).
    """

    _connection: asyncio_client.ClientConnection

    @property
    def response(self) -> Response:
        """The server's handshake response."""
        return self._connection.response


# Lowercase, as it is used like a function: ``with connect(...)`` or ``for ws in connect(...)``.
class connect:
    """Open a WebSocket connection to ``url``, or keep one open by reconnecting.

    ::

        with fullduplex.sync.connect("ws://127.0.0.1:8000/") as ws:
            ws.send("hello")
            print(ws.recv(timeout=10))

        for ws in fullduplex.sync.connect("wss://example.test/feed"):  # reconnects
            try:
                for message in ws:
                    print(message)
            except ConnectionClosed:
                continue

    ``with`` opens one connection and closes it at the end of the block; `open` returns one
    for the caller to close. ``for`` yields a new connection each time the previous one ended,
    and stops, retries and waits exactly as ``async for ws in fullduplex.connect(url)`` does
    (see `fullduplex.connect`); each connection yielded is closed, and its thread stopped,
    when the loop asks for the next one or is left.

    Each connection runs on a background thread's event loop, with fullduplex's asyncio
    client; its methods block the calling thread only.

    Args:
        url: a ``ws://`` or ``wss://`` URL.
        options: the keyword arguments of `fullduplex.connect`: ``subprotocols``, ``origin``,
            ``extra_headers``, ``ssl``, ``server_hostname``, ``unix_path``, ``proxy``,
            ``proxy_ssl``, ``max_redirects``, ``backoff``, ``options`` (an `Options`), and any
            field of `Options` (``open_timeout``, ``ping_interval``, ``max_size``,
            ``compression`` ...).

    Raises:
        TypeError, ValueError: an option is unknown or invalid (at once, before any I/O).
    """

    def __init__(self, url: str, **options: Any) -> None:
        # Built here, so that bad arguments raise in the caller's thread before any I/O.
        self._opener = asyncio_client.connect(url, **options)
        self._backoff: Backoff = options.get("backoff", Backoff())
        self._connection: ClientConnection | None = None

    def open(self) -> ClientConnection:
        """Open a connection and return it once open; close it with its ``close`` or ``with``.

        Raises:
            InvalidStatus: the server refused the upgrade (its response is attached).
            InvalidRedirect: a redirect that may not be followed.
            InvalidHandshake: the handshake failed otherwise.
            ProxyError: the proxy could not be reached or would not open a tunnel.
            OSError: the connection could not be made.
            TimeoutError: the opening handshake took longer than ``open_timeout``.
        """

        async def open_connection() -> asyncio_client.ClientConnection:
            return await self._opener

        loop_thread = LoopThread(f"fullduplex sync client {self._opener.uri.url}")
        try:
            connection = loop_thread.run(open_connection())
        except BaseException:
            loop_thread.stop()
            raise
        return ClientConnection(connection, loop_thread)

    def __enter__(self) -> ClientConnection:
        """Open a connection (see `open`) and return it."""
        self._connection = self.open()
        return self._connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the connection and stop its thread."""
        assert self._connection is not None
        self._connection.__exit__(exc_type, exc, traceback)

    def __iter__(self) -> Iterator[ClientConnection]:
        """Yield a connection, then a new one each time it ends, until a normal closure.

        Raises:
            Any error of `open` that another try cannot cure.
        """
        schedule = RetrySchedule(self._backoff)
        url = self._opener.uri.url
        while True:
            try:
                ws = self.open()
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                delay = schedule.after_failure(exc)
                logger.info("cannot connect to %s (%s); retrying in %.3g s", url, exc, delay)
                time.sleep(delay)  # the backoff itself
                continue
            opened_at = time.monotonic()
            with ws:
                yield ws
                # Back from the loop's body: a connection left open ends normally, which
                # stops the iteration; otherwise this waits until the closure completes.
                ws.close()
            if ends_conversation(ws.protocol):
                return
            delay = schedule.after_close(time.monotonic() - opened_at)
            logger.info(
                "connection to %s ended (%s); reconnecting in %.3g s",
                url,
                ws.protocol.closed_error(),
                delay,
            )
            time.sleep(delay)
