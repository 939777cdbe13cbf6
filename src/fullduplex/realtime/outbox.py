"""`Outbox`: one connection's bounded send queue, and the slow-consumer policy.

A broadcast must never wait for its slowest recipient, and a recipient that reads too slowly
must never make the server's memory grow without bound. So every message for a connection goes
into its outbox without waiting, and one writer task per connection drains it into the
`Session` (whose ``send`` waits while the peer reads slowly).

Slow-consumer policy:

1. a *volatile* message is dropped when the writer is behind (``volatile_backlog`` messages or
   more already queued); volatile means "only if it can go now";
2. any other message that would take the queue past ``max_messages`` or ``max_bytes`` is not
   queued, and the connection is closed (``on_overflow`` is called once, then every later
   message is refused). Nothing reliable is ever dropped silently: a client with recovery
   enabled reconnects and is replayed what it missed from history; one without it is told by
   the disconnection.

Messages that travel together (a binary packet and its attachments) are queued all or none.
A reply that the connection's own handler sends (an ack) may skip the queue with `send` when
the queue is empty: it is written at once, and only that handler waits for the peer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

from ..exceptions import ConnectionClosed
from ..transports.base import Session

__all__ = ["Outbox"]


class Outbox:
    """A bounded queue of messages for one `Session`, written by `run`.

    Args:
        session: where the messages go.
        on_overflow: called once when a reliable message does not fit; it should close the
            session. It must not block.
        max_messages: most messages queued at once.
        max_bytes: most characters/bytes queued at once (text counts one per character).
        volatile_backlog: volatile messages are dropped once this many messages are queued.
    """

    __slots__ = (
        "_session",
        "_on_overflow",
        "max_messages",
        "max_bytes",
        "volatile_backlog",
        "_queue",
        "_queued_bytes",
        "_ready",
        "is_overflowed",
        "is_closed",
        "_writing",
        "dropped_volatile",
    )

    def __init__(
        self,
        session: Session,
        on_overflow: Callable[[], None],
        *,
        max_messages: int = 1024,
        max_bytes: int = 4 * 1024 * 1024,
        volatile_backlog: int = 32,
    ) -> None:
        self._session = session
        self._on_overflow = on_overflow
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.volatile_backlog = volatile_backlog
        self._queue: deque[str | bytes] = deque()
        self._queued_bytes = 0
        self._ready = asyncio.Event()
        self.is_overflowed = False
        """Whether a reliable message did not fit: the connection is being closed."""
        self.is_closed = False
        """Whether `close` was called; nothing more is queued."""
        self.dropped_volatile = 0
        """How many volatile messages were dropped."""
        # True while the writer task or an inline `send` is writing: one writer at a time.
        self._writing = False

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, messages: Sequence[str | bytes], *, volatile: bool = False) -> bool:
        """Queue ``messages`` (all or none) without waiting.

        Returns:
            Whether they were queued. False for a dropped volatile message, after an overflow
            (which this call may have caused) and after `close`.
        """
        if self.is_closed or self.is_overflowed:
            return False
        queue = self._queue
        if not queue and not self._writing and len(messages) == 1:
            # Nothing ahead of it: straight to the session when that needs no waiting, which
            # saves a broadcast the wake-up of one writer task per recipient.
            try:
                if self._session.try_send_nowait(messages[0]):
                    return True
            except ConnectionClosed:
                self._session_closed()
                return False
        if volatile and len(queue) >= self.volatile_backlog:
            self.dropped_volatile += 1
            return False
        size = len(messages[0]) if len(messages) == 1 else sum(map(len, messages))
        if (
            len(queue) + len(messages) > self.max_messages
            or self._queued_bytes + size > self.max_bytes
        ):
            if volatile:
                self.dropped_volatile += 1
                return False
            self.is_overflowed = True
            self._on_overflow()
            return False
        queue.extend(messages)
        self._queued_bytes += size
        self._ready.set()
        return True

    def try_write(self, messages: Sequence[str | bytes]) -> bool:
        """Write ``messages`` now if nothing is queued or being written and the session takes
        them without waiting; else do nothing and return False: then `send` them.

        The way a reply leaves inside the read that brought its request (an ack answering
        an event), with no coroutine: True as well when the session has closed (there is
        nothing left to wait for).
        """
        if self._queue or self._writing or self.is_overflowed or len(messages) != 1:
            return False
        if self.is_closed:
            return True
        try:
            return self._session.try_send_nowait(messages[0])
        except ConnectionClosed:
            self._session_closed()
            return True

    def _session_closed(self) -> None:
        self.is_closed = True
        self._ready.set()  # the writer task sees it and ends

    async def send(self, messages: Sequence[str | bytes], *, volatile: bool = False) -> bool:
        """Write ``messages`` now if nothing is queued or being written, else `put` them.

        Saves the hand-over to the writer task on the common path (an ack answering an
        event); waits while the session's ``send`` waits, so call it only from a task that
        may wait (a handler), never from a broadcast.

        Returns:
            As `put`; False as well when the session closed meanwhile.
        """
        if self._queue or self._writing or self.is_closed or self.is_overflowed:
            return self.put(messages, volatile=volatile)
        self._writing = True
        try:
            session = self._session
            for message in messages:
                if not session.try_send_nowait(message):
                    await session.send(message)
        except ConnectionClosed:
            self.is_closed = True
            return False
        finally:
            self._writing = False
            if self._queue or self.is_closed:
                self._ready.set()  # the writer takes over what was queued meanwhile
        return True

    async def run(self) -> None:
        """Write queued messages in order until `close`, or until the session closes."""
        queue = self._queue
        send = self._session.send
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                if self._writing:
                    continue  # an inline `send` is writing; it wakes us when it is done
                self._writing = True
                try:
                    while queue:
                        message = queue.popleft()
                        self._queued_bytes -= len(message)
                        await send(message)
                finally:
                    self._writing = False
                if self.is_closed:
                    return
        except ConnectionClosed:
            self.is_closed = True

    def close(self) -> None:
        """Queue nothing more; `run` returns once what is queued is written."""
        self.is_closed = True
        self._ready.set()
