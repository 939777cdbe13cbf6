"""History: one record per broadcast in each addressed room's stream; what a member missed."""

from __future__ import annotations

from fullduplex.realtime import Broadcast, MemoryBackend
from fullduplex.realtime.history import History


def broadcast(name: str, to: str = "", but: str = "") -> Broadcast:
    return Broadcast(name, (), frozenset(to.split()), frozenset(but.split()))


async def test_a_room_backlog_holds_what_was_sent_to_it() -> None:
    history = History(MemoryBackend(), "h:")
    first = await history.record(broadcast("one", "r"))
    await history.record(broadcast("elsewhere", "s"))
    both = await history.record(broadcast("both", "r s"))
    await history.record(broadcast("everyone"))
    assert await history.last("r", 10) == [first, both]
    assert await history.last("r", 1) == [both]


async def test_missed_merges_rooms_and_everyone_and_drops_exceptions() -> None:
    history = History(MemoryBackend(), "h:")
    mark = await history.record(broadcast("mark"))
    assert mark.offset is not None
    to_room = await history.record(broadcast("to-room", "r"))
    both = await history.record(broadcast("both", "r me"))
    await history.record(broadcast("not-me", "r", but="me"))
    everyone = await history.record(broadcast("everyone"))
    await history.record(broadcast("other-room", "s"))
    assert await history.missed({"me", "r"}, mark.offset) == [to_room, both, everyone]


async def test_two_prefixes_do_not_share_streams() -> None:
    backend = MemoryBackend()
    one, two = History(backend, "one:"), History(backend, "two:")
    await one.record(broadcast("e", "r"))
    assert await two.last("r", 10) == []
