"""The `Backend` contract, run against every implementation (memory now; Redis later)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from fullduplex.realtime.backends import Backend, Broadcast, MemoryBackend, PresenceChange

from ..support import FakeClock

HISTORY_SIZE = 5
HISTORY_TTL_S = 60.0


@dataclass
class Subject:
    backend: Backend
    clock: FakeClock


def memory_backend(clock: FakeClock) -> Backend:
    return MemoryBackend(history_size=HISTORY_SIZE, history_ttl_s=HISTORY_TTL_S, clock=clock)


FACTORIES: dict[str, Callable[[FakeClock], Backend]] = {"memory": memory_backend}


@pytest.fixture(params=sorted(FACTORIES))
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    clock = FakeClock()
    backend = FACTORIES[request.param](clock)
    yield Subject(backend, clock)
    await backend.close()


def event(n: int, *rooms: str) -> Broadcast:
    return Broadcast("e", (n,), frozenset(rooms))


async def test_publish_reaches_every_subscriber_in_order(subject: Subject) -> None:
    got_a: list[object] = []
    got_b: list[object] = []
    await subject.backend.subscribe("c", got_a.append)
    await subject.backend.subscribe("c", got_b.append)
    await subject.backend.subscribe("other", lambda m: pytest.fail("wrong channel"))
    messages = [event(n) for n in range(3)] + [PresenceChange("r", "m", None, True)]
    for message in messages:
        await subject.backend.publish("c", message)
    await asyncio.sleep(0)
    assert got_a == messages
    assert got_b == messages


async def test_closed_subscription_receives_nothing(subject: Subject) -> None:
    got: list[object] = []
    subscription = await subject.backend.subscribe("c", got.append)
    await subscription.close()
    await subscription.close()
    await subject.backend.publish("c", event(1))
    assert got == []


async def test_append_sets_growing_offsets(subject: Subject) -> None:
    first = await subject.backend.append(["a"], event(1))
    second = await subject.backend.append(["b"], event(2))
    assert first.offset is not None and second.offset is not None
    assert first.offset != second.offset
    assert await subject.backend.read_since(["a", "b"], first.offset) == [second]


async def test_read_since_merges_streams_in_offset_order_once_each(subject: Subject) -> None:
    start = await subject.backend.append(["x"], event(0))
    assert start.offset is not None
    one = await subject.backend.append(["a"], event(1))
    both = await subject.backend.append(["a", "b"], event(2))
    three = await subject.backend.append(["b"], event(3))
    await subject.backend.append(["c"], event(4))
    assert await subject.backend.read_since(["b", "a"], start.offset) == [one, both, three]


async def test_read_since_the_newest_offset_is_empty(subject: Subject) -> None:
    last = await subject.backend.append(["a"], event(1))
    assert last.offset is not None
    assert await subject.backend.read_since(["a"], last.offset) == []


@pytest.mark.parametrize("offset", ["", "abc", "-1", "0", "999999", "1" * 40, "٣"])
async def test_read_since_an_unknown_offset_is_a_gap(subject: Subject, offset: str) -> None:
    await subject.backend.append(["a"], event(1))
    assert await subject.backend.read_since(["a"], offset) is None


async def test_read_since_behind_trimmed_entries_is_a_gap(subject: Subject) -> None:
    first = await subject.backend.append(["a"], event(0))
    assert first.offset is not None
    for n in range(HISTORY_SIZE + 1):
        await subject.backend.append(["a"], event(n + 1))
    # The entry right after `first` was trimmed: it cannot be replayed.
    assert await subject.backend.read_since(["a"], first.offset) is None
    kept = await subject.backend.read_last("a", 100)
    assert len(kept) == HISTORY_SIZE
    assert kept[0].offset is not None
    assert await subject.backend.read_since(["a"], kept[0].offset) == kept[1:]


async def test_read_since_behind_expired_entries_is_a_gap(subject: Subject) -> None:
    first = await subject.backend.append(["a"], event(0))
    await subject.backend.append(["gone"], event(1))
    assert first.offset is not None
    subject.clock.advance(HISTORY_TTL_S + 1)
    await subject.backend.append(["b"], event(2))
    assert await subject.backend.read_since(["a"], first.offset) is None
    assert await subject.backend.read_last("gone", 10) == []


async def test_read_last_is_oldest_first(subject: Subject) -> None:
    entries = [await subject.backend.append(["a"], event(n)) for n in range(3)]
    assert await subject.backend.read_last("a", 2) == entries[1:]
    assert await subject.backend.read_last("a", 0) == []
    assert await subject.backend.read_last("nothing", 5) == []


async def test_presence_set_tells_join_from_refresh(subject: Subject) -> None:
    assert await subject.backend.presence_set("r", "m1", {"nick": "ann"}, 10)
    assert not await subject.backend.presence_set("r", "m1", {"nick": "ann"}, 10)
    assert await subject.backend.presence_set("r", "m2", None, 10)
    assert await subject.backend.presence_members("r") == {"m1": {"nick": "ann"}, "m2": None}


async def test_presence_remove(subject: Subject) -> None:
    await subject.backend.presence_set("r", "m1", None, 10)
    assert await subject.backend.presence_remove("r", "m1")
    assert not await subject.backend.presence_remove("r", "m1")
    assert not await subject.backend.presence_remove("nowhere", "m1")
    assert await subject.backend.presence_members("r") == {}


async def test_presence_expires_unless_refreshed(subject: Subject) -> None:
    await subject.backend.presence_set("r", "stays", None, 10)
    await subject.backend.presence_set("r", "dies", None, 10)
    subject.clock.advance(8)
    await subject.backend.presence_set("r", "stays", None, 10)
    subject.clock.advance(3)
    assert await subject.backend.presence_members("r") == {"stays": None}
    # An expired member that comes back is a new join.
    assert await subject.backend.presence_set("r", "dies", None, 10)


async def test_session_is_taken_once(subject: Subject) -> None:
    await subject.backend.session_save("k", {"rooms": ["a"]}, 5)
    assert await subject.backend.session_take("k") == {"rooms": ["a"]}
    assert await subject.backend.session_take("k") is None


async def test_session_expires(subject: Subject) -> None:
    await subject.backend.session_save("old", {"n": 1}, 5)
    subject.clock.advance(6)
    await subject.backend.session_save("new", {"n": 2}, 5)
    assert await subject.backend.session_take("old") is None
    assert await subject.backend.session_take("new") == {"n": 2}
