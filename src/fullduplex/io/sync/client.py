"""The blocking WebSocket client: `connect` opens a connection and returns once it is open."""

from __future__ import annotations

from typing import Any

from ...protocol.http11 import Response
from ..asyncio import client as asyncio_client
from .connection import Connection
from .loop import LoopThread

__all__ = ["connect", "ClientConnection"]


class ClientConnection(Connection):
    """A client's blocking connection to a WebSocket server; returned by `connect`.

    ``response`` is the server's 101 response (``response.headers``).
    """

    _connection: asyncio_client.ClientConnection

    @property
    def response(self) -> Response:
        """The server's handshake response."""
        return self._connection.response


def connect(url: str, **options: Any) -> ClientConnection:
    """Open a WebSocket connection to ``url`` and return it once open.

    ::

        with fullduplex.sync.connect("ws://127.0.0.1:8000/") as ws:
            ws.send("hello")
            print(ws.recv(timeout=10))

    The connection runs on a background thread's event loop, with fullduplex's asyncio client;
    its methods block the calling thread only.

    Args:
        url: a ``ws://`` or ``wss://`` URL.
        options: the keyword arguments of `fullduplex.connect`: ``subprotocols``, ``origin``,
            ``extra_headers``, ``ssl``, ``server_hostname``, ``unix_path``, ``options`` (an
            `Options`), and any field of `Options` (``open_timeout``, ``ping_interval``,
            ``max_size``, ``compression`` ...).

    Raises:
        InvalidStatus: the server refused the upgrade (its response is attached).
        InvalidHandshake: the handshake failed otherwise.
        OSError: the connection could not be made.
        TimeoutError: the opening handshake took longer than ``open_timeout``.
        TypeError, ValueError: an option is unknown or invalid (before any connection).
    """
    # Built here, so that bad arguments raise in the caller's thread before any I/O.
    opener = asyncio_client.connect(url, **options)

    async def open_connection() -> asyncio_client.ClientConnection:
        return await opener

    loop_thread = LoopThread(f"fullduplex sync client {url}")
    try:
        connection = loop_thread.run(open_connection())
    except BaseException:
        loop_thread.stop()
        raise
    return ClientConnection(connection, loop_thread)
