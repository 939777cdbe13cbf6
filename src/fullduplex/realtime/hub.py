"""`Hub`: rooms, broadcast, presence, per-connection data and history, for any protocol.

Theory of operation: a hub is one group of members (one Socket.IO namespace, one chat) in one
process. A protocol adapter (the Socket.IO server, a SockJS handler) `add`s each connection as
a member with a ``deliver`` callback and per-connection ``data``; the hub never sees a socket,
a frame or a transport. `broadcast` records the event in history (unless volatile) to get an
offset, then publishes it on the hub's backend channel. Every process's hub receives it from
its subscription, picks its local members that it reaches (`Rooms.targets`) and calls their
``deliver`` synchronously: the adapter encodes and queues it, and applies its slow-consumer
policy there, so one slow member never delays the others.

Two adapters that share a `Hub` share its rooms, presence and history: a Socket.IO client and
a SockJS client in the same chat room see each other's messages.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .backends.base import Backend, Broadcast, ChannelMessage, PresenceChange, Subscription
from .backends.memory import MemoryBackend
from .history import History
from .presence import Presence
from .rooms import Rooms

__all__ = ["Hub", "Member", "Deliver", "PresenceListener", "new_member_id"]

Deliver = Callable[[Broadcast], None]
PresenceListener = Callable[[PresenceChange], None]


def new_member_id() -> str:
    """A random, URL-safe member id (120 bits: nobody guesses another client's)."""
    return secrets.token_urlsafe(15)


@dataclass(slots=True, eq=False)
class Member:
    """One connection in a hub: its id, how to reach it, and data the application keeps on it."""

    id: str
    deliver: Deliver
    data: dict[str, Any] = field(default_factory=dict)


class Hub:
    """One group of members and their rooms, in this process, over a shared `Backend`.

    Args:
        name: names the hub's channel, streams and presence keys in the backend; hubs with the
            same name in several processes form one group.
        backend: shared state; a new `MemoryBackend` (this process only) by default.
        presence_ttl_s: how long a presence entry outlives its process (refreshed meanwhile).
    """

    __slots__ = (
        "name",
        "backend",
        "_rooms",
        "_members",
        "history",
        "_presence",
        "_presence_listeners",
        "_subscription",
        "_starting",
    )

    def __init__(
        self,
        name: str = "/",
        backend: Backend | None = None,
        *,
        presence_ttl_s: float = 30.0,
    ) -> None:
        self.name = name
        self.backend = backend if backend is not None else MemoryBackend()
        self._rooms = Rooms()
        self._members: dict[str, Member] = {}
        self.history = History(self.backend, f"history:{name}:")
        """Recorded broadcasts, by room; see `History`."""
        self._presence = Presence(self.backend, f"presence:{name}:", self.channel, presence_ttl_s)
        self._presence_listeners: list[PresenceListener] = []
        self._subscription: Subscription | None = None
        self._starting: asyncio.Lock | None = None

    @property
    def channel(self) -> str:
        """The backend channel this hub publishes on and listens to."""
        return f"hub:{self.name}"

    async def start(self) -> None:
        """Subscribe to the hub's channel; idempotent, and done by `add` when needed."""
        if self._subscription is not None:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._subscription is None:
                self._subscription = await self.backend.subscribe(self.channel, self._receive)

    async def close(self) -> None:
        """Stop receiving broadcasts and refreshing presence; members stay as they are."""
        if self._subscription is not None:
            await self._subscription.close()
            self._subscription = None
        await self._presence.close()

    # --- members and rooms ---

    async def add(
        self, member_id: str, deliver: Deliver, data: dict[str, Any] | None = None
    ) -> Member:
        """Add a connection; it is in the room named ``member_id`` until `remove`.

        Raises:
            ValueError: ``member_id`` is already a member here.
        """
        await self.start()
        self._rooms.add_member(member_id)
        member = self._members[member_id] = Member(member_id, deliver, data or {})
        return member

    async def remove(self, member_id: str) -> frozenset[str]:
        """Remove a connection, leaving its rooms (presence leaves are published).

        Returns:
            The rooms it was in, its own room included.
        """
        self._members.pop(member_id, None)
        rooms = self._rooms.remove_member(member_id)
        for room in rooms:
            if room != member_id:
                await self._presence.leave(room, member_id)
        return rooms

    def member(self, member_id: str) -> Member | None:
        """The local member with this id, if any."""
        return self._members.get(member_id)

    @property
    def members(self) -> dict[str, Member]:
        """This process's members by id (a copy)."""
        return dict(self._members)

    async def join(self, member_id: str, room: str, info: Any = None) -> None:
        """Put a local member in ``room`` and mark it present there with ``info``.

        Raises:
            KeyError: ``member_id`` is not a member of this hub in this process.
        """
        if member_id not in self._rooms:
            raise KeyError(member_id)
        if self._rooms.join(member_id, room) and room != member_id:
            await self._presence.join(room, member_id, info)

    async def leave(self, member_id: str, room: str) -> None:
        """Take a local member out of ``room``; its own room cannot be left."""
        if room != member_id and self._rooms.leave(member_id, room):
            await self._presence.leave(room, member_id)

    def presence_info(self, member_id: str, room: str) -> Any:
        """What a local member joined ``room`` with (None if it gave nothing or is not there)."""
        return self._presence.info(room, member_id)

    def rooms_of(self, member_id: str) -> frozenset[str]:
        """The rooms a local member is in, its own included."""
        return self._rooms.rooms_of(member_id)

    def local_members_of(self, room: str) -> frozenset[str]:
        """The members of ``room`` in this process (use `presence` for every process)."""
        return self._rooms.members_of(room)

    # --- broadcast ---

    async def broadcast(
        self,
        event: str,
        *args: Any,
        to: Iterable[str] = (),
        except_rooms: Iterable[str] = (),
        volatile: bool = False,
        record: bool = True,
    ) -> Broadcast:
        """Send ``event`` with ``args`` to the members of rooms ``to`` (everyone when empty).

        Args:
            except_rooms: members in any of these rooms are skipped; pass the sender's id to
                reach everyone but the sender.
            volatile: may be dropped for a member that cannot take it now; never recorded.
            record: keep it in history (for recovery and room backlogs); ignored if volatile.

        Returns:
            The broadcast as published, with its ``offset`` when it was recorded.
        """
        message = Broadcast(event, tuple(args), frozenset(to), frozenset(except_rooms), volatile)
        if record and not volatile:
            message = await self.history.record(message)
        await self.backend.publish(self.channel, message)
        return message

    def deliver_local(self, message: Broadcast) -> None:
        """Hand ``message`` to each local member it reaches (what a received broadcast does)."""
        members = self._members
        for member_id in self._rooms.targets(message):
            member = members.get(member_id)
            if member is not None:
                member.deliver(message)

    def _receive(self, message: ChannelMessage) -> None:
        if isinstance(message, Broadcast):
            self.deliver_local(message)
        else:
            for listener in tuple(self._presence_listeners):
                listener(message)

    # --- presence ---

    async def presence(self, room: str) -> dict[str, Any]:
        """Who is in ``room`` across processes, with the info each joined with."""
        return await self._presence.members(room)

    def on_presence(self, listener: PresenceListener) -> Callable[[], None]:
        """Call ``listener`` (which must not block) on every join and leave in this hub.

        Returns:
            A function that removes the listener.
        """
        self._presence_listeners.append(listener)
        return lambda: self._presence_listeners.remove(listener)
