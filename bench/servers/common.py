"""What the Python echo servers of the benchmark share: their command line and how they
start and stop, which is what bench/run.py expects of every server.

Each server takes ``--port PORT`` (0 picks a free port), ``--deflate`` (accept
permessage-deflate; refused otherwise) and ``--loop uvloop|asyncio`` (uvloop when installed),
listens on 127.0.0.1, prints ``ready PORT LOOP`` once it listens, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
from collections.abc import Awaitable, Callable

__all__ = ["MAX_MESSAGE_SIZE", "Start", "Stop", "run"]

MAX_MESSAGE_SIZE = 16 * 2**20
"""The one setting the benchmark changes from each library's defaults."""

Stop = Callable[[], Awaitable[None]]
Start = Callable[[int, bool], Awaitable[tuple[int, Stop]]]
"""Starts listening on (port, deflate); returns the bound port and a coroutine that stops."""


def run(start: Start, description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--deflate", action="store_true", help="accept permessage-deflate")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"])
    args = parser.parse_args()
    loop_name = args.loop or ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")

    async def main() -> None:
        port, stop = await start(args.port, args.deflate)
        terminated = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)
        print("ready", port, loop_name, flush=True)
        await terminated.wait()
        await asyncio.wait_for(stop(), timeout=5)

    if loop_name == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
