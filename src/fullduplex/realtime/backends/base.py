"""The `Backend` interface: everything the hub keeps that must be shared between processes.

A hub in one process knows its own members and which rooms they joined; that index never
leaves the process. What other processes must see goes through the backend:

- **publish / subscribe**: a broadcast made in one process reaches the members of every
  process subscribed to the same channel (in Redis: PUBLISH / SUBSCRIBE);
- **history**: bounded streams of recorded broadcasts with totally ordered offsets, read back
  from an offset for connection-state recovery or the last N for a room's history
  (in Redis: streams, XADD with MAXLEN, XRANGE);
- **presence**: who is in a room, each entry with an expiry that its owner refreshes, so that
  the members of a process that died disappear on their own (in Redis: a sorted set per room
  scored by expiry time);
- **sessions**: the state of a disconnected client kept for a while, so that it can be
  recovered by whichever process the client reconnects to (in Redis: SET with EX, GETDEL).

Every value that crosses a backend must be made of JSON types and ``bytes``; the in-memory
backend keeps references, the Redis one will serialize. Offsets are opaque strings that a
backend compares; a client sends them back as it got them, so a backend validates them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NewType

__all__ = [
    "Offset",
    "Broadcast",
    "PresenceChange",
    "ChannelMessage",
    "Receiver",
    "Subscription",
    "Backend",
    "EVERYONE",
]

Offset = NewType("Offset", str)
"""A position in history, totally ordered across the streams of one backend."""

EVERYONE = "*"
"""The history stream of broadcasts addressed to every member rather than to rooms."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One event for members of a hub, as it crosses processes.

    ``rooms`` empty means every member of the hub; a member is in ``rooms`` when it joined one
    of them (every member is in the room named after its own id). Members in any of
    ``except_rooms`` are skipped. ``offset`` is set once the broadcast was recorded in history;
    volatile broadcasts are never recorded and may be dropped for a slow member.
    """

    event: str
    args: tuple[Any, ...]
    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    volatile: bool = False
    offset: Offset | None = None

    def reaches(self, rooms: Collection[str]) -> bool:
        """Return whether a member in ``rooms`` (its own id among them) is addressed."""
        if self.except_rooms and not self.except_rooms.isdisjoint(rooms):
            return False
        return not self.rooms or not self.rooms.isdisjoint(rooms)


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """A member joined (``joined``) or left a room; ``info`` is what it joined with."""

    room: str
    member: str
    info: Any
    joined: bool


ChannelMessage = Broadcast | PresenceChange
Receiver = Callable[[ChannelMessage], None]


class Subscription(abc.ABC):
    """A receiver attached to a channel; `close` detaches it."""

    __slots__ = ()

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop delivering to the receiver; idempotent."""


class Backend(abc.ABC):
    """Shared state for hubs: pub/sub, history streams, presence with expiry, sessions.

    Implementations: `fullduplex.realtime.backends.memory.MemoryBackend` (one process, the
    default). Every method may suspend; none may block the event loop. Errors of a remote
    store are raised as `fullduplex.exceptions.FullDuplexError` subclasses, never as the
    client library's own.
    """

    __slots__ = ()

    # --- publish / subscribe ---

    @abc.abstractmethod
    async def publish(self, channel: str, message: ChannelMessage) -> None:
        """Deliver ``message`` to every receiver subscribed to ``channel``, in every process.

        Messages published by one caller reach each receiver in the order they were published.
        """

    @abc.abstractmethod
    async def subscribe(self, channel: str, receiver: Receiver) -> Subscription:
        """Call ``receiver`` (which must not block) with each message published on ``channel``."""

    # --- history ---

    @abc.abstractmethod
    async def append(self, streams: Collection[str], entry: Broadcast) -> Broadcast:
        """Record ``entry`` once in each of ``streams`` under one new offset.

        Returns:
            ``entry`` with its ``offset`` set. Offsets grow with each append.
        """

    @abc.abstractmethod
    async def read_since(self, streams: Collection[str], offset: str) -> list[Broadcast] | None:
        """Return the entries of ``streams`` recorded after ``offset``, in offset order, once each.

        Returns:
            None when the gap cannot be filled: ``offset`` is not one this backend issued, or a
            stream dropped entries after it (trimmed or expired). The caller then starts afresh.
        """

    @abc.abstractmethod
    async def read_last(self, stream: str, limit: int) -> list[Broadcast]:
        """Return up to ``limit`` of the most recent entries of ``stream``, oldest first."""

    # --- presence ---

    @abc.abstractmethod
    async def presence_set(self, room: str, member: str, info: Any, ttl_s: float) -> bool:
        """Mark ``member`` present in ``room`` for ``ttl_s`` seconds (refresh by calling again).

        Returns:
            True when the member was not present before (a join), False for a refresh.
        """

    @abc.abstractmethod
    async def presence_remove(self, room: str, member: str) -> bool:
        """Remove ``member`` from ``room``; returns whether it was present."""

    @abc.abstractmethod
    async def presence_members(self, room: str) -> dict[str, Any]:
        """Return the members present in ``room`` (expired entries excluded) and their info."""

    # --- sessions kept for recovery ---

    @abc.abstractmethod
    async def session_save(self, key: str, state: Mapping[str, Any], ttl_s: float) -> None:
        """Keep ``state`` under ``key`` for ``ttl_s`` seconds."""

    @abc.abstractmethod
    async def session_take(self, key: str) -> dict[str, Any] | None:
        """Remove and return the state under ``key``; None if absent or expired."""

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections to a remote store; the memory backend has none."""
