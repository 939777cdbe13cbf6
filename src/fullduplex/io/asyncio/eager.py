"""Run a coroutine's first step at once, and a task only for the rest, if there is a rest.

A request handler or an event handler usually finishes without ever waiting: creating a task
for it costs more than the handler (the task, its first scheduling, its done callbacks). The
caller instead runs the first step itself, ``suspended_on = coroutine.send(None)``, inside the
callback that brought the work; only a coroutine that suspends gets a task, running `rest_of`.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["rest_of"]


@types.coroutine
def rest_of(coroutine: Coroutine[Any, Any, Any], suspended_on: Any) -> Generator[Any, Any, Any]:
    """The rest of ``coroutine``, whose first step already ran and suspended on ``suspended_on``.

    Wrap it in a task (``loop.create_task(rest_of(coroutine, suspended_on))``): it hands what
    the coroutine awaits up to the task, what the task sends or throws (a cancellation) down,
    and returns what the coroutine returns.
    """
    while True:
        try:
            value = yield suspended_on
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as exc:
            try:
                suspended_on = coroutine.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                suspended_on = coroutine.send(value)
            except StopIteration as done:
                return done.value
