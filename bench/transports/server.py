"""The server of the transport benchmark: one small message a second to every client.

    python bench/transports/server.py [--port 0] [--loop uvloop]

prints ``ready PORT`` once it listens, and serves until SIGTERM:

- ``/sockjs``: a `SockJSEndpoint` (every SockJS transport: xhr long-polling, xhr-streaming,
  htmlfile, EventSource, SockJS over WebSocket);
- ``/ws``: a raw WebSocket route;
- ``/poll?id=CLIENT``: short polling as the article describes it, a plain HTTP route that answers
  at once with whatever was queued for that client since its last request (an empty body when
  nothing was).

Every client gets the same message once a second, at a phase of its own: the server's
``time.monotonic_ns()`` (the machine-wide CLOCK_MONOTONIC the load generator reads too) as 20
decimal digits, so the load generator finds each message in the bytes it reads and computes its
delivery latency. WebSocket pings are off so that every byte counted belongs to a message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import time
from collections import deque

import fullduplex
from fullduplex.exceptions import ConnectionClosed
from fullduplex.transports import HTTPExchange, Router, Session
from fullduplex.transports.sockjs import SockJSEndpoint

__all__ = ["MESSAGE_DIGITS", "stamp", "ticker", "make_app", "main"]

MESSAGE_DIGITS = 20
PERIOD_S = 1.0
MAX_CLIENTS = 20_000


def stamp() -> str:
    """The message: the send time, CLOCK_MONOTONIC in ns, as ``MESSAGE_DIGITS`` digits."""
    return f"{time.monotonic_ns():0{MESSAGE_DIGITS}d}"


async def ticker(session: Session) -> None:
    """Send ``stamp()`` once a second, at a random phase, until the session closes."""
    await asyncio.sleep(random.random() * PERIOD_S)
    loop = asyncio.get_running_loop()
    next_send = loop.time()
    with contextlib.suppress(ConnectionClosed):
        while True:
            await session.send(stamp())
            next_send += PERIOD_S
            await asyncio.sleep(max(0.0, next_send - loop.time()))


class ShortPolling:
    """``/poll?id=CLIENT``: a queue per client, filled once a second, emptied by each GET."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, exchange: HTTPExchange) -> None:
        client = exchange.request.path.partition("id=")[2]
        queue = self._queues.get(client)
        if queue is None:
            if len(self._queues) >= MAX_CLIENTS:
                await exchange.respond(503, [("Content-Type", "text/plain")], b"too many")
                return
            queue = self._queues[client] = deque()
            task = asyncio.create_task(self._fill(queue))
            self._tasks.add(task)
        body = "\n".join(queue).encode()
        queue.clear()
        await exchange.respond(
            200, [("Content-Type", "text/plain"), ("Cache-Control", "no-store")], body
        )

    async def _fill(self, queue: deque[str]) -> None:
        await asyncio.sleep(random.random() * PERIOD_S)
        loop = asyncio.get_running_loop()
        next_send = loop.time()
        while True:
            queue.append(stamp())
            next_send += PERIOD_S
            await asyncio.sleep(max(0.0, next_send - loop.time()))


def make_app() -> Router:
    """The three kinds of routes above, on one router."""
    app = Router()
    app.mount("/sockjs", SockJSEndpoint(ticker, max_sessions=MAX_CLIENTS))
    app.websocket("/ws", ticker)
    app.route("/poll", ShortPolling())
    return app


async def main(port: int) -> None:
    """Serve on 127.0.0.1:``port``; print ``ready PORT``; stop on SIGTERM."""
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    # Compression off: Chromium offers permessage-deflate, and the load generator finds the
    # messages in the bytes it reads. Pings off: every byte counted belongs to the messages.
    async with fullduplex.serve(
        make_app(), "127.0.0.1", port, backlog=4096, ping_interval=None, compression=None
    ) as server:
        print(f"ready {server.port}", flush=True)
        await stopping.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main(args.port))
    else:
        asyncio.run(main(args.port))
