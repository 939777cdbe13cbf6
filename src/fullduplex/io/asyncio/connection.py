"""An open WebSocket connection on asyncio: the part both roles share.

`WebSocketConnection` is the `asyncio.BufferedProtocol` of its TCP (or TLS, or Unix)
transport. It feeds received bytes to the sans-I/O `Connection`, queues the messages it
reports, writes what it queues, and owns every timer: keepalive pings, the close timeout. It
makes no protocol decision itself.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import Any, cast

from ...exceptions import ConnectionClosedOK, InvalidState, PolicyViolation
from ...protocol.connection import Connection, State
from ...protocol.events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    PongReceived,
    TextReceived,
)
from ...protocol.frames import CloseCode, serialize_close_payload

__all__ = ["WebSocketConnection", "Message", "Data"]

logger = logging.getLogger("fullduplex")

Message = str | bytes
"""A received message: ``str`` for text, ``bytes`` for binary."""

Data = str | bytes | bytearray | memoryview
"""What `send` takes for one message: ``str`` is sent as text, the rest as binary."""


class WebSocketConnection(asyncio.BufferedProtocol):
    """An open WebSocket connection: receive with ``async for`` or `recv`, send with `send`.

    Created by `serve` (for each client) and by `connect`; not instantiated directly.

    Args:
        protocol: the sans-I/O connection to drive.
        ping_interval: seconds between keepalive pings; None disables them.
        ping_timeout: seconds to wait for the pong before failing the connection with 1011.
        close_timeout: seconds to wait for the closing handshake before dropping the transport.
        max_queue: received messages buffered before reading pauses. Once this side has
            started the closing handshake, reading goes on until the peer's close frame
            arrives, and messages beyond ``max_queue`` that come meanwhile are dropped.
        write_limit: bytes buffered for writing before `send` waits; also the most that
            sends queue before they are written without waiting for the loop turn's end.
    """

    # Slots: a server holds tens of thousands of these, and a __dict__ would double their size.
    __slots__ = (
        "protocol",
        "ping_interval",
        "ping_timeout",
        "close_timeout",
        "max_queue",
        "write_limit",
        "transport",
        "_loop",
        "_messages",
        "_recv_waiter",
        "_reading_paused",
        "_drain_waiter",
        "_writing_paused",
        "_closed",
        "_pings",
        "_keepalive_handle",
        "_close_handle",
        "_send_lock",
        "_unflushed",
        "_flush_scheduled",
    )

    def __init__(
        self,
        protocol: Connection,
        *,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float = 10,
        max_queue: int = 32,
        write_limit: int = 64 * 1024,
    ) -> None:
        self.protocol = protocol
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.max_queue = max_queue
        self.write_limit = write_limit
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        # Created with the first message: an idle connection does without its 600-byte block.
        self._messages: collections.deque[Message] | None = None
        self._recv_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._send_lock: asyncio.Lock | None = None
        # Sends are written once per event-loop turn (see `_send`); bytes queued since the last
        # write, and whether that write is scheduled.
        self._unflushed = 0
        self._flush_scheduled = False

    # --- public API ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        """CONNECTING, OPEN, CLOSING or CLOSED."""
        return self.protocol.state

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or None."""
        return self.protocol.subprotocol

    @property
    def remote_address(self) -> Any:
        """The peer's address, as the socket reports it (``(host, port)`` for TCP)."""
        return self.transport.get_extra_info("peername") if self.transport else None

    @property
    def local_address(self) -> Any:
        """This end's address, as the socket reports it."""
        return self.transport.get_extra_info("sockname") if self.transport else None

    @property
    def close_code(self) -> int | None:
        """The peer's close code (1005: none given, 1006: no close frame); None while open."""
        return self.protocol.close_code if self._closed.done() else None

    @property
    def close_reason(self) -> str:
        """The reason the peer gave in its close frame, or an empty string."""
        return self.protocol.close_reason

    async def recv(self) -> Message:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Messages received before the connection closed are all returned before it reports
        the closure.

        Cancelling `recv` loses no message: the next call returns it.

        Raises:
            ConnectionClosed: the connection is closed (`ConnectionClosedOK` after a normal
                close); ``code`` and ``reason`` tell how.
            RuntimeError: another coroutine is already waiting in `recv` (or iterating).
        """
        while not self._messages:
            if self._closed.done() or self.protocol.close_received is not None:
                raise self.protocol.closed_error()
            if self._recv_waiter is not None:
                # Two readers would each get every other message; that is never intended.
                raise RuntimeError("another coroutine is already receiving on this connection")
            waiter = self._recv_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None
        messages = self._messages
        assert messages is not None
        message = messages.popleft()
        if self._reading_paused and len(messages) <= self.max_queue // 4:
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return message

    def __aiter__(self) -> WebSocketConnection:
        return self

    async def __anext__(self) -> Message:
        """Return the next message for ``async for``, which ends after a normal close.

        Raises:
            ConnectionClosedError: the connection closed abnormally.
        """
        # A method rather than an async generator: no generator object per connection, and
        # one coroutine less per message.
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data]) -> None:
        """Send one message, and wait while the write buffer is above its limit.

        The message is written to the transport at the end of the current event-loop turn,
        together with every other message sent in that turn (one system call for a batch),
        or at once when ``write_limit`` bytes are waiting. `close` writes them first.

        Args:
            message: ``str`` for a text message, ``bytes``-like for binary, or an iterable or
                async iterable of them (all ``str`` or all bytes-like) to send one message
                in fragments, one frame per item. An empty iterable sends nothing. A
                ``bytearray`` or ``memoryview`` is copied, so it may be reused at once.

        Raises:
            ConnectionClosed: the connection is closing or closed, or it closed before the
                write buffer drained.
            TypeError: ``message`` has an unsupported type, or fragments mix types. If the
                iterable fails after its first fragment went out, the message cannot be
                finished: the connection is failed with 1011 and the error re-raised.
        """
        method: Callable[..., None]
        if isinstance(message, str):
            method = self.protocol.send_text
        elif isinstance(message, bytes | bytearray | memoryview):
            method = self.protocol.send_binary
            if not isinstance(message, bytes):
                message = _owned(message)
        elif isinstance(message, Mapping):
            # Iterating a dict would send its keys as fragments: surely not what was meant.
            raise TypeError("cannot send a mapping; serialize it (json.dumps) first")
        elif isinstance(message, Iterable):
            await self._send_fragments(_aiter_sync(message))
            return
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(aiter(message))
            return
        else:
            raise TypeError(f"cannot send {type(message).__name__}; use str or bytes")
        lock = self._send_lock
        if lock is not None and lock.locked():
            # RFC 6455 §5.4: no message may start between the fragments of another.
            async with lock:
                self._send(method, message)
        else:
            self._send(method, message)
        if self._writing_paused:
            await self._drain()

    async def _send_fragments(self, fragments: AsyncIterator[Data]) -> None:
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            # Each fragment is sent once the next one exists, so that the last carries FIN.
            previous: Data | None = None
            is_text = False
            started = False
            try:
                async for fragment in fragments:
                    fragment_is_text = isinstance(fragment, str)
                    if isinstance(fragment, bytearray | memoryview):
                        fragment = _owned(fragment)
                    elif not fragment_is_text and not isinstance(fragment, bytes):
                        raise TypeError(f"cannot send a {type(fragment).__name__} fragment")
                    if previous is None:
                        is_text = fragment_is_text
                    elif fragment_is_text != is_text:
                        raise TypeError("a fragmented message mixes str and bytes")
                    else:
                        self._send(self._fragment_method(is_text, started), previous, fin=False)
                        started = True
                        if self._writing_paused:
                            await self._drain()
                    previous = fragment
                if previous is not None:
                    self._send(self._fragment_method(is_text, started), previous, fin=True)
            except BaseException:
                protocol = self.protocol
                if started and protocol.state is State.OPEN and protocol.close_sent is None:
                    # The peer holds a message it can never complete; nothing else may follow.
                    protocol.fail(_ApplicationFailure(CloseCode.INTERNAL_ERROR, "send aborted"))
                    self._process_events()
                raise
        if self._writing_paused:
            await self._drain()

    def _fragment_method(self, is_text: bool, started: bool) -> Callable[..., None]:
        protocol = self.protocol
        if started:
            return protocol.send_continuation
        return protocol.send_text if is_text else protocol.send_binary

    def _send(self, method: Callable[..., None], data: Data, fin: bool = True) -> None:
        try:
            method(data, fin=fin)
        except InvalidState:
            if self.protocol.state is State.OPEN and self.protocol.close_sent is None:
                raise
            raise self.protocol.closed_error() from None
        # Coalesce: a handler that sends several messages in one turn (answering a batch of
        # pipelined requests, a broadcast) gets one system call for all of them. Past the
        # write limit the bytes go out at once, so that backpressure still applies.
        self._unflushed += len(data)
        if self._unflushed >= self.write_limit:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    async def ping(self, data: str | bytes | None = None) -> float:
        """Send a ping and wait for its pong.

        Args:
            data: the ping's payload (up to 125 bytes); four random bytes when None.

        Returns:
            The round-trip time in seconds.

        Raises:
            ConnectionClosed: the connection is closing or closed, or closed before the pong.
            ValueError: the payload exceeds 125 bytes, or a ping with the same payload is
                still waiting for its pong.
        """
        if data is None:
            payload = os.urandom(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
        if payload in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        self._send(self._send_ping, payload)
        waiter: asyncio.Future[float] = self._loop.create_future()
        entry = self._pings[payload] = (waiter, time.monotonic())
        try:
            return await waiter
        except asyncio.CancelledError:
            if self._pings.get(payload) is entry:
                del self._pings[payload]
            raise

    async def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong, a one-way heartbeat (RFC 6455 §5.5.3).

        Raises:
            ConnectionClosed: the connection is closing or closed.
            ValueError: the payload exceeds 125 bytes.
        """
        payload = data.encode() if isinstance(data, str) else data
        self._send(self._send_pong, payload)

    def _send_ping(self, payload: bytes, fin: bool) -> None:
        self.protocol.send_ping(payload)

    def _send_pong(self, payload: bytes, fin: bool) -> None:
        self.protocol.send_pong(payload)

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake and wait until the connection is closed.

        Waits at most ``close_timeout`` for the peer before dropping the transport. Closing
        an already closing or closed connection only waits. Messages already received stay
        readable with `recv` until it raises `ConnectionClosed`.

        Raises:
            ValueError: the code may not be sent or the reason exceeds 123 UTF-8 bytes.
        """
        if self.protocol.state is State.OPEN and self.protocol.close_sent is None:
            self.protocol.send_close(code, reason)
            self._flush()
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (closing handshake done and transport closed)."""
        await asyncio.shield(self._closed)

    def fail(self, code: int = CloseCode.POLICY_VIOLATION, reason: str = "") -> None:
        """Fail the connection at once with ``code`` (1008 by default): the application's
        way to drop a peer that broke its rules. Pending `recv` calls then raise
        `ConnectionClosed`, once the peer answers or ``close_timeout`` expires.

        Raises:
            ValueError: the code may not be sent or the reason exceeds 123 UTF-8 bytes.
        """
        serialize_close_payload(code, reason)  # the same checks as `close`, before any effect
        self.protocol.fail(_ApplicationFailure(code, reason))
        self._process_events()

    # --- asyncio.BufferedProtocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports don't subclass asyncio's.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(self.write_limit, self.write_limit // 4)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        protocol = self.protocol
        # Noted before the data is parsed, as it may carry the peer's close frame.
        waiting_for_close = protocol.close_sent is not None
        protocol.receive_data(_read_buffer()[:nbytes])
        self._process_events(waiting_for_close)

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._process_events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        protocol = self.protocol
        if protocol.state is not State.CLOSED:
            protocol.receive_eof()
            protocol.events_received()
        for handle in (self._keepalive_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        error = protocol.closed_error()
        # Futures nobody may await (keepalive pings, a drain no sender waits for any more) are
        # marked retrieved, so that asyncio does not log "exception was never retrieved".
        for waiter, _ in self._pings.values():
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()
        self._pings.clear()
        drain_waiter = self._drain_waiter
        if drain_waiter is not None and not drain_waiter.done():
            drain_waiter.set_exception(error)
            drain_waiter.exception()
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake_receiver()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # --- internals -----------------------------------------------------------------------

    def _process_events(self, waiting_for_close: bool = False) -> None:
        """Act on the protocol's events, then write what it queued.

        Args:
            waiting_for_close: this side had sent its close frame before the events' data
                arrived (see `_limit_queue`).
        """
        messages = self._messages
        for event in self.protocol.events_received():
            if type(event) is TextReceived or type(event) is BinaryReceived:
                if messages is None:
                    messages = self._messages = collections.deque()
                messages.append(event.data)
            elif type(event) is PongReceived:
                self._acknowledge_pings(event.data)
            elif type(event) is CloseReceived:
                self._wake_receiver()
            elif type(event) is ConnectionFailed:
                self._log_failure(event.error)
                self._wake_receiver()
            else:
                self._handle_event(event)
        if messages:
            self._wake_receiver()
            if len(messages) >= self.max_queue:
                self._limit_queue(waiting_for_close)
        self._flush()

    def _limit_queue(self, waiting_for_close: bool) -> None:
        """Stop reading while the queue is full; drop what exceeds it when waiting for the
        peer's close frame instead.

        Messages that came with the peer's close frame, before this side sent its own, are
        all kept: nothing can follow that frame, and they were sent while the connection was
        open.
        """
        if self.protocol.state is State.OPEN:
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

    def _handle_event(self, event: object) -> None:
        """Handle the events only one role sees (the opening handshake's)."""

    def _log_failure(self, error: Exception) -> None:
        logger.debug("%s: connection failed: %s", self._describe_peer(), error)

    def _describe_peer(self) -> str:
        address = self.remote_address
        if isinstance(address, tuple) and len(address) >= 2:
            return f"{address[0]}:{address[1]}"
        return str(address or "peer")

    def _wake_receiver(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _flush(self) -> None:
        """Write what the protocol queued; close the transport or arm timers as it asks."""
        protocol = self.protocol
        output = protocol.data_to_send()
        self._unflushed = 0
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # whatever is still queued comes after the transport was closed: dropped
        if output:
            transport.writelines(output)
        if protocol.should_close_transport:
            transport.close()
            # `close()` waits for the write buffer to drain, which a peer that stopped
            # reading never lets happen: bound it like the closing handshake.
            if self._close_handle is None:
                self._arm_close_timer()
        elif self._close_handle is None and protocol.close_expected():
            self._arm_close_timer()
            if self._reading_paused:
                self._reading_paused = False
                transport.resume_reading()

    def _arm_close_timer(self) -> None:
        self._close_handle = self._loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        logger.debug("%s: closing handshake timed out", self._describe_peer())
        if self.transport is not None:
            self.transport.abort()

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

    def _acknowledge_pings(self, payload: bytes) -> None:
        if payload not in self._pings:
            return
        now = time.monotonic()
        # A pong answers its ping and every earlier one (RFC 6455 §5.5.3 allows skipping).
        for key in list(self._pings):
            waiter, sent_at = self._pings.pop(key)
            if not waiter.done():
                waiter.set_result(now - sent_at)
            if key == payload:
                break
        if not self._pings:
            self._pings = {}  # an emptied dict keeps its table; a new one is smaller

    def _start_keepalive(self) -> None:
        """Begin the keepalive cycle once the connection is open."""
        if self.ping_interval is not None and self.protocol.state is State.OPEN:
            self._keepalive_handle = self._loop.call_later(self.ping_interval, self._send_keepalive)

    def _send_keepalive(self) -> None:
        if self.protocol.state is not State.OPEN or self.protocol.close_sent is not None:
            return
        payload = os.urandom(4)
        while payload in self._pings:
            payload = os.urandom(4)
        self.protocol.send_ping(payload)
        self._flush()
        waiter: asyncio.Future[float] = self._loop.create_future()
        self._pings[payload] = (waiter, time.monotonic())
        if self.ping_timeout is not None:
            self._keepalive_handle = self._loop.call_later(
                self.ping_timeout, self._keepalive_timed_out, waiter
            )
        waiter.add_done_callback(self._keepalive_answered)

    def _keepalive_answered(self, waiter: asyncio.Future[float]) -> None:
        if waiter.cancelled() or waiter.exception() is not None:
            return
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
        self._start_keepalive()

    def _keepalive_timed_out(self, waiter: asyncio.Future[float]) -> None:
        if waiter.done():
            return
        # Logged by `_log_failure`, like every failure.
        self.protocol.fail(_KeepaliveTimeout(f"no pong within {self.ping_timeout} s"))
        self._process_events()


class _KeepaliveTimeout(PolicyViolation):
    close_code = CloseCode.INTERNAL_ERROR


class _ApplicationFailure(PolicyViolation):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = code


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


def _owned(buffer: bytearray | memoryview) -> bytes:
    """Copy a buffer the caller may reuse once `send` returns.

    The frame's payload goes to the transport as is, and transports keep a reference to what
    they could not write at once (Python 3.12+ no longer copies it): a reused bytearray
    would change bytes that are still waiting to go out.
    """
    return bytes(buffer)


async def _aiter_sync(items: Iterable[Data]) -> AsyncIterator[Data]:
    for item in items:
        yield item
