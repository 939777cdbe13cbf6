"""The hub: rooms, broadcast, per-connection data, presence notifications, history."""

from __future__ import annotations

import pytest

from fullduplex.realtime import Broadcast, Hub, MemoryBackend, PresenceChange


class Inbox:
    def __init__(self) -> None:
        self.got: list[Broadcast] = []

    def __call__(self, message: Broadcast) -> None:
        self.got.append(message)

    @property
    def events(self) -> list[tuple[str, tuple[object, ...]]]:
        return [(message.event, message.args) for message in self.got]


async def hub_with(*names: str) -> tuple[Hub, dict[str, Inbox]]:
    hub = Hub("test")
    inboxes = {name: Inbox() for name in names}
    for name, inbox in inboxes.items():
        await hub.add(name, inbox, {"nick": name.upper()})
    return hub, inboxes


async def test_broadcast_to_a_room_reaches_its_members_only() -> None:
    hub, inbox = await hub_with("a", "b", "c")
    await hub.join("a", "lobby")
    await hub.join("b", "lobby")
    await hub.broadcast("say", "hi", to=["lobby"])
    assert inbox["a"].events == inbox["b"].events == [("say", ("hi",))]
    assert inbox["c"].got == []


async def test_broadcast_to_several_rooms_reaches_each_member_once() -> None:
    hub, inbox = await hub_with("a", "b", "c")
    await hub.join("a", "x")
    await hub.join("a", "y")
    await hub.join("b", "y")
    await hub.broadcast("e", to=["x", "y"])
    assert len(inbox["a"].got) == len(inbox["b"].got) == 1
    assert inbox["c"].got == []


async def test_broadcast_except_the_sender() -> None:
    hub, inbox = await hub_with("a", "b", "c")
    for name in "abc":
        await hub.join(name, "lobby")
    await hub.broadcast("e", to=["lobby"], except_rooms=["a"])
    assert [len(inbox[n].got) for n in "abc"] == [0, 1, 1]
    await hub.broadcast("everyone-but-b", except_rooms=["b"])
    assert [len(inbox[n].got) for n in "abc"] == [1, 1, 2]


async def test_a_member_is_in_its_own_room() -> None:
    hub, inbox = await hub_with("a", "b")
    await hub.broadcast("private", 1, to=["a"])
    assert inbox["a"].events == [("private", (1,))]
    assert inbox["b"].got == []
    await hub.leave("a", "a")
    assert "a" in hub.rooms_of("a")


async def test_volatile_broadcasts_are_not_recorded() -> None:
    hub, _ = await hub_with("a")
    await hub.join("a", "r")
    sent = await hub.broadcast("v", to=["r"], volatile=True)
    assert sent.volatile and sent.offset is None
    kept = await hub.broadcast("k", to=["r"])
    assert kept.offset is not None
    assert await hub.history.last("r", 10) == [kept]


async def test_per_connection_data_stays_with_the_member() -> None:
    hub, _ = await hub_with("a")
    member = hub.member("a")
    assert member is not None and member.data == {"nick": "A"}
    member.data["score"] = 3
    assert hub.members["a"].data["score"] == 3


async def test_removed_member_gets_nothing_and_leaves_its_rooms() -> None:
    hub, inbox = await hub_with("a", "b")
    await hub.join("a", "r")
    assert await hub.remove("a") == {"a", "r"}
    await hub.broadcast("e", to=["r"])
    await hub.broadcast("e")
    assert inbox["a"].got == []
    assert hub.local_members_of("r") == frozenset()
    assert await hub.presence("r") == {}


async def test_adding_a_member_twice_is_refused() -> None:
    hub, _ = await hub_with("a")
    with pytest.raises(ValueError):
        await hub.add("a", Inbox())
    with pytest.raises(KeyError):
        await hub.join("nobody", "r")


async def test_presence_lists_members_and_notifies_joins_and_leaves() -> None:
    hub, _ = await hub_with("a", "b")
    changes: list[PresenceChange] = []
    stop = hub.on_presence(changes.append)
    await hub.join("a", "r", info={"nick": "ann"})
    await hub.join("a", "r", info={"nick": "ann"})  # already there: no second notice
    await hub.join("b", "r")
    assert await hub.presence("r") == {"a": {"nick": "ann"}, "b": None}
    await hub.leave("a", "r")
    await hub.remove("b")
    assert [(c.room, c.member, c.joined) for c in changes] == [
        ("r", "a", True),
        ("r", "b", True),
        ("r", "a", False),
        ("r", "b", False),
    ]
    assert changes[2].info == {"nick": "ann"}
    stop()
    await hub.join("a", "r")
    assert len(changes) == 4


async def test_two_hubs_on_one_backend_share_rooms_presence_and_history() -> None:
    # Two processes, or two protocols (Socket.IO and SockJS) in one: same backend, same name.
    backend = MemoryBackend()
    first, second = Hub("chat", backend), Hub("chat", backend)
    a, b = Inbox(), Inbox()
    await first.add("a", a)
    await second.add("b", b)
    await first.join("a", "r")
    await second.join("b", "r")
    await first.broadcast("hello", to=["r"])
    assert a.events == b.events == [("hello", ())]
    assert set(await second.presence("r")) == {"a", "b"}
    assert len(await second.history.last("r", 10)) == 1
    other = Hub("other", backend)
    assert await other.presence("r") == {}


async def test_missed_broadcasts_are_those_that_reached_the_rooms() -> None:
    hub, _ = await hub_with("a", "b")
    await hub.join("a", "r")
    mark = await hub.broadcast("before", to=["r"])
    assert mark.offset is not None
    one = await hub.broadcast("one", to=["r"])
    await hub.broadcast("elsewhere", to=["s"])
    everyone = await hub.broadcast("all")
    await hub.broadcast("not-to-a", except_rooms=["a"])
    private = await hub.broadcast("private", to=["a"])
    assert await hub.history.missed(hub.rooms_of("a"), mark.offset) == [one, everyone, private]
    assert await hub.history.missed(hub.rooms_of("a"), "nonsense") is None


async def test_closed_hub_receives_no_broadcasts() -> None:
    hub, inbox = await hub_with("a")
    await hub.close()
    await hub.broadcast("e")
    assert inbox["a"].got == []
