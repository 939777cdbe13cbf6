"""`Presence`: who is in which room, across processes, with join and leave notifications.

Each entry lives in the backend with an expiry that the owning hub refreshes every third of
``ttl_s``; a process that dies without cleaning up loses its members' entries after ``ttl_s``.
A member whose connection vanished (no close, detected by the transport's heartbeat) is removed
by its hub as soon as the session ends, so the list is right without waiting for the expiry.
A join or leave is published on the hub's channel as a `PresenceChange`, so every process's
listeners see it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .backends.base import Backend, PresenceChange

__all__ = ["Presence"]


class Presence:
    """Presence of one hub's rooms: ``<prefix><room>`` in the backend, changes on ``channel``."""

    __slots__ = ("_backend", "_prefix", "_channel", "ttl_s", "_local", "_refresher")

    def __init__(self, backend: Backend, prefix: str, channel: str, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._backend = backend
        self._prefix = prefix
        self._channel = channel
        self.ttl_s = ttl_s
        # What this process must keep refreshing: (room, member) -> info.
        self._local: dict[tuple[str, str], Any] = {}
        self._refresher: asyncio.Task[None] | None = None

    async def join(self, room: str, member: str, info: Any = None) -> None:
        """Mark ``member`` present in ``room``; publishes a join if it was not there."""
        self._local[room, member] = info
        if await self._backend.presence_set(self._prefix + room, member, info, self.ttl_s):
            await self._backend.publish(self._channel, PresenceChange(room, member, info, True))
        self._start_refresher()

    async def leave(self, room: str, member: str) -> None:
        """Remove ``member`` from ``room``; publishes a leave if it was there."""
        info = self._local.pop((room, member), None)
        if await self._backend.presence_remove(self._prefix + room, member):
            await self._backend.publish(self._channel, PresenceChange(room, member, info, False))

    def info(self, room: str, member: str) -> Any:
        """The info a member of this process joined ``room`` with, if any."""
        return self._local.get((room, member))

    async def members(self, room: str) -> dict[str, Any]:
        """The members present in ``room`` in every process, with the info they joined with."""
        return await self._backend.presence_members(self._prefix + room)

    async def refresh(self) -> None:
        """Extend the expiry of every entry this process owns."""
        for (room, member), info in tuple(self._local.items()):
            await self._backend.presence_set(self._prefix + room, member, info, self.ttl_s)

    def _start_refresher(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        while self._local:
            await asyncio.sleep(self.ttl_s / 3)
            await self.refresh()

    async def close(self) -> None:
        """Stop refreshing (entries then expire unless removed)."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
