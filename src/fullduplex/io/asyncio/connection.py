"""An open WebSocket connection on asyncio: the part both roles share.

`WebSocketConnection` is the top of a stack of layers (see plumbing.py): it adds the public
sending and closing API, and turns the protocol's events into calls to the layers below,
which feed the transport's bytes to the sans-I/O `Connection` (plumbing.py), batch writes
(writes.py), queue messages (inbox.py) and keep the connection alive (keepalive.py). It makes
no protocol decision itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping

from ...exceptions import InvalidState, PolicyViolation
from ...protocol.connection import _COPY_BINARY_UP_TO, Connection, State
from ...protocol.events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    PongReceived,
    TextReceived,
)
from ...protocol.frames import CloseCode, serialize_close_payload, serialize_message
from ..options import Options
from .inbox import Message
from .keepalive import Keepalive

__all__ = ["WebSocketConnection", "Message", "Data"]

logger = logging.getLogger("fullduplex")

Data = str | bytes | bytearray | memoryview
"""What `send` takes for one message: ``str`` is sent as text, the rest as binary."""

_OPEN = State.OPEN


class WebSocketConnection(Keepalive):
    """An open WebSocket connection: receive with ``async for`` or `recv`, send with `send`.

    Created by `serve` (for each client) and by `connect`; not instantiated directly.

    Args:
        protocol: the sans-I/O connection to drive.
        options: its settings (timeouts, keepalive, limits; see `Options`), also readable
            as ``options``.
    """

    __slots__ = ("_send_lock",)

    def __init__(self, protocol: Connection, options: Options) -> None:
        super().__init__(protocol, options)
        self._send_lock: asyncio.Lock | None = None

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
    def close_code(self) -> int | None:
        """The peer's close code (1005: none given, 1006: no close frame); None while open.

        Known as soon as the peer's close frame arrived, so that it is there when `recv`
        reports the closure, before the TCP connection has ended.
        """
        protocol = self.protocol
        if self._closed.done() or protocol.close_received is not None:
            return protocol.close_code
        return None

    @property
    def close_reason(self) -> str:
        """The reason the peer gave in its close frame, or an empty string."""
        return self.protocol.close_reason

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data]) -> None:
        """Send one message, and wait while the write buffer is above its limit.

        The first message a connection sends in an event-loop turn is written at once;
        those that follow it in the same turn, or that answer pipelined messages, go out
        together at the end of the turn (one system call for a batch), or at once when
        ``write_limit`` bytes are waiting. `close` writes them first.

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
        if type(message) is str or type(message) is bytes:
            # The usual message: framed in one call, as `send_nowait` frames it.
            lock = self._send_lock
            if lock is not None and lock.locked():
                # RFC 6455 §5.4: no message may start between the fragments of another.
                async with lock:
                    self.send_nowait(message)
            else:
                self.send_nowait(message)
            if self._writing_paused:
                await self._drain()
            return
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
        try:
            async with self._send_lock:
                # Replies framed by `send_nowait` must not come between the fragments.
                self._deliver = None
                await self._send_fragments_locked(fragments)
        finally:
            self._update_deliverer()
        if self._writing_paused:
            await self._drain()

    async def _send_fragments_locked(self, fragments: AsyncIterator[Data]) -> None:
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
            if started and protocol.state is _OPEN and protocol.close_sent is None:
                # The peer holds a message it can never complete; nothing else may follow.
                protocol.fail(_ApplicationFailure(CloseCode.INTERNAL_ERROR, "send aborted"))
                self._process_events()
            raise

    def _fragment_method(self, is_text: bool, started: bool) -> Callable[..., None]:
        protocol = self.protocol
        if started:
            return protocol.send_continuation
        return protocol.send_text if is_text else protocol.send_binary

    def send_nowait(self, message: str | bytes) -> None:
        """Send one message without waiting: the callback API's send (see `on_message`).

        Inside a message callback, the message goes out with every other reply of the same
        read, in one system call at its end; elsewhere, as `send` would write it. It never
        waits for the write buffer: with a callback, reading pauses instead while the buffer
        is above ``write_limit``.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` is neither ``str`` nor ``bytes``.
        """
        replies = self._replies
        if replies is not None and (
            type(message) is str or (type(message) is bytes and len(message) <= _COPY_BINARY_UP_TO)
        ):
            # Inside the callback API's fast read, which checks that the connection is open
            # before each message and sends no fragmented message: framed here, written at
            # the read's end (`_PlainReads.data_received`).
            replies.append(serialize_message(message))
            return
        if (
            replies is None
            and not self._flush_scheduled
            and not self._messages
            and self._direct_write_turn != (turns := self._turns).number
            and (frame := self.protocol.frame_message_if_idle(message)) is not None
        ):
            # `_queued`'s direct write (writes.py), written out for the ordinary echo: the
            # first send of this turn, with nothing queued before it and no received message
            # waiting for an answer, is written at once without passing through the
            # protocol's output queue (`send_message`, `_queued`, `_flush`, `data_to_send`).
            self._direct_write_turn = turns.number
            if not turns.is_counting and not self._is_replying:
                turns.count()
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(frame)
            return
        # The protocol is called directly, not through `_send`: this is the hottest path.
        try:
            self.protocol.send_message(message)
        except InvalidState as exc:
            raise self._send_refusal(exc) from None
        if self._flush_scheduled:
            # Inside a callback's read, the usual case: `_queued` written out.
            self._unflushed += len(message)
            if self._unflushed >= self.write_limit:
                self._flush()
        else:
            self._queued(len(message))

    def _send_serialized_nowait(self, frame: bytes) -> None:
        """`send_nowait` for a message already framed by `serialize_message` (`broadcast`).

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        try:
            self.protocol.send_serialized_message(frame)
        except InvalidState as exc:
            raise self._send_refusal(exc) from None
        self._queued(len(frame))

    def can_send_now(self) -> bool:
        """Whether a message sent now goes out without waiting: the write buffer is below
        ``write_limit`` and no fragmented message is being sent.

        When it is False, `send` would wait, and `send_nowait` would either grow the write
        buffer past its limit or, between fragments, raise `InvalidState`: use `send`.
        """
        lock = self._send_lock
        return not self._writing_paused and (lock is None or not lock.locked())

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake and wait until the connection is closed.

        Waits at most ``close_timeout`` for the peer before dropping the transport. Closing
        an already closing or closed connection only waits. Messages already received stay
        readable with `recv` until it raises `ConnectionClosed`.

        Raises:
            ValueError: the code may not be sent or the reason exceeds 123 UTF-8 bytes.
        """
        if self.protocol.state is _OPEN and self.protocol.close_sent is None:
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

    # --- internals -----------------------------------------------------------------------

    def _process_events(
        self, waiting_for_close: bool = False, received: list[str | bytes] | None = None
    ) -> None:
        """Deliver the messages the protocol returned bare, act on its events, then write what
        it queued.

        Events are all taken first and acted on after: the events of the opening handshake,
        which may answer the request and so produce more events, come last, once this list
        is done with (`_handle_event`).

        Args:
            waiting_for_close: this side had sent its close frame before the events' data
                arrived (see `_limit_queue`).
            received: messages returned by `Connection.receive_messages`, which come before
                the protocol's events.
        """
        messages = self._messages
        callback = self._callback
        handshake: list[object] | None = None
        batching = False
        if callback is not None:
            if not self._flush_scheduled:
                # Replies sent by the callback go out together at the end of this read.
                batching = self._flush_scheduled = True
            if received:
                protocol = self.protocol
                for message in received:
                    # `_call_back` written out: this loop runs for every message.
                    if protocol.state is not _OPEN:
                        break  # failed by an earlier message's callback: nothing more
                    try:
                        callback(message)
                    except Exception as exc:
                        logger.error("message callback failed", exc_info=exc)
                        self._fail_internal()
        elif received:
            if messages is None:
                messages = self._new_queue(received)
            else:
                messages.extend(received)
        events = self.protocol.events_received()
        for event in events:
            if type(event) is TextReceived or type(event) is BinaryReceived:
                if callback is not None:
                    self._call_back(callback, event.data)
                    continue
                if messages is None:
                    messages = self._new_queue(())
                messages.append(event.data)
            elif type(event) is PongReceived:
                self._acknowledge_pings(event.data)
            elif type(event) is CloseReceived:
                self._wake_receiver()
            elif type(event) is ConnectionFailed:
                self._log_failure(event.error)
                self._wake_receiver()
            else:
                handshake = [event] if handshake is None else [*handshake, event]
        if batching:
            self._flush_scheduled = False
        if messages:
            self._wake_receiver()
            if len(messages) >= self.max_queue:
                self._limit_queue(waiting_for_close)
        if events or received is None or callback is not None or self.protocol.state is not _OPEN:
            # An open connection's read that brought messages alone has nothing to write
            # and nothing to close (`Connection.receive_data`).
            self._flush()
        if handshake is not None:
            for handshake_event in handshake:
                self._handle_event(handshake_event)
        if callback is not None or messages is not None:
            self._update_deliverer()

    def _update_deliverer(self) -> None:
        """Take the fast read (`_PlainReads.data_received`, `_QueuedReads.data_received`)
        while the connection allows it: a server's (a client masks its replies, which
        `send_nowait` does not frame), whose protocol has nothing partly received
        (`Connection.message_deliverer`); with a callback, no fragmented message being sent
        either; without one, once the queue exists (an idle connection has none), whose
        own ``append`` takes the messages: a C method, no Python call per message."""
        callback = self._callback
        deliver = None
        if self.protocol.is_client:
            pass
        elif callback is not None:
            lock = self._send_lock
            if lock is None or not lock.locked():
                deliver = self.protocol.message_deliverer(callback)
        elif self._messages is not None:
            deliver = self.protocol.message_deliverer(self._messages.append)
        self._deliver = deliver

    def _finish_read(self, taken: int | tuple[int, Exception], data: bytes) -> None:
        protocol = self.protocol
        waiting_for_close = protocol.close_sent is not None
        if type(taken) is tuple:
            taken, error = taken
            logger.error("message callback failed", exc_info=error)
            self._fail_internal()
        assert type(taken) is int
        received = None
        if taken < len(data):
            received = protocol.receive_messages(memoryview(data)[taken:])
        self._process_events(waiting_for_close, received)

    def _handle_event(self, event: object) -> None:
        """Handle the events only one role sees (the opening handshake's)."""

    def _log_failure(self, error: Exception) -> None:
        logger.debug("%s: connection failed: %s", self._describe_peer(), error)

    def _fail_internal(self) -> None:
        protocol = self.protocol
        if protocol.state is _OPEN and protocol.close_sent is None:
            protocol.fail(_ApplicationFailure(CloseCode.INTERNAL_ERROR, ""))


class _ApplicationFailure(PolicyViolation):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = code


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
