"""`HTTPExchange`: one plain HTTP request and its response, as an endpoint sees it.

Polling and streaming transports need more of HTTP than a WebSocket handshake: request bodies,
held requests, streamed responses, and knowing when the client went away. This interface is
what they use; fullduplex's own server implements it, and so does the ASGI adapter.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

from ...protocol.http11 import Request

__all__ = ["HTTPExchange"]


class HTTPExchange(abc.ABC):
    """One HTTP request and the response to it, as an `Endpoint` sees it.

    Answer with `respond` (a whole response), or stream with `start`, `write`... `end`.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def request(self) -> Request:
        """The request: method, target (path and query) and headers."""

    @property
    @abc.abstractmethod
    def remote_address(self) -> Any:
        """The client's address as the socket gives it, or None."""

    @property
    @abc.abstractmethod
    def is_disconnected(self) -> bool:
        """Whether the client went away before the response ended."""

    @abc.abstractmethod
    async def read_body(self, max_bytes: int) -> bytes:
        """Return the whole request body.

        Raises:
            BodyTooLarge: the body exceeds ``max_bytes``; answer 413.
            HTTPDisconnect: the client went away.
        """

    @abc.abstractmethod
    async def respond(
        self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b""
    ) -> None:
        """Send a whole response; ``Content-Length`` is added."""

    @abc.abstractmethod
    async def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """Start a streamed response (its length unknown); `write` then `end` follow."""

    @abc.abstractmethod
    async def write(self, chunk: bytes) -> None:
        """Send part of a streamed response; waits while the client reads too slowly.

        Raises:
            HTTPDisconnect: the client went away.
        """

    @abc.abstractmethod
    async def end(self) -> None:
        """Finish a streamed response."""

    @abc.abstractmethod
    async def wait_disconnected(self) -> None:
        """Return once the client has gone away (a held long-poll notices this way)."""
