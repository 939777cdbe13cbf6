"""The in-memory endpoint fixture shared by test_endpoint.py and test_session.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fullduplex.transports.engineio import EngineIOEndpoint

from .server import echo

# The suites' heartbeat: tests that need another pass their own.
FAST = {"ping_interval_ms": 300, "ping_timeout_ms": 200}


@pytest.fixture
async def make_endpoint() -> AsyncIterator[Callable[..., EngineIOEndpoint]]:
    """``make_endpoint(handler=echo, **options)``: an endpoint closed after the test."""
    endpoints: list[EngineIOEndpoint] = []

    def make(handler: Any = echo, **options: Any) -> EngineIOEndpoint:
        endpoint = EngineIOEndpoint(handler, **{**FAST, **options})
        endpoints.append(endpoint)
        return endpoint

    yield make
    for endpoint in endpoints:
        await asyncio.wait_for(endpoint.aclose(), 5)
