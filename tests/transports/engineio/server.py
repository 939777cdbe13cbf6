"""The Engine.IO echo server the official engine.io-protocol suite expects, on fullduplex.

Serves an echo at ``/engine.io/`` with the suite's settings (those of the reference server,
engine.io on Node): ping interval 300 ms, ping timeout 200 ms,
``maxPayload`` 1000000, CORS ``*``, and no permessage-deflate.

Usage: python tests/transports/engineio/server.py [PORT]   (127.0.0.1, default port 9600)
"""

from __future__ import annotations

import asyncio
import sys

import fullduplex
from fullduplex.transports import Router
from fullduplex.transports.engineio import EngineIOEndpoint, EngineIOSession

__all__ = ["echo", "suite_app"]


async def echo(session: EngineIOSession) -> None:
    """Send every message back to the client that sent it."""
    async for message in session:
        await session.send(message)


def suite_app() -> tuple[Router, EngineIOEndpoint]:
    """A router with the echo endpoint mounted at ``/engine.io``, and that endpoint."""
    endpoint = EngineIOEndpoint(
        echo, ping_interval_ms=300, ping_timeout_ms=200, max_payload_bytes=1_000_000, cors="*"
    )
    app = Router()
    app.mount("/engine.io", endpoint)
    return app, endpoint


async def main(port: int) -> None:
    app, endpoint = suite_app()
    # The endpoint turns permessage-deflate off, as engine.io (perMessageDeflate: false).
    async with fullduplex.serve(app, "127.0.0.1", port) as server:
        print(f"Engine.IO echo on http://127.0.0.1:{server.port}/engine.io/", flush=True)
        try:
            await server.serve_forever()
        finally:
            await endpoint.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9600))
