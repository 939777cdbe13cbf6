"""`MemoryBackend`: the `Backend` for one process, the embedded default.

Memory is bounded: each history stream keeps at most ``history_size`` entries, and entries
(and whole streams) older than ``history_ttl_s`` go; presence entries and saved sessions expire
after their time to live. Expired data is dropped lazily, when a call touches it or when a
later write walks past it, so there is no timer task.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Any

from .base import Backend, Broadcast, ChannelMessage, Offset, Receiver, Subscription

__all__ = ["MemoryBackend"]


class _Stream:
    __slots__ = ("entries", "dropped_through", "last_append")

    def __init__(self) -> None:
        # (offset number, time appended, entry)
        self.entries: deque[tuple[int, float, Broadcast]] = deque()
        # The highest offset this stream no longer holds: a reader behind it has a gap.
        self.dropped_through = 0
        self.last_append = 0.0


class _MemorySubscription(Subscription):
    __slots__ = ("_backend", "_channel", "_receiver")

    def __init__(self, backend: MemoryBackend, channel: str, receiver: Receiver) -> None:
        self._backend = backend
        self._channel = channel
        self._receiver = receiver

    async def close(self) -> None:
        receivers = self._backend._receivers.get(self._channel)
        if receivers is not None and self._receiver in receivers:
            receivers.remove(self._receiver)
            if not receivers:
                del self._backend._receivers[self._channel]


class MemoryBackend(Backend):
    """Pub/sub, history, presence and sessions in this process's memory.

    Args:
        history_size: entries kept per stream (per room); older ones are dropped.
        history_ttl_s: how long an entry is kept; a stream with nothing newer goes entirely.
        clock: seconds, monotonic; tests pass a fake one.
    """

    __slots__ = (
        "_receivers",
        "_streams",
        "_next_offset",
        "_presence",
        "_sessions",
        "_expired_through",
        "history_size",
        "history_ttl_s",
        "_clock",
    )

    def __init__(
        self,
        *,
        history_size: int = 100,
        history_ttl_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.history_size = history_size
        self.history_ttl_s = history_ttl_s
        self._clock = clock
        self._receivers: dict[str, list[Receiver]] = {}
        # Streams ordered by last append, so that stale ones are found at the front.
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._next_offset = 1
        self._expired_through = 0
        self._presence: dict[str, dict[str, tuple[Any, float]]] = {}
        # Sessions ordered by expiry (every save uses "now + ttl" with a similar ttl).
        self._sessions: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()

    # --- publish / subscribe ---

    async def publish(self, channel: str, message: ChannelMessage) -> None:
        """Call every receiver of ``channel`` now, in subscription order."""
        for receiver in tuple(self._receivers.get(channel, ())):
            receiver(message)

    async def subscribe(self, channel: str, receiver: Receiver) -> Subscription:
        """Attach ``receiver`` to ``channel``."""
        self._receivers.setdefault(channel, []).append(receiver)
        return _MemorySubscription(self, channel, receiver)

    # --- history ---

    async def append(self, streams: Collection[str], entry: Broadcast) -> Broadcast:
        """Record ``entry`` in ``streams`` under the next offset."""
        number = self._next_offset
        self._next_offset += 1
        now = self._clock()
        entry = replace(entry, offset=Offset(str(number)))
        for name in streams:
            stream = self._streams.get(name)
            if stream is None:
                stream = self._streams[name] = _Stream()
            else:
                self._streams.move_to_end(name)
            stream.entries.append((number, now, entry))
            stream.last_append = now
            while len(stream.entries) > self.history_size:
                stream.dropped_through = stream.entries.popleft()[0]
        self._drop_stale_streams(now)
        return entry

    async def read_since(self, streams: Collection[str], offset: str) -> list[Broadcast] | None:
        """Merge the entries after ``offset``; None when ``offset`` is unknown or a gap exists."""
        if not offset.isdigit() or len(offset) > 18:
            return None
        after = int(offset)
        if not 0 < after < self._next_offset:
            return None
        now = self._clock()
        self._drop_stale_streams(now)
        # Entries expire in offset order: a reader behind an expired one may have missed some
        # in a stream that is gone entirely.
        if after < self._expired_through:
            return None
        found: dict[int, Broadcast] = {}
        for name in streams:
            stream = self._streams.get(name)
            if stream is None:
                continue
            self._expire(stream, now)
            if stream.dropped_through > after:
                return None
            for number, _, entry in reversed(stream.entries):
                if number <= after:
                    break
                found[number] = entry
        return [found[number] for number in sorted(found)]

    async def read_last(self, stream: str, limit: int) -> list[Broadcast]:
        """The newest ``limit`` entries of ``stream``, oldest first."""
        held = self._streams.get(stream)
        if held is None or limit <= 0:
            return []
        self._expire(held, self._clock())
        return [entry for _, _, entry in list(held.entries)[-limit:]]

    def _expire(self, stream: _Stream, now: float) -> None:
        horizon = now - self.history_ttl_s
        while stream.entries and stream.entries[0][1] < horizon:
            number = stream.entries.popleft()[0]
            stream.dropped_through = number
            self._expired_through = max(self._expired_through, number)

    def _drop_stale_streams(self, now: float) -> None:
        horizon = now - self.history_ttl_s
        while self._streams:
            name, stream = next(iter(self._streams.items()))
            if stream.last_append >= horizon:
                break
            del self._streams[name]
            if stream.entries:
                self._expired_through = max(self._expired_through, stream.entries[-1][0])

    # --- presence ---

    async def presence_set(self, room: str, member: str, info: Any, ttl_s: float) -> bool:
        """Add or refresh ``member`` in ``room`` until now + ``ttl_s``."""
        members = self._presence.setdefault(room, {})
        previous = members.get(member)
        now = self._clock()
        members[member] = (info, now + ttl_s)
        return previous is None or previous[1] <= now

    async def presence_remove(self, room: str, member: str) -> bool:
        """Remove ``member``; an expired entry counts as absent."""
        members = self._presence.get(room)
        if members is None:
            return False
        entry = members.pop(member, None)
        if not members:
            del self._presence[room]
        return entry is not None and entry[1] > self._clock()

    async def presence_members(self, room: str) -> dict[str, Any]:
        """Live members of ``room``; expired ones are removed on the way."""
        members = self._presence.get(room)
        if members is None:
            return {}
        now = self._clock()
        expired = [member for member, (_, expires) in members.items() if expires <= now]
        for member in expired:
            del members[member]
        if not members:
            del self._presence[room]
            return {}
        return {member: info for member, (info, _) in members.items()}

    # --- sessions ---

    async def session_save(self, key: str, state: Mapping[str, Any], ttl_s: float) -> None:
        """Keep a copy of ``state`` until now + ``ttl_s``."""
        now = self._clock()
        while self._sessions:
            oldest_key, (_, expires) = next(iter(self._sessions.items()))
            if expires > now:
                break
            del self._sessions[oldest_key]
        self._sessions.pop(key, None)
        self._sessions[key] = (dict(state), now + ttl_s)

    async def session_take(self, key: str) -> dict[str, Any] | None:
        """Pop the state under ``key`` unless it expired."""
        saved = self._sessions.pop(key, None)
        if saved is None or saved[1] <= self._clock():
            return None
        return saved[0]
