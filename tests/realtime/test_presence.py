"""Presence: refresh while alive, expiry when a process dies, prompt removal on a vanished peer."""

from __future__ import annotations

import asyncio
from typing import Any

from fullduplex.realtime import Hub, MemoryBackend
from fullduplex.realtime.presence import Presence

from .support import FakeClock


async def test_entries_of_a_dead_process_expire() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    alive = Presence(backend, "p:", "c", ttl_s=30)
    dead = Presence(backend, "p:", "c", ttl_s=30)
    await alive.join("r", "a")
    await dead.join("r", "d")
    await dead.close()  # the process stops refreshing, without removing anything
    clock.advance(20)
    await alive.refresh()
    clock.advance(20)
    assert await alive.members("r") == {"a": None}
    await alive.close()


class RefreshRecordingBackend(MemoryBackend):
    """A memory backend on a fake clock that records each `presence_set`.

    ``set_at`` receives the fake clock's time of each, ``created_at`` that of each set that
    found no live entry (a first one, or one expired meanwhile). ``overdue`` receives one entry
    each time a loop timer armed ``ttl_s`` after a set fires before the next set: in real time,
    the entry would have expired. A loop timer, not the clock, so that a loaded machine, which
    delays the refresher's timer and this one alike, cannot make a refresh overdue.
    """

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.clock = clock
        self.set_at: asyncio.Queue[float] = asyncio.Queue()
        self.created_at: list[float] = []
        self.overdue: list[float] = []
        self.deadline: asyncio.TimerHandle | None = None

    async def presence_set(self, room: str, member: str, info: Any, ttl_s: float) -> bool:
        if self.deadline is not None:
            self.deadline.cancel()
        loop = asyncio.get_running_loop()
        self.deadline = loop.call_later(ttl_s, self.overdue.append, self.clock.now)
        is_new = await super().presence_set(room, member, info, ttl_s)
        if is_new:
            self.created_at.append(self.clock.now)
        self.set_at.put_nowait(self.clock.now)
        return is_new


async def test_refresher_keeps_entries_alive() -> None:
    clock = FakeClock(now=1000.0)
    backend = RefreshRecordingBackend(clock)
    presence = Presence(backend, "p:", "c", ttl_s=0.15)  # refreshed every 0.05 s
    await presence.join("r", "a")
    # Each step stays within the TTL of the last refresh; the three add up to twice the TTL.
    for _ in range(3):
        clock.advance(0.1)
        async with asyncio.timeout(5):
            while await backend.set_at.get() < clock.now:
                pass  # a refresh from before this step
    assert await presence.members("r") == {"a": None}
    assert backend.created_at == [1000.0]  # the join's; no refresh found the entry expired
    assert backend.overdue == []
    await presence.leave("r", "a")
    assert await presence.members("r") == {}
    await presence.close()
    assert backend.deadline is not None
    backend.deadline.cancel()


async def test_member_list_is_right_as_soon_as_a_member_is_removed() -> None:
    # A vanished peer is removed when its transport reports the session ended; the list
    # must not wait for the entry to expire.
    hub = Hub("h", presence_ttl_s=3600)
    await hub.add("a", lambda message: None)
    await hub.add("b", lambda message: None)
    await hub.join("a", "r")
    await hub.join("b", "r")
    await hub.remove("b")
    assert await hub.presence("r") == {"a": None}
    await hub.close()
