"""Every coroutine test here, except those driving Chromium, runs under `TEST_TIMEOUT_S`: a bug
that hangs fails its test instead of the whole run."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

TEST_TIMEOUT_S = 20
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_here = isinstance(item, pytest.Function) and HERE in item.path.parents
        if (
            in_here
            and inspect.iscoroutinefunction(item.obj)
            and item.get_closest_marker("browser") is None
        ):
            item.obj = _bounded(item.obj)


def _bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(TEST_TIMEOUT_S):
            await test(*args, **kwargs)

    return run
