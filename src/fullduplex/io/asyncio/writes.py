"""Write batching and backpressure: when the bytes the protocol queued go to the transport.

Theory of operation
-------------------
The first send a connection makes in a loop turn is written at once, unless received
messages still wait to be answered: with nothing else pending, no later send could share its
system call, and deferring it would cost a loop iteration (and, for each recipient of a
broadcast, a callback of its own). Sends that follow it in the same turn, and every send made
while more received messages wait to be answered, are coalesced: they go out together at the
end of the turn (`_scheduled_flush`), or as soon as ``write_limit`` bytes wait, so that a
batch of pipelined requests costs one system call and backpressure still applies. While
messages go to a callback, the read that delivers them holds the flush
(``_flush_scheduled``) and writes every reply at its end; on the callback API's fast read
(`_PlainReads.data_received`), replies are framed into ``_replies`` instead, and any
other write during that read writes them first, so that frames keep their order.

Turns are counted per event loop (`LoopTurns`), not per connection: a connection notes the
turn of its last direct write, and the first direct write of a turn, by any connection,
schedules the one callback that starts the next turn. A broadcast to 10,000 connections thus
writes each at once and schedules a single callback, whatever each connection did before.
The receiving task's reply between two `recv` calls schedules nothing: its next `recv` ends
the connection's turn (`MessageQueue._message_waiter`), as only a later turn can bring the
next message, and a callback would cost an echo one more loop iteration per message. A
send that cannot tell whether its turn ended (the loop counted none since) is coalesced,
and the scheduled flush ends the connection's turn.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sized

from ...exceptions import InvalidState
from ...protocol.connection import Connection, State
from ..options import Options
from .plumbing import TransportPlumbing

__all__ = ["WriteBatching", "LoopTurns"]

_OPEN = State.OPEN


class WriteBatching(TransportPlumbing):
    """Writes what the protocol queued, batched per loop turn, within ``write_limit``."""

    __slots__ = (
        "write_limit",
        "_drain_waiter",
        "_writing_paused",
        "_unflushed",
        "_flush_scheduled",
        "_turns",
        "_direct_write_turn",
    )

    def __init__(self, protocol: Connection, options: Options) -> None:
        super().__init__(protocol, options)
        self.write_limit = options.write_limit
        self._drain_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        # Bytes queued since the last write, whether a write at the turn's end is scheduled,
        # and the loop turn in which this connection last wrote at once (see the module's
        # docstring).
        self._unflushed = 0
        self._flush_scheduled = False
        self._turns = LoopTurns.of(self._loop)
        self._direct_write_turn = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.set_write_buffer_limits(self.write_limit, self.write_limit // 4)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        drain_waiter = self._drain_waiter
        if drain_waiter is not None and not drain_waiter.done():
            # Marked retrieved: no sender may be waiting for it any more, and asyncio would
            # log "exception was never retrieved".
            drain_waiter.set_exception(self.protocol.closed_error())
            drain_waiter.exception()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def _send(self, method: Callable[..., None], data: Sized, fin: bool = True) -> None:
        """Have the protocol queue a frame with ``method``, then write it now or at the
        turn's end.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        try:
            method(data, fin=fin)
        except InvalidState as exc:
            raise self._send_refusal(exc) from None
        self._queued(len(data))

    def _send_refusal(self, error: InvalidState) -> Exception:
        """The error a sender should see when the protocol refused to send: `ConnectionClosed`
        once the connection is closing or closed, else ``error`` (the caller's mistake, such
        as a message between the fragments of another)."""
        if self.protocol.state is _OPEN and self.protocol.close_sent is None:
            return error
        return self.protocol.closed_error()

    def _queued(self, nbytes: int) -> None:
        """The protocol queued a message of ``nbytes``: write it now or at the turn's end."""
        if self._replies is not None:
            self._flush()  # behind the replies already framed, before those to come
            return
        self._unflushed += nbytes
        if self._unflushed >= self.write_limit:
            self._flush()
        elif self._flush_scheduled:
            return  # goes out with the write already due
        elif self._direct_write_turn != (turns := self._turns).number and not (
            self._has_unanswered_messages()
        ):
            self._direct_write_turn = turns.number
            if not turns.is_counting and not self._turn_ends_with_recv():
                turns.count()
            self._flush()
        else:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def _has_unanswered_messages(self) -> bool:
        """Whether received messages wait to be answered (the message queue knows)."""
        return False

    def _turn_ends_with_recv(self) -> bool:
        """Whether this send is most likely the receiving task's, after `recv` returned a
        message and before it waits for the next, which ends the connection's turn (the
        message queue knows)."""
        return False

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._direct_write_turn = -1
        self._flush()

    def _flush(self) -> None:
        """Write what the protocol queued; close the transport or arm timers as it asks."""
        protocol = self.protocol
        output = protocol.data_to_send()
        replies = self._replies
        if replies is not None:
            # Inside the callback API's fast read: its replies so far go first, and the rest
            # of the read's replies take the usual way.
            self._replies = None
            output = [*replies, *output]
        self._unflushed = 0
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # whatever is still queued comes after the transport was closed: dropped
        if len(output) == 1:
            transport.write(output[0])  # the usual single frame: no list for the transport
        elif output:
            transport.writelines(output)
        if protocol.state is _OPEN:
            return  # the usual case, and nothing to close or time
        if protocol.should_close_transport:
            self._close_transport(transport)
        elif self._close_handle is None and protocol.close_expected():
            self._closing_started(transport)

    async def _drain(self) -> None:
        """Wait until the write buffer drains below its low-water mark.

        Raises:
            ConnectionClosed: the connection closed before the buffer drained.
        """
        if self._closed.done():
            raise self.protocol.closed_error()
        if self._drain_waiter is None or self._drain_waiter.done():
            self._drain_waiter = self._loop.create_future()
        await asyncio.shield(self._drain_waiter)


class LoopTurns:
    """Counts the turns of one event loop in which some connection wrote at once.

    `count` has the loop start a new turn (``number`` + 1) with one callback, scheduled by
    the first direct write of a turn and shared by every connection; a connection whose last
    direct write carries the current ``number`` coalesces its next sends.
    """

    __slots__ = ("number", "is_counting", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.number = 0
        self.is_counting = False
        self._loop = loop

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> LoopTurns:
        """Return the counter of ``loop``, which this thread runs."""
        # Kept per thread, as uvloop's loops take no attributes: a thread runs one loop at
        # a time.
        turns: LoopTurns | None = getattr(_thread_state, "turns", None)
        if turns is None or turns._loop is not loop:
            turns = _thread_state.turns = cls(loop)
        return turns

    def count(self) -> None:
        """End the current turn once the loop has run what is ready now."""
        self.is_counting = True
        self._loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self.number += 1
        self.is_counting = False


_thread_state = threading.local()
