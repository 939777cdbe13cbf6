"""`Rooms`: which of this process's members are in which rooms.

A pure index, both ways, with no I/O: the hub asks it who should get a broadcast. Every member
is in the room named after its own id from `add` to `remove`, so that a message to one member
is a broadcast to that room (and is recorded like any other for recovery).
"""

from __future__ import annotations

from collections.abc import Iterator

from .backends.base import Broadcast

__all__ = ["Rooms"]


class Rooms:
    """Members and rooms of one hub in this process."""

    __slots__ = ("_rooms_of", "_members_of")

    def __init__(self) -> None:
        self._rooms_of: dict[str, set[str]] = {}
        self._members_of: dict[str, set[str]] = {}

    def add_member(self, member: str) -> None:
        """Start tracking ``member``, in its own room.

        Raises:
            ValueError: ``member`` is already here.
        """
        if member in self._rooms_of:
            raise ValueError(f"member {member!r} is already in this hub")
        self._rooms_of[member] = set()
        self.join(member, member)

    def remove_member(self, member: str) -> frozenset[str]:
        """Forget ``member``; returns the rooms it was in (its own included)."""
        rooms = self._rooms_of.pop(member, set())
        for room in rooms:
            members = self._members_of[room]
            members.discard(member)
            if not members:
                del self._members_of[room]
        return frozenset(rooms)

    def join(self, member: str, room: str) -> bool:
        """Put ``member`` in ``room``; returns False if it already was there."""
        rooms = self._rooms_of[member]
        if room in rooms:
            return False
        rooms.add(room)
        self._members_of.setdefault(room, set()).add(member)
        return True

    def leave(self, member: str, room: str) -> bool:
        """Take ``member`` out of ``room``; returns False if it was not there."""
        rooms = self._rooms_of.get(member)
        if rooms is None or room not in rooms:
            return False
        rooms.discard(room)
        members = self._members_of[room]
        members.discard(member)
        if not members:
            del self._members_of[room]
        return True

    def __contains__(self, member: object) -> bool:
        return member in self._rooms_of

    def __len__(self) -> int:
        return len(self._rooms_of)

    def rooms_of(self, member: str) -> frozenset[str]:
        """The rooms ``member`` is in (empty if unknown)."""
        return frozenset(self._rooms_of.get(member, ()))

    def members_of(self, room: str) -> frozenset[str]:
        """The local members in ``room``."""
        return frozenset(self._members_of.get(room, ()))

    def all_rooms(self) -> frozenset[str]:
        """Every room with at least one local member."""
        return frozenset(self._members_of)

    def targets(self, broadcast: Broadcast) -> Iterator[str]:
        """The local members ``broadcast`` reaches, each once."""
        if broadcast.rooms:
            if len(broadcast.rooms) == 1:
                (room,) = broadcast.rooms
                candidates: set[str] | dict[str, set[str]] = self._members_of.get(room, set())
            else:
                candidates = set()
                for room in broadcast.rooms:
                    candidates |= self._members_of.get(room, set())
        else:
            candidates = self._rooms_of
        excluded: set[str] = set()
        for room in broadcast.except_rooms:
            excluded |= self._members_of.get(room, set())
        for member in tuple(candidates):
            if member not in excluded:
                yield member
