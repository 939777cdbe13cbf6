"""uvicorn, run inside a test on the test's event loop, serving an ASGI application."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

__all__ = ["uvicorn_serving"]


@asynccontextmanager
async def uvicorn_serving(app: Any, **config: Any) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    """Serve ``app`` on a free port of 127.0.0.1 until the block ends; yield the server, once
    it listens, and its port.

    Args:
        app: the ASGI application.
        config: `uvicorn.Config`'s options, besides ``lifespan="off"`` and
            ``log_level="warning"``, which they may override.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port: int = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, **{"lifespan": "off", "log_level": "warning", **config})
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # polled: uvicorn has no event for it
                if task.done():
                    task.result()  # it failed to start: say why
                await asyncio.sleep(0.01)
        yield server, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        listener.close()
