"""``make demo``: one fullduplex server with the chat room and the order board.

- ``/``: a front page linking both;
- ``/chat/``: the chat room (``examples/chat/``): Socket.IO over WebSocket or long-polling and
  SockJS over streaming transports, in the same rooms through one realtime hub;
- ``/orders/``: the live order board (``examples/order_board.py``), its WebSocket at
  ``/orders/ws``.

Everything runs in this one process on embedded defaults (the in-memory backend, no Redis).
Run it with ``make demo`` or ``python examples/demo.py [--port PORT]`` (the options set the
chat's limits too: ``--help``). Ctrl-C (or SIGTERM) closes every connection with 1001 and exits;
the pages reconnect on their own once a server is back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import sys
from pathlib import Path

import fullduplex
from fullduplex.transports import HTTPExchange, Router, Session, WebSocketSession

HERE = Path(__file__).parent
# The examples are scripts, not a package: make their modules importable from here.
sys.path.insert(0, str(HERE))

import order_board  # noqa: E402
from chat.server import ChatApp, ChatLimits  # noqa: E402

__all__ = ["build", "main", "parse_limits"]

FRONT_PAGE = (HERE / "demo.html").read_bytes()


def build(
    limits: ChatLimits, *, tick_s: float = 1.5
) -> tuple[Router, ChatApp, order_board.OrderBoardServer]:
    """The router of the whole demo, the chat, and the order board's server."""
    router = Router()
    chat = ChatApp(limits)
    chat.mount(router, "/chat")
    board = order_board.OrderBoardServer(order_board.OrderBoard(random.Random()), tick_s)

    async def front_page(exchange: HTTPExchange) -> None:
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        await exchange.respond(200, headers, FRONT_PAGE)

    async def orders_page(exchange: HTTPExchange) -> None:
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        await exchange.respond(200, headers, order_board.PAGE)

    async def to_orders(exchange: HTTPExchange) -> None:
        await exchange.respond(308, [("Location", "/orders/")], b"")

    async def orders_websocket(session: Session) -> None:
        assert isinstance(session, WebSocketSession)
        await board.handler(session.connection)

    async def no_icon(exchange: HTTPExchange) -> None:
        await exchange.respond(204, [], b"")

    router.route("/", front_page)
    router.route("/favicon.ico", no_icon)
    router.route("/orders", to_orders)
    router.route("/orders/", orders_page)
    router.websocket("/orders/ws", orders_websocket)
    return router, chat, board


async def main(host: str, port: int, limits: ChatLimits) -> int:
    """Serve the demo until SIGINT or SIGTERM; return the exit status (1: cannot listen)."""
    router, chat, board = build(limits)
    try:
        # The server's defaults: permessage-deflate for messages of 1 KiB and more (the order
        # board's snapshot), none on Engine.IO's WebSocket, which its endpoint turns off.
        server = await fullduplex.serve(router, host, port)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"demo: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    warehouse = asyncio.create_task(board.run_warehouse())
    print(f"demo: http://{host}:{server.port}/  (Ctrl-C stops)", flush=True)
    await stop.wait()
    warehouse.cancel()
    await chat.close()
    server.close(fullduplex.CloseCode.GOING_AWAY)
    await server.wait_closed()
    with contextlib.suppress(asyncio.CancelledError):
        await warehouse
    print("demo: stopped", flush=True)
    return 0


def parse_limits(args: argparse.Namespace) -> ChatLimits:
    """The chat's limits from the command line's options (one per `ChatLimits` field)."""
    return ChatLimits(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(ChatLimits)}
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="fullduplex demo: a chat room and a live order board on one port"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any)")
    chat_options = parser.add_argument_group("chat limits")
    for field in dataclasses.fields(ChatLimits):
        default = field.default
        chat_options.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(default),
            default=default,
            help=f"default: {default}",
        )
    parsed = parser.parse_args()
    sys.exit(asyncio.run(main(parsed.host, parsed.port, parse_limits(parsed))))
