"""Transport plumbing: the `asyncio.BufferedProtocol` side of a connection.

Bytes read from the socket go to the sans-I/O `Connection`; the end of the stream and the
transport's loss are reported to it. This layer also owns the transport's lifetime: it closes
the transport when the protocol asks for it, and bounds that close by ``close_timeout``.

Three ways to read
------------------
The transport's protocol is one of three objects, chosen by what the connection does with
its messages; each hands what it does not take to the next one down, so the semantics are
always those of the general path.

1. The general path: `TransportPlumbing` itself, a `BufferedProtocol` (`get_buffer`,
   `buffer_updated`), which reads into one buffer per thread and runs every frame through
   `Connection.receive_messages` and `_process_events`. Every connection starts here (the
   opening handshake, clients, an idle server connection, which allocates nothing more),
   and every read that the two below do not take ends here.
2. `_QueuedReads` (inbox.py): a server connection whose messages wait for `recv`, once its
   queue exists. A plain protocol, one Python call per read: the whole messages at the
   head of the read go from C into the queue (`Connection.message_deliverer` with
   ``deque.append``).
3. `_PlainReads`: a server connection whose messages go to a callback (`on_message`). A
   plain protocol too, whose read hands each whole message to the callback from C and
   writes the replies `send_nowait` framed in one call at its end; where the extension is
   built it is compiled (``_speedups.PlainReads``, `_callback_reads`), so that the read
   costs no Python call but the callback's.

2 and 3 take a read only while the connection allows it (``_deliver`` is set: OPEN, no
extension, nothing partly received, a server's; see
`WebSocketConnection._update_deliverer`), and give the general path whatever follows the
messages they took (`_finish_read`). Clients keep to the general path: their replies are
masked, which `send_nowait`'s framing does not do.

A connection is built as a stack of layers, each in a file of its own, each a subclass of the
one below it (a stack rather than mixins, so that every layer keeps its own ``__slots__``):
`TransportPlumbing` <- `WriteBatching` (writes.py) <- `MessageQueue` (inbox.py) <-
`Keepalive` (keepalive.py) <- `WebSocketConnection` (connection.py), which adds the public
sending API and turns the protocol's events into calls to the layers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

from ...protocol import _compiled
from ...protocol.connection import Connection, State
from ..options import Options

__all__ = ["TransportPlumbing"]

logger = logging.getLogger("fullduplex")

_CLOSED = State.CLOSED


class TransportPlumbing(asyncio.BufferedProtocol):
    """Feeds the transport's bytes to the protocol and closes the transport when it asks.

    Args:
        protocol: the sans-I/O connection to drive.
        options: the connection's settings (see `Options`).
    """

    # Slots: a server holds tens of thousands of connections, and a __dict__ would double
    # their size.
    __slots__ = (
        "protocol",
        "options",
        "transport",
        "_loop",
        "_closed",
        "_close_handle",
        "_deliver",
        "_replies",
    )

    def __init__(self, protocol: Connection, options: Options) -> None:
        self.protocol = protocol
        self.options = options
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._close_handle: asyncio.TimerHandle | None = None
        # The callback API's read, while the connection allows it (`_PlainReads`): a
        # `Connection.message_deliverer`, set by the layer above.
        self._deliver: Callable[[bytes, int], int | tuple[int, Exception]] | None = None
        # The frames sent in reply during that read, written together at its end.
        self._replies: list[bytes] | None = None

    @property
    def remote_address(self) -> Any:
        """The peer's address, as the socket reports it (``(host, port)`` for TCP)."""
        return self.transport.get_extra_info("peername") if self.transport else None

    @property
    def local_address(self) -> Any:
        """This end's address, as the socket reports it."""
        return self.transport.get_extra_info("sockname") if self.transport else None

    @property
    def is_closed(self) -> bool:
        """Whether the connection is closed: the transport is gone, `wait_closed` returns."""
        return self._closed.done()

    def add_close_callback(self, callback: Callable[[object], None]) -> None:
        """Have the event loop call ``callback`` once the connection is closed (soon, if it
        is already).

        For code that waits for several things at once and must also wake when the
        connection closes, without a task of its own. ``callback`` gets one argument, which
        it should ignore. Remove it with `remove_close_callback` once no longer interested.
        """
        self._closed.add_done_callback(callback)

    def remove_close_callback(self, callback: Callable[[object], None]) -> None:
        """Undo `add_close_callback` (every registration of ``callback``); nothing if none."""
        self._closed.remove_done_callback(callback)

    # --- asyncio.BufferedProtocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports don't subclass asyncio's.
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            # `_read_buffer` written out: this runs before every read.
            view: memoryview = _thread_state.read_buffer
        except AttributeError:
            view = _read_buffer()
        return view

    def buffer_updated(self, nbytes: int) -> None:
        protocol = self.protocol
        # Noted before the data is parsed, as it may carry the peer's close frame.
        waiting_for_close = protocol.close_sent is not None
        # get_buffer created the buffer: no call to _read_buffer on this path for every read.
        received = protocol.receive_messages(_thread_state.read_buffer[:nbytes])
        self._process_events(waiting_for_close, received)

    def _receive(self, data: bytes) -> None:
        """`buffer_updated` for bytes read by `_PlainReads`."""
        protocol = self.protocol
        waiting_for_close = protocol.close_sent is not None
        self._process_events(waiting_for_close, protocol.receive_messages(data))

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._process_events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        protocol = self.protocol
        if protocol.state is not _CLOSED:
            protocol.receive_eof()
            protocol.events_received()
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None
        if not self._closed.done():
            self._closed.set_result(None)

    # --- for the layers above ------------------------------------------------------------

    def _process_events(
        self, waiting_for_close: bool = False, received: list[str | bytes] | None = None
    ) -> None:
        """Act on the protocol's events, then write what it queued (`WebSocketConnection`).

        Args:
            waiting_for_close: this side had sent its close frame before the events' data
                arrived.
            received: messages the protocol returned bare (`Connection.receive_messages`),
                which come before its events.
        """
        raise NotImplementedError

    def _finish_read(self, taken: int | tuple[int, Exception], data: bytes) -> None:
        """Handle what the callback API's read left (`WebSocketConnection`): the error its
        callback raised, and the bytes of ``data`` after ``taken``."""
        raise NotImplementedError

    def _close_transport(self, transport: asyncio.Transport) -> None:
        """Close the transport, as the protocol asks once the connection is over."""
        transport.close()
        # `close()` waits for the write buffer to drain, which a peer that stopped reading
        # never lets happen: bound it like the closing handshake.
        if self._close_handle is None:
            self._arm_close_timer()

    def _closing_started(self, transport: asyncio.Transport) -> None:
        """The closing handshake began: bound it by ``close_timeout``."""
        self._arm_close_timer()

    def _arm_close_timer(self) -> None:
        self._close_handle = self._loop.call_later(
            self.options.close_timeout, self._close_timed_out
        )

    def _close_timed_out(self) -> None:
        logger.debug("%s: closing handshake timed out", self._describe_peer())
        if self.transport is not None:
            self.transport.abort()

    def _describe_peer(self) -> str:
        address = self.remote_address
        if isinstance(address, tuple) and len(address) >= 2:
            return f"{address[0]}:{address[1]}"
        return str(address or "peer")


def _callback_reads(connection: TransportPlumbing) -> asyncio.BaseProtocol:
    """Return the transport's protocol for a connection whose messages go to a callback:
    `_PlainReads`, or its compiled twin (``_speedups.PlainReads``), which spares the read
    its one Python call."""
    if _compiled.PlainReads is not None:
        return cast(asyncio.BaseProtocol, _compiled.PlainReads(connection))
    return _PlainReads(connection)


class _PlainReads(asyncio.Protocol):
    """The transport's protocol while messages go to a callback (`MessageQueue.on_message`).

    A plain protocol, not a buffered one: the event loop makes one Python call per read
    (`data_received`) where a `BufferedProtocol` takes two (`get_buffer`, `buffer_updated`),
    and each read brings whole messages to the callback from C
    (`Connection.message_deliverer`), so that its bytes object is the only one of the read.
    The replies that the callback sends (`send_nowait`) are framed into ``_replies`` and
    written at the end of the read, in one call (joined: they are small, and one buffer
    beats a writev of many); whatever follows those messages takes the general path
    (`_finish_read`). This class defines the contract of its compiled twin,
    ``_speedups.PlainReads`` (see `_callback_reads`), and runs where it is not built.
    """

    __slots__ = ("connection",)

    def __init__(self, connection: TransportPlumbing) -> None:
        self.connection = connection

    def data_received(self, data: bytes) -> None:
        connection = self.connection
        deliver = connection._deliver
        if deliver is None:
            connection._receive(data)
            return
        connection._replies = []
        try:
            taken = deliver(data, len(data))
        finally:
            replies, connection._replies = connection._replies, None
        if replies:
            transport = connection.transport
            if transport is not None and not transport.is_closing():
                transport.write(replies[0] if len(replies) == 1 else b"".join(replies))
        if taken != len(data):
            connection._finish_read(taken, data)

    def eof_received(self) -> bool | None:
        return self.connection.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.connection_lost(exc)

    def pause_writing(self) -> None:
        self.connection.pause_writing()

    def resume_writing(self) -> None:
        self.connection.resume_writing()


_READ_BUFFER_SIZE = 256 * 1024
_thread_state = threading.local()


def _read_buffer() -> memoryview:
    """Return the buffer every connection of this thread's event loop reads into.

    One per thread rather than one per connection: an event loop reads one socket at a time
    and the protocol copies what it keeps before the next read, so a single buffer serves
    them all, and an idle connection holds none. Reading into it spares the bytes object
    that a plain `asyncio.Protocol` gets for each read.
    """
    try:
        view: memoryview = _thread_state.read_buffer
    except AttributeError:
        view = _thread_state.read_buffer = memoryview(bytearray(_READ_BUFFER_SIZE))
    return view
