"""The SockJS protocol suite's test server, on fullduplex; also the example of the SockJS API.

Run ``python examples/sockjs_test_server.py [PORT]`` (default 8081), then the public SockJS
protocol suite against it (see docs/transports.md)::

    scripts/install-sockjs-suite.sh     # once
    scripts/sockjs-suite/run.sh http://127.0.0.1:8081

The handler is an ordinary session handler, the same kind of function that serves raw
WebSocket connections: here ``echo`` serves SockJS sessions under four prefixes, and raw
WebSocket connections at ``/ws``. The prefixes are the ones the suite expects:

- ``/echo``: echo; streaming responses end after 4096 bytes (the suite's response limit);
- ``/close``: closes every session at once with 3000 "Go away!";
- ``/disabled_websocket_echo``: echo with the WebSocket transports off;
- ``/cookie_needed_echo``: echo that sets the ``JSESSIONID`` cookie (sticky sessions).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import fullduplex
from fullduplex.transports import Router, Session
from fullduplex.transports.sockjs import SockJSEndpoint

__all__ = ["echo", "close", "make_app", "main"]


async def echo(session: Session) -> None:
    """Send every message back, in order."""
    async for message in session:
        await session.send(message)


async def close(session: Session) -> None:
    """Close the session at once."""
    await session.close(3000, "Go away!")


def make_app() -> Router:
    """The routes the suite expects, and a raw WebSocket echo at ``/ws``."""
    app = Router()
    app.mount("/echo", SockJSEndpoint(echo, response_limit_bytes=4096))
    app.mount("/close", SockJSEndpoint(close))
    app.mount("/disabled_websocket_echo", SockJSEndpoint(echo, websocket=False))
    app.mount("/cookie_needed_echo", SockJSEndpoint(echo, cookie_needed=True))
    app.websocket("/ws", echo)
    return app


async def main(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until interrupted."""
    async with fullduplex.serve(make_app(), "127.0.0.1", port) as server:
        print(f"SockJS test server on http://127.0.0.1:{server.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8081))
