"""A SockJS session: one peer's messages, carried by a series of HTTP requests.

Theory of operation
-------------------
Polling and streaming transports carry one session over many requests. A *receiving* request
(xhr, xhr_streaming, eventsource, htmlfile, jsonp) *attaches* to the session, takes frames
from it with `SockJSSession.pull`, writes them, and *detaches*; a *sending* request
(xhr_send, jsonp_send) hands the peer's messages to `SockJSSession.deliver`. At most one
receiving request is attached at a time; another one gets the ``2010`` close frame.

The session's state, and what moves it::

    OPEN ---- close() by the application ---------------> CLOSED (close frame c[code,reason])
      |------ the attached request's client went away ---> CLOSED (c[1002,"Connection interrupted"])
      |------ no request attached for disconnect_delay --> CLOSED and forgotten
    CLOSED -- no request attached for disconnect_delay --> forgotten (on_expired is called)

Frames come out of `pull` in this order: ``o`` once, first; then every queued message in one
``a`` frame; then, once closed, the close frame (to every later request, until the session is
forgotten); otherwise ``h`` after ``heartbeat_s`` with nothing to send.

Delivery guarantees. Messages the application sends while no request is attached (a polling
client between two polls) wait in the outgoing queue and all leave, in order, in the next
frame. The queue holds at most ``max_queue_bytes`` (UTF-8) once it holds a message; the
``overflow`` policy says what a `send` beyond that does:

- ``"block"`` (default): `send` waits until a request takes the queue. A slow streaming reader
  thus slows the sender (the request waits in `HTTPExchange.write`, so the queue is not taken),
  and nothing is dropped.
- ``"close"``: the session closes with `QUEUE_OVERFLOW_CODE`, and `send` raises
  `ConnectionClosed`; for a broadcaster that must never wait on one peer.

Messages from the peer wait in the incoming queue until the application's `recv` takes them;
beyond ``max_queue_bytes`` the sending request waits (backpressure on the peer's POSTs).
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal

from ...exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from ...protocol.http11 import Request
from ..base import Session
from . import codec

__all__ = [
    "SockJSSession",
    "SessionState",
    "Overflow",
    "QUEUE_OVERFLOW_CODE",
    "INTERRUPTED_CODE",
    "ANOTHER_CONNECTION_CODE",
    "TIMED_OUT_CODE",
    "another_connection_frame",
]

Overflow = Literal["block", "close"]
"""What `SockJSSession.send` does when the outgoing queue is full (see the module docstring)."""

QUEUE_OVERFLOW_CODE = 4009
"""The close code of a session closed by the ``"close"`` overflow policy."""

INTERRUPTED_CODE = 1002
"""sockjs-protocol: a receiving request's client went away (``Connection interrupted``)."""

ANOTHER_CONNECTION_CODE = 2010
"""sockjs-protocol: the close frame a second receiving request gets; the session lives on."""

TIMED_OUT_CODE = 1006
"""The close code the application sees when the client did not come back in time."""


class SessionState(enum.Enum):
    """Where a `SockJSSession` is in its life."""

    OPEN = "open"
    CLOSED = "closed"
    FORGOTTEN = "forgotten"


class _Event(enum.Enum):
    CLOSE = "close"
    EXPIRE = "expire"


# The state machine as data: what each event does in each state (absent: nothing).
TRANSITIONS: dict[SessionState, dict[_Event, SessionState]] = {
    SessionState.OPEN: {_Event.CLOSE: SessionState.CLOSED, _Event.EXPIRE: SessionState.FORGOTTEN},
    SessionState.CLOSED: {_Event.EXPIRE: SessionState.FORGOTTEN},
    SessionState.FORGOTTEN: {},
}


def _size(message: str) -> int:
    return len(message.encode("utf-8", "surrogatepass"))


class SockJSSession(Session):
    """A SockJS session over polling or streaming requests (see the module docstring).

    Made by `SockJSEndpoint` for each new session id; the application only uses the `Session`
    interface (`recv`, `send`, `close`, `transport`...). Only text messages are carried.

    Args:
        request: the request that opened the session.
        remote_address: its client's address.
        transport: the name of the transport that opened it (``"xhr-polling"``...).
        heartbeat_s: seconds without a frame before a heartbeat frame.
        disconnect_delay_s: seconds without a receiving request before the session is
            forgotten (and closed, if it was open).
        max_queue_bytes: bound of the outgoing and of the incoming queue.
        overflow: the outgoing queue's overflow policy, ``"block"`` or ``"close"``.
        on_expired: called once when the session is forgotten.
    """

    def __init__(
        self,
        request: Request,
        remote_address: Any,
        *,
        transport: str,
        heartbeat_s: float = 25.0,
        disconnect_delay_s: float = 5.0,
        max_queue_bytes: int = 1024 * 1024,
        overflow: Overflow = "block",
        on_expired: Callable[[SockJSSession], None] | None = None,
    ) -> None:
        if overflow not in ("block", "close"):
            raise ValueError(f"overflow must be 'block' or 'close', not {overflow!r}")
        self._request = request
        self._remote_address = remote_address
        self._transport = transport
        self._heartbeat_s = heartbeat_s
        self._disconnect_delay_s = disconnect_delay_s
        self._max_queue_bytes = max_queue_bytes
        self._overflow = overflow
        self._on_expired = on_expired

        self.state = SessionState.OPEN
        self._open_frame_sent = False
        self._close_code: int | None = None
        self._close_reason = ""
        self._close_frame = ""
        self._outgoing: deque[str] = deque()
        self._outgoing_bytes = 0
        self._incoming: deque[str] = deque()
        self._incoming_bytes = 0
        # Set when there may be something for `pull`, for `send`, for `recv`.
        self._outgoing_ready = asyncio.Event()
        self._outgoing_taken = asyncio.Event()
        self._incoming_changed = asyncio.Event()
        self._closed = asyncio.Event()
        self.is_attached = False
        self._expiry: asyncio.TimerHandle | None = None
        self._arm_expiry()

    # -- the Session interface ------------------------------------------------------------

    @property
    def transport(self) -> str:
        """The transport of the latest receiving request (``"xhr-polling"``...)."""
        return self._transport

    @property
    def request(self) -> Request:
        """The request that opened the session."""
        return self._request

    @property
    def remote_address(self) -> Any:
        """The address of the client that opened the session."""
        return self._remote_address

    @property
    def close_code(self) -> int | None:
        """The close code once closed (`INTERRUPTED_CODE`, `TIMED_OUT_CODE`...), else None."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        """The close reason once closed; empty while open."""
        return self._close_reason

    async def recv(self) -> str:
        """Return the peer's next message.

        Raises:
            ConnectionClosed: the session is closed and every message was received.
        """
        while not self._incoming:
            if self.state is not SessionState.OPEN:
                raise self._closed_error()
            self._incoming_changed.clear()
            await self._incoming_changed.wait()
        message = self._incoming.popleft()
        self._incoming_bytes -= _size(message)
        self._incoming_changed.set()
        return message

    async def send(self, message: str | bytes) -> None:
        """Queue one text message for the peer; see the module docstring for the queue bound.

        Raises:
            TypeError: ``message`` is bytes (SockJS carries text only).
            ConnectionClosed: the session is closed, or it closed because the queue was full
                (overflow policy ``"close"``).
        """
        if not isinstance(message, str):
            raise TypeError("SockJS carries text messages only")
        size = _size(message)
        while self._outgoing and self._outgoing_bytes + size > self._max_queue_bytes:
            if self.state is not SessionState.OPEN:
                break
            if self._overflow == "close":
                self._close(QUEUE_OVERFLOW_CODE, "Send queue overflow")
                break
            self._outgoing_taken.clear()
            await self._outgoing_taken.wait()
        if self.state is not SessionState.OPEN:
            raise self._closed_error()
        self._outgoing.append(message)
        self._outgoing_bytes += size
        self._outgoing_ready.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the session: messages already queued leave first, then the close frame."""
        self._close(code, reason)

    # -- what the endpoint drives ---------------------------------------------------------

    async def wait_closed(self) -> None:
        """Return once the session is closed."""
        await self._closed.wait()

    def attach(self, transport: str) -> bool:
        """Attach a receiving request; False when another one is attached already.

        A request that could not attach answers with `another_connection_frame`.
        """
        if self.is_attached:
            return False
        self.is_attached = True
        self._transport = transport
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        return True

    def detach(self) -> None:
        """Detach the receiving request; the disconnect delay starts."""
        self.is_attached = False
        self._arm_expiry()

    def interrupt(self) -> None:
        """The attached request's client went away: close with `INTERRUPTED_CODE`."""
        self._outgoing.clear()
        self._outgoing_bytes = 0
        self._close(INTERRUPTED_CODE, "Connection interrupted")

    async def pull(self) -> str:
        """Wait for the next frame for the attached request and return it.

        ``o`` first; then all queued messages as one ``a`` frame; once closed, the close
        frame; ``h`` after ``heartbeat_s`` of nothing.
        """
        if not self._open_frame_sent:
            self._open_frame_sent = True
            return codec.OPEN_FRAME
        if not self._outgoing and self.state is SessionState.OPEN:
            self._outgoing_ready.clear()
            try:
                async with asyncio.timeout(self._heartbeat_s):
                    await self._outgoing_ready.wait()
            except TimeoutError:
                return codec.HEARTBEAT_FRAME
        if self._outgoing:
            frame = codec.message_frame(self._outgoing)
            self._outgoing.clear()
            self._outgoing_bytes = 0
            self._outgoing_taken.set()
            return frame
        return self._close_frame

    async def deliver(self, messages: Iterable[str]) -> None:
        """Hand the peer's messages to `recv`, waiting while the incoming queue is full.

        Raises:
            ConnectionClosed: the session closed meanwhile.
        """
        for message in messages:
            size = _size(message)
            while self._incoming and self._incoming_bytes + size > self._max_queue_bytes:
                if self.state is not SessionState.OPEN:
                    raise self._closed_error()
                self._incoming_changed.clear()
                await self._incoming_changed.wait()
            if self.state is not SessionState.OPEN:
                raise self._closed_error()
            self._incoming.append(message)
            self._incoming_bytes += size
            self._incoming_changed.set()

    # -- internals ------------------------------------------------------------------------

    def _transition(self, event: _Event) -> bool:
        following = TRANSITIONS[self.state].get(event)
        if following is None:
            return False
        self.state = following
        return True

    def _close(self, code: int, reason: str) -> None:
        if not self._transition(_Event.CLOSE):
            return
        self._set_closed(code, reason)

    def _set_closed(self, code: int, reason: str) -> None:
        self._close_code = code
        self._close_reason = reason
        self._close_frame = codec.close_frame(code, reason)
        self._closed.set()
        # Wake every waiter: they all look at the state again.
        self._outgoing_ready.set()
        self._outgoing_taken.set()
        self._incoming_changed.set()

    def _arm_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self.state is SessionState.FORGOTTEN:
            return
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(self._disconnect_delay_s, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        was_open = self.state is SessionState.OPEN
        if not self._transition(_Event.EXPIRE):
            return
        if was_open:
            self._set_closed(TIMED_OUT_CODE, "Session timed out")
        self._outgoing.clear()
        self._outgoing_bytes = 0
        if self._on_expired is not None:
            self._on_expired(self)

    def _closed_error(self) -> ConnectionClosed:
        code = self._close_code if self._close_code is not None else TIMED_OUT_CODE
        if code in (1000, 1001):
            return ConnectionClosedOK(code, self._close_reason, True)
        # Clean: the close frame is what the peer gets (unlike after an interruption).
        was_clean = code not in (INTERRUPTED_CODE, TIMED_OUT_CODE)
        return ConnectionClosedError(code, self._close_reason, was_clean)


def another_connection_frame() -> str:
    """The close frame for a receiving request that finds another one attached."""
    return codec.close_frame(ANOTHER_CONNECTION_CODE, "Another connection still open")
