"""The in-memory endpoint fixture shared by test_endpoint.py and test_session.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fullduplex.transports.engineio import EngineIOEndpoint

from .server import echo

# A heartbeat that stays out of the way of exact packet checks, even on a loaded machine;
# the heartbeat's own tests pass theirs.
QUIET = {"ping_interval_ms": 10_000, "ping_timeout_ms": 5_000}


@pytest.fixture
async def make_endpoint() -> AsyncIterator[Callable[..., EngineIOEndpoint]]:
    """``make_endpoint(handler=echo, **options)``: an endpoint closed after the test."""
    endpoints: list[EngineIOEndpoint] = []

    def make(handler: Any = echo, **options: Any) -> EngineIOEndpoint:
        endpoint = EngineIOEndpoint(handler, **{**QUIET, **options})
        endpoints.append(endpoint)
        return endpoint

    yield make
    for endpoint in endpoints:
        await asyncio.wait_for(endpoint.aclose(), 5)
