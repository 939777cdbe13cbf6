"""Pings and keepalive: `ping` / `pong`, and one timer wheel per event loop.

Theory of operation
-------------------
Every ``ping_interval`` a connection sends a ping; if no pong (any pong: it shows the peer is
alive) comes within ``ping_timeout``, the connection fails with 1011. An idle server holds
tens of thousands of connections, each with such a timer, and a loop timer handle costs
about 500 bytes under uvloop. So the timers of all connections on a loop share one
`TimerWheel`: a deadline is rounded up to a coarse tick (an eighth of its delay, at most one
second), connections due in the same tick share a bucket, and a single loop timer fires for
the earliest bucket. A connection holds only the tick it is due at.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import os
import threading
import time

from ...exceptions import PolicyViolation
from ...protocol.connection import Connection, State
from ...protocol.frames import CloseCode
from ..options import Options
from .inbox import MessageQueue

__all__ = ["Keepalive", "TimerWheel"]

_OPEN = State.OPEN


class TimerWheel:
    """Coarse timers for many connections of one event loop, under one loop timer.

    Use `for_loop` to get the running loop's wheel.
    """

    __slots__ = ("_loop", "_buckets", "_ticks", "_handle", "_handle_due")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buckets: dict[float, set[Keepalive]] = {}
        self._ticks: list[float] = []  # a heap of the buckets' due times
        self._handle: asyncio.TimerHandle | None = None
        self._handle_due = math.inf

    @staticmethod
    def for_loop(loop: asyncio.AbstractEventLoop) -> TimerWheel:
        """Return the wheel of ``loop``, the event loop running in this thread."""
        wheel: TimerWheel | None = getattr(_thread_state, "wheel", None)
        if wheel is None or wheel._loop is not loop:
            wheel = _thread_state.wheel = TimerWheel(loop)
        return wheel

    def schedule(self, delay: float, owner: Keepalive) -> float:
        """Call ``owner._timer_fired()`` in about ``delay`` seconds (at most 1/8 later).

        Returns:
            The tick it is due at, which `cancel` takes.
        """
        now = self._loop.time()
        resolution = min(1.0, max(delay / 8, 0.001))
        due = math.ceil((now + delay) / resolution) * resolution
        if due <= now:
            due += resolution
        bucket = self._buckets.get(due)
        if bucket is None:
            bucket = self._buckets[due] = set()
            heapq.heappush(self._ticks, due)
        bucket.add(owner)
        if due < self._handle_due:
            self._arm(due)
        return due

    def cancel(self, due: float, owner: Keepalive) -> None:
        """Forget ``owner``'s timer due at ``due``."""
        bucket = self._buckets.get(due)
        if bucket is not None:
            bucket.discard(owner)

    def _arm(self, due: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_at(due, self._tick)
        self._handle_due = due

    def _tick(self) -> None:
        self._handle = None
        self._handle_due = math.inf
        now = self._loop.time()
        ticks = self._ticks
        while ticks and ticks[0] <= now:
            for owner in self._buckets.pop(heapq.heappop(ticks), ()):
                owner._timer_fired()
        if ticks:
            self._arm(ticks[0])


_thread_state = threading.local()


class Keepalive(MessageQueue):
    """Pings the peer every ``ping_interval`` and fails the connection without an answer."""

    __slots__ = ("_pings", "_keepalive_due", "_keepalive_ping")

    def __init__(self, protocol: Connection, options: Options) -> None:
        super().__init__(protocol, options)
        # Pings sent by `ping`, by payload: their waiters and when they were sent.
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        # The tick of the wheel this connection is due at, and the keepalive ping's payload
        # while it waits for a pong.
        self._keepalive_due: float | None = None
        self._keepalive_ping: bytes | None = None

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

    def _acknowledge_pings(self, payload: bytes) -> None:
        """A pong arrived: it answers its ping and every earlier one (RFC 6455 §5.5.3
        allows skipping), and, whatever it answers, shows that the peer is alive."""
        if self._keepalive_ping is not None:
            self._keepalive_ping = None
            self._schedule_keepalive(self.options.ping_interval)
        if payload not in self._pings:
            return
        now = time.monotonic()
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
        if self.protocol.state is _OPEN:
            self._schedule_keepalive(self.options.ping_interval)

    def _schedule_keepalive(self, delay: float | None) -> None:
        wheel = TimerWheel.for_loop(self._loop)
        if self._keepalive_due is not None:
            wheel.cancel(self._keepalive_due, self)
            self._keepalive_due = None
        if delay is not None:
            self._keepalive_due = wheel.schedule(delay, self)

    def _timer_fired(self) -> None:
        """The wheel's call: time to ping, or the ping went unanswered."""
        self._keepalive_due = None
        protocol = self.protocol
        if protocol.state is not _OPEN or protocol.close_sent is not None:
            return
        if self._keepalive_ping is not None:
            # Logged by `_log_failure`, like every failure.
            timeout = self.options.ping_timeout
            protocol.fail(_KeepaliveTimeout(f"no pong within {timeout} s"))
            self._process_events()
            return
        payload = os.urandom(4)
        while payload in self._pings:
            payload = os.urandom(4)
        protocol.send_ping(payload)
        self._flush()
        self._keepalive_ping = payload
        self._schedule_keepalive(self.options.ping_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._schedule_keepalive(None)
        error = self.protocol.closed_error()
        # Marked retrieved: a ping's caller may have stopped waiting for it.
        for waiter, _ in self._pings.values():
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()
        self._pings.clear()


class _KeepaliveTimeout(PolicyViolation):
    close_code = CloseCode.INTERNAL_ERROR
