"""Presence: refresh while alive, expiry when a process dies, prompt removal on a vanished peer."""

from __future__ import annotations

import asyncio

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


async def test_refresher_keeps_entries_alive() -> None:
    backend = MemoryBackend()
    presence = Presence(backend, "p:", "c", ttl_s=0.15)
    await presence.join("r", "a")
    await asyncio.sleep(0.4)
    assert await presence.members("r") == {"a": None}
    await presence.leave("r", "a")
    assert await presence.members("r") == {}
    await presence.close()


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
