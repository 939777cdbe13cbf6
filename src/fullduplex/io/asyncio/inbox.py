"""The message queue: received messages wait here for `recv`, or go to a callback.

Reading pauses while ``max_queue`` messages wait, and resumes once the receiver has taken
three quarters of them. A connection given a callback (`MessageQueue.on_message`) keeps no
queue: each message is handed over inside the read that completed it, and reading pauses
while writing is paused instead, since the callback answers without waiting.

A server connection reads through a plain protocol once its queue exists (`_QueuedReads`,
as callbacks read through `_PlainReads`): whole messages go from C straight into the queue,
and only what is not one (control frames, fragments, the closing handshake) takes the
general path, so the semantics are those of that path.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Iterable

from ...exceptions import ConnectionClosedOK
from ...protocol.connection import Connection, State
from ..options import Options
from .plumbing import _callback_reads, _PlainReads
from .writes import WriteBatching

__all__ = ["MessageQueue", "Message", "MessageCallback"]

logger = logging.getLogger("fullduplex")

Message = str | bytes
"""A received message: ``str`` for text, ``bytes`` for binary."""

MessageCallback = Callable[[Message], None]
"""Called with each received message, inside the read that completed it (see `on_message`)."""

_OPEN = State.OPEN


class MessageQueue(WriteBatching):
    """Received messages, in order, until `recv` takes them or a callback gets them."""

    __slots__ = (
        "max_queue",
        "_messages",
        "_recv_waiter",
        "_reading_paused",
        "_callback",
        "_is_replying",
    )

    def __init__(self, protocol: Connection, options: Options) -> None:
        super().__init__(protocol, options)
        self.max_queue = options.max_queue
        # Created with the first message: an idle connection does without its 600-byte block.
        self._messages: collections.deque[Message] | None = None
        self._recv_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._callback: MessageCallback | None = None
        # The receiver took a message and has not waited for the next one yet: its sends
        # are most likely replies, made by the receiving task (see writes.py).
        self._is_replying = False

    async def recv(self) -> Message:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Messages received before the connection closed are all returned before it reports
        the closure.

        Cancelling `recv` loses no message: the next call returns it.

        Raises:
            ConnectionClosed: the connection is closed (`ConnectionClosedOK` after a normal
                close); ``code`` and ``reason`` tell how.
            RuntimeError: another coroutine is already waiting in `recv` (or iterating), or
                messages go to a callback (`on_message`).
        """
        while not self._messages:
            await self._message_waiter()
        return self._take_message()

    def __aiter__(self) -> MessageQueue:
        return self

    async def __anext__(self) -> Message:
        """Return the next message for ``async for``, which ends after a normal close.

        Raises:
            ConnectionClosedError: the connection closed abnormally.
        """
        # `recv` written out rather than awaited: one coroutine less per message, and a
        # method rather than an async generator: no generator object per connection.
        try:
            while not self._messages:
                await self._message_waiter()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None
        return self._take_message()

    def _message_waiter(self) -> asyncio.Future[None]:
        """Return the future that the next message (or the closure) completes.

        Raises:
            ConnectionClosed: the connection is closed and every message was taken.
            RuntimeError: another coroutine waits already, or messages go to a callback.
        """
        if self._closed.done() or self.protocol.close_received is not None:
            raise self.protocol.closed_error()
        waiter = self._recv_waiter
        # A waiter that is done was left by a receiver that was cancelled.
        if (waiter is not None and not waiter.done()) or self._callback is not None:
            # Two readers would each get every other message; that is never intended.
            raise RuntimeError("another coroutine is already receiving on this connection")
        # Only a later loop turn can bring the next message: this turn's sends are over.
        self._direct_write_turn = -1
        self._is_replying = False
        waiter = self._recv_waiter = self._loop.create_future()
        return waiter

    def _take_message(self) -> Message:
        messages = self._messages
        assert messages is not None
        message = messages.popleft()
        self._is_replying = True
        if self._reading_paused and len(messages) <= self.max_queue // 4:
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return message

    def on_message(self, callback: MessageCallback) -> None:
        """Hand every message to ``callback`` from now on, instead of queueing it for `recv`.

        The advanced, lower-level way to receive, for the hottest paths: ``callback`` runs
        synchronously inside the read that completed the message, with no task switch, and
        answers with `send_nowait`. Replies made during one read go out in one system call
        at its end. Reading pauses while the transport's write buffer is above
        ``write_limit``, so a peer that does not read its answers stops being read too.
        Messages already queued are handed over at once, in order.

        The handler keeps the connection open as long as it runs: await `wait_closed` after
        setting the callback. If ``callback`` raises, the connection fails with 1011.

        Raises:
            RuntimeError: a coroutine is waiting in `recv`.
        """
        if self._recv_waiter is not None and not self._recv_waiter.done():
            raise RuntimeError("a coroutine is receiving on this connection with recv")
        if self._callback is None and self.transport is not None:
            # One Python call per read instead of two (see `_PlainReads`).
            self.transport.set_protocol(_callback_reads(self))
        self._callback = callback
        self._is_replying = False
        messages, self._messages = self._messages, None
        if self._reading_paused:
            self._reading_paused = False
            if self.transport is not None and not self._writing_paused:
                self.transport.resume_reading()
        if messages:
            batching = not self._flush_scheduled
            self._flush_scheduled = True  # the replies go out together, below
            try:
                for message in messages:
                    self._call_back(callback, message)
            finally:
                if batching:
                    self._flush_scheduled = False
                self._flush()
        self._update_deliverer()

    def pause_reading(self) -> None:
        """Stop reading from the socket until `resume_reading`.

        Flow control for a callback receiver (`on_message`) that keeps messages it cannot
        handle yet: while reading is paused nothing more is received, and the peer, once
        the socket buffers are full, has to wait. The connection resumes reading by itself
        only to receive the peer's close frame once the closing handshake has started, and,
        for `recv`, once the receiver has taken three quarters of the queue.
        """
        if not self._reading_paused:
            self._reading_paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read again after `pause_reading`.

        With a callback, reading stays paused while the write buffer is above
        ``write_limit``, and resumes once it has drained.
        """
        if self._reading_paused:
            self._reading_paused = False
            if self.transport is not None and not (
                self._callback is not None and self._writing_paused
            ):
                self.transport.resume_reading()

    def _new_queue(self, messages: Iterable[Message]) -> collections.deque[Message]:
        """Create the queue, which the first message needs, and read through
        `_QueuedReads` from now on on a server connection (see `_update_deliverer`)."""
        queue = self._messages = collections.deque(messages)
        if self.transport is not None and not self.protocol.is_client:
            self.transport.set_protocol(_QueuedReads(self))
        return queue

    def _has_unanswered_messages(self) -> bool:
        return bool(self._messages)

    def _turn_ends_with_recv(self) -> bool:
        return self._is_replying

    def _call_back(self, callback: MessageCallback, message: Message) -> None:
        if self.protocol.state is not _OPEN:
            return  # failed by an earlier message's callback: nothing more is delivered
        try:
            callback(message)
        except Exception as exc:
            logger.error("message callback failed", exc_info=exc)
            self._fail_internal()

    def _fail_internal(self) -> None:
        """Fail the connection with 1011 (the layer above knows how)."""
        raise NotImplementedError

    def _update_deliverer(self) -> None:
        """Take the callback API's fast read if the connection allows it (the layer above
        knows when)."""
        raise NotImplementedError

    def _limit_queue(self, waiting_for_close: bool) -> None:
        """Stop reading while the queue is full; drop what exceeds it when waiting for the
        peer's close frame instead.

        Messages that came with the peer's close frame, before this side sent its own, are
        all kept: nothing can follow that frame, and they were sent while the connection was
        open.
        """
        if self.protocol.state is _OPEN:
            if not self._reading_paused:
                self._reading_paused = True
                assert self.transport is not None
                self.transport.pause_reading()
        elif waiting_for_close:
            # The peer's close frame may sit behind messages nobody will read: read on, so the
            # closing handshake completes, but keep at most max_queue messages.
            messages = self._messages
            while messages is not None and len(messages) > self.max_queue:
                messages.pop()

    def _wake_receiver(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None:
            self._recv_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake_receiver()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._callback is not None and not self._reading_paused and self.transport:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._callback is not None and not self._reading_paused and self.transport:
            self.transport.resume_reading()

    def _closing_started(self, transport: asyncio.Transport) -> None:
        super()._closing_started(transport)
        # The peer's close frame may wait behind messages nobody reads any more.
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()


class _QueuedReads(_PlainReads):
    """The transport's protocol while a server connection's messages wait for `recv`.

    `_PlainReads` for the message queue: each read appends its leading whole messages to
    the queue from C (``deque.append`` as the `Connection.message_deliverer` callback), so
    that the ordinary API's read costs one Python call where the general path
    (`get_buffer`, `buffer_updated`, `_process_events`, ...) takes six. Then the receiver
    wakes and the ``max_queue`` check runs, once per read; whatever follows those messages
    takes the general path (`_finish_read`), as do reads while the connection does not
    allow this one (``_deliver`` is None).
    """

    __slots__ = ("queue",)

    def __init__(self, connection: MessageQueue) -> None:
        super().__init__(connection)
        self.queue = connection

    def data_received(self, data: bytes) -> None:
        queue = self.queue
        deliver = queue._deliver
        if deliver is None:
            queue._receive(data)
            return
        taken = deliver(data, len(data))
        messages = queue._messages
        if messages:
            queue._wake_receiver()
            if len(messages) >= queue.max_queue:
                # The deliverer ran only while OPEN: no close frame was sent before this read.
                queue._limit_queue(waiting_for_close=False)
        if taken != len(data):
            queue._finish_read(taken, data)
