"""Keepalive: one timer wheel per event loop instead of a loop timer per connection."""

from __future__ import annotations

import asyncio

from fullduplex import ServerConnection, connect, serve
from fullduplex.io.asyncio.keepalive import Keepalive, TimerWheel

from .peers import Holder


class _Owner:
    """Records when the wheel calls it; stands in for a connection (duck-typed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fired: list[tuple[str, float]], name: str):
        self.loop, self.fired, self.name = loop, fired, name

    def _timer_fired(self) -> None:
        self.fired.append((self.name, self.loop.time()))


async def test_timer_wheel_fires_each_timer_once_not_early_and_at_most_an_eighth_late() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop)
    fired: list[tuple[str, float]] = []
    start = loop.time()
    owners = {name: _Owner(loop, fired, name) for name in ("a", "b", "c")}
    wheel.schedule(0.08, owners["a"])  # type: ignore[arg-type]
    wheel.schedule(0.04, owners["b"])  # type: ignore[arg-type]
    due = wheel.schedule(0.06, owners["c"])  # type: ignore[arg-type]
    wheel.cancel(due, owners["c"])  # type: ignore[arg-type]
    # "Late" is judged against plain loop timers due at each timer's latest allowed time (plus
    # 1 ms for rounding), not against the clock: a loaded machine delays both alike, and the
    # loop runs due timers in the order of their due times. By a's deadline, c's tick is past.
    scheduled = loop.time()
    fired_by_deadline = []
    for delay in (0.04, 0.08):
        deadline: asyncio.Future[list[str]] = loop.create_future()
        loop.call_at(
            scheduled + delay * 1.125 + 0.001,
            lambda deadline=deadline: deadline.set_result([name for name, _ in fired]),
        )
        fired_by_deadline.append(deadline)
    assert await fired_by_deadline[0] == ["b"]
    assert await fired_by_deadline[1] == ["b", "a"]
    for (name, at), delay in zip(fired, (0.04, 0.08), strict=True):
        assert at - start >= delay - 0.002, name


async def test_timer_wheel_is_one_per_running_loop() -> None:
    loop = asyncio.get_running_loop()
    assert TimerWheel.for_loop(loop) is TimerWheel.for_loop(loop)


async def test_idle_connections_share_one_loop_timer_for_keepalive() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0, ping_interval=30) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        clients = [await connect(url, ping_interval=None) for _ in range(20)]
        connections: list[ServerConnection] = [await hold.next() for _ in clients]
        wheel = TimerWheel.for_loop(asyncio.get_running_loop())
        scheduled = {c for bucket in wheel._buckets.values() for c in bucket}
        assert set(connections) <= scheduled
        assert all(isinstance(c, Keepalive) for c in scheduled)
        assert wheel._handle is not None
        for client in clients:
            await client.close()
        for connection in connections:  # each leaves the wheel in its connection_lost
            await connection.wait_closed()
        assert not {c for bucket in wheel._buckets.values() for c in bucket} & set(connections)
