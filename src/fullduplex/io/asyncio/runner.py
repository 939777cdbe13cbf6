"""Running a program's main coroutine on the fastest event loop installed."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run ``main`` like `asyncio.run`, on uvloop when it is installed.

    uvloop (``pip install 'fullduplex[speed]'``) roughly halves the event loop's share of the
    time per message; without it the standard loop runs the same code.

    Returns:
        What ``main`` returned.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main, debug=debug)
    with asyncio.Runner(debug=debug, loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
