"""When the reconnecting client (``async for ws in connect(url)``) tries again, and how long it
waits first; shared by the asyncio and the blocking client, and free of I/O and clocks.

Policy
------
- Opening fails: an error that time may cure is retried after a delay (connection refused or
  reset, DNS failure, ``open_timeout``, TLS failures other than an untrusted certificate, HTTP
  408, 429 and 5xx, a proxy that could not reach the server); any other error is raised at
  once (a 4xx refusal, a bad handshake, a redirect that may not be followed, an untrusted
  certificate, a proxy refusing the credentials), since another try would fail the same way.
- A connection ends: the iterator stops after a closing handshake that completed with 1000
  (normal closure) or without a code (1005), whichever side began it: the conversation is
  over. Any other end opens a new connection: 1001 (the server going away, as on restart),
  1011/1012/1013, a keepalive timeout, or a connection lost without a closing handshake.
- Delays: `Backoff`, one wait before every new try, also the first one after a connection
  ended (its jitter keeps many clients cut off together from returning together). The waits
  grow with each try and start again from ``initial_delay_s`` after a connection that stayed
  open at least ``max_delay_s`` (`RetrySchedule`). A ``Retry-After`` in seconds (RFC 9110
  §10.2.3) on a 429 or 503 lengthens the wait, up to ``max_delay_s``.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from ...exceptions import InvalidHandshake, InvalidRedirect, InvalidStatus, ProxyError
from ...protocol.connection import Connection

__all__ = ["Backoff", "RetrySchedule", "is_retryable", "retry_after_s", "ends_conversation"]


@dataclass(frozen=True)
class Backoff:
    """How long the reconnecting client waits before each new try: exponential growth, capped,
    with random jitter so that many clients cut off together do not return together.

    The n-th wait in a row (n = 0, 1, ...) is ``min(max_delay_s, initial_delay_s * factor**n)``
    shortened by a random fraction of at most ``jitter``: with the defaults, the first wait is
    0.5 to 1 s, the fifth 8 to 16 s, and none is longer than 60 s.

    Args:
        initial_delay_s: the first wait, in seconds.
        factor: how much each wait grows over the previous one (1 keeps it constant).
        max_delay_s: the longest wait, in seconds.
        jitter: the largest fraction of a wait removed at random: 0 for none, 1 for "full
            jitter" (anywhere between 0 and the wait).

    Raises:
        ValueError: a negative delay, a factor below 1, or a jitter outside [0, 1].
    """

    initial_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.initial_delay_s <= self.max_delay_s:
            raise ValueError("Backoff needs 0 <= initial_delay_s <= max_delay_s")
        if not self.factor >= 1:
            raise ValueError("Backoff's factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Backoff's jitter must be between 0 and 1")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The successive waits, in seconds, without end.

        Args:
            rng: the source of the jitter (tests pass a seeded one); `random` when None.
        """
        uniform = (rng or random.Random()).random
        delay = self.initial_delay_s
        while True:
            yield delay * (1 - self.jitter * uniform())
            delay = min(self.max_delay_s, delay * self.factor)


# An untrusted or mismatched certificate stays so; a TLS handshake cut short need not.
_PERMANENT_OS_ERRORS = (ssl.SSLCertVerificationError,)


def is_retryable(error: BaseException) -> bool:
    """Whether a failure to open a connection may go away if the client tries again later."""
    if isinstance(error, InvalidRedirect):
        return False
    if isinstance(error, InvalidStatus):
        status = error.response.status
        return status >= 500 or status in (408, 429)
    if isinstance(error, InvalidHandshake):
        # A malformed or mismatched answer is a broken server; only a hang-up mid-handshake
        # (no answer at all: protocol/client.py's InvalidResponse) is worth another try.
        return "connection closed" in str(error)
    if isinstance(error, ProxyError):
        return error.is_transient
    if isinstance(error, _PERMANENT_OS_ERRORS):
        return False
    return isinstance(error, OSError)  # TimeoutError, ConnectionError, socket.gaierror...


def retry_after_s(error: BaseException) -> float | None:
    """The ``Retry-After`` a 429 or 503 refusal asked for, in seconds; None if none was given
    as a number of seconds (an HTTP date is ignored: the server's clock is not ours)."""
    if not isinstance(error, InvalidStatus) or error.response.status not in (429, 503):
        return None
    value = error.response.headers.get("Retry-After")
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return float(value)


def ends_conversation(protocol: Connection) -> bool:
    """Whether a closed connection ended in a way that stops the reconnecting client: a
    completed closing handshake with 1000 or no code, and no failure on this side."""
    if protocol.failure is not None or not protocol.was_clean:
        return False
    assert protocol.close_received is not None  # was_clean
    return protocol.close_received[0] in (1000, 1005)


class RetrySchedule:
    """The waits of one reconnecting client, from its `Backoff`, as its tries come and go.

    Args:
        backoff: the delays' parameters.
        rng: the source of the jitter; `random` when None.
    """

    def __init__(self, backoff: Backoff, rng: random.Random | None = None) -> None:
        self.backoff = backoff
        self._rng = rng
        self._delays = backoff.delays(rng)

    def after_failure(self, error: BaseException) -> float:
        """The wait after a failed try to open a connection (``Retry-After`` included)."""
        delay = next(self._delays)
        requested = retry_after_s(error)
        if requested is not None:
            delay = min(max(delay, requested), self.backoff.max_delay_s)
        return delay

    def after_close(self, lifetime_s: float) -> float:
        """The wait after an open connection ended, ``lifetime_s`` seconds after it opened.

        A connection that lived at least ``max_delay_s`` counts as healthy: the waits start
        again from ``initial_delay_s``. One cut off sooner lets them go on growing, so that a
        server that accepts and drops every connection is not hammered.
        """
        if lifetime_s >= self.backoff.max_delay_s:
            self._delays = self.backoff.delays(self._rng)
        return next(self._delays)
