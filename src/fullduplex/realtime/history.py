"""`History`: recorded broadcasts of one hub, read back for recovery and for a room's backlog.

A broadcast to rooms is recorded once, under one offset, in the stream of each room it was sent
to; a broadcast to everyone goes to the `EVERYONE` stream. A member that was in rooms ``R``
(its own room among them) and last saw offset ``o`` missed exactly the entries after ``o`` in
the streams of ``R`` and `EVERYONE` that `Broadcast.reaches` it; the backend merges the streams
in offset order and says when it cannot fill the gap any more.
"""

from __future__ import annotations

from collections.abc import Collection

from .backends.base import EVERYONE, Backend, Broadcast

__all__ = ["History"]


class History:
    """The streams of one hub, named ``<prefix><room>`` in the backend."""

    __slots__ = ("_backend", "_prefix")

    def __init__(self, backend: Backend, prefix: str) -> None:
        self._backend = backend
        self._prefix = prefix

    async def record(self, broadcast: Broadcast) -> Broadcast:
        """Append ``broadcast`` to its streams; returns it with its offset set."""
        rooms = broadcast.rooms or (EVERYONE,)
        return await self._backend.append([self._prefix + room for room in rooms], broadcast)

    async def missed(self, rooms: Collection[str], offset: str) -> list[Broadcast] | None:
        """The recorded broadcasts after ``offset`` that a member in ``rooms`` would have got.

        Returns:
            None when they cannot all be found any more (unknown or too old an offset).
        """
        streams = [self._prefix + room for room in (*rooms, EVERYONE)]
        entries = await self._backend.read_since(streams, offset)
        if entries is None:
            return None
        return [entry for entry in entries if entry.reaches(rooms)]

    async def last(self, room: str, limit: int) -> list[Broadcast]:
        """Up to ``limit`` of the latest broadcasts sent to ``room``, oldest first."""
        return await self._backend.read_last(self._prefix + room, limit)
