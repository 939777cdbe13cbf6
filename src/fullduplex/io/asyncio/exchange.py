"""`HTTPExchange`: one plain HTTP request and its response, as an endpoint sees it.

Polling and streaming transports need more of HTTP than a WebSocket handshake: request bodies,
held requests, streamed responses, and knowing when the client went away. This interface is
what they use; fullduplex's own server implements it, and so does the ASGI adapter.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Callable, Iterable
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

    def call_on_disconnect(self, callback: Callable[[], object]) -> Callable[[], object]:
        """Call ``callback()`` on the event loop once the client has gone away.

        A held request (a long-poll) uses this to end early, without a task of its own
        awaiting `wait_disconnected`. The base implementation runs such a task; an exchange
        that knows when its connection ends overrides it with a plain callback.

        Returns:
            A function that cancels the call: call it once the callback is no longer wanted
            (the request was answered), so that nothing keeps it.
        """
        watcher = asyncio.ensure_future(self.wait_disconnected())
        watcher.add_done_callback(functools.partial(_call_unless_cancelled, callback))
        return watcher.cancel


def _call_unless_cancelled(callback: Callable[[], object], watcher: asyncio.Future[None]) -> None:
    """Call ``callback`` if ``watcher`` (a `wait_disconnected` task) returned."""
    if not watcher.cancelled() and watcher.exception() is None:
        callback()
