"""The local room index: both directions stay consistent; targets honour rooms and exceptions."""

from __future__ import annotations

import pytest

from fullduplex.realtime import Broadcast
from fullduplex.realtime.rooms import Rooms


def rooms_with(**membership: str) -> Rooms:
    rooms = Rooms()
    for member, names in membership.items():
        rooms.add_member(member)
        for room in names.split():
            rooms.join(member, room)
    return rooms


def targets(rooms: Rooms, to: str = "", but: str = "") -> set[str]:
    message = Broadcast("e", (), frozenset(to.split()), frozenset(but.split()))
    found = list(rooms.targets(message))
    assert len(found) == len(set(found)), "a member was targeted twice"
    return set(found)


def test_targets_of_a_room_several_rooms_and_everyone() -> None:
    rooms = rooms_with(a="x y", b="y", c="")
    assert targets(rooms, "x") == {"a"}
    assert targets(rooms, "x y") == {"a", "b"}
    assert targets(rooms) == {"a", "b", "c"}
    assert targets(rooms, "nobody-here") == set()


def test_targets_skip_excepted_rooms_and_members() -> None:
    rooms = rooms_with(a="x y", b="y", c="")
    assert targets(rooms, "y", but="a") == {"b"}
    assert targets(rooms, but="x") == {"b", "c"}


def test_index_stays_consistent_both_ways() -> None:
    rooms = rooms_with(a="x", b="x")
    assert rooms.members_of("x") == {"a", "b"}
    assert not rooms.join("a", "x")
    assert rooms.leave("a", "x")
    assert not rooms.leave("a", "x")
    assert rooms.members_of("x") == {"b"}
    assert rooms.remove_member("b") == {"b", "x"}
    assert rooms.all_rooms() == {"a"}
    assert "b" not in rooms and len(rooms) == 1
    assert rooms.rooms_of("b") == frozenset()
    assert not rooms.leave("nobody", "x")


def test_a_member_is_added_once() -> None:
    rooms = rooms_with(a="")
    with pytest.raises(ValueError):
        rooms.add_member("a")
