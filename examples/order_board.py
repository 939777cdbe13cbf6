"""A live order board: the server pushes order-status changes to every open page.

This is the seed article's own use case, 获取订单信息变化 (following changes to orders), done
the WebSocket way: instead of each page polling "has anything changed?", the server tells
every page the moment an order moves. Run it with ``make demo`` (or ``python
examples/order_board.py [--port PORT]``) and open the URL it prints, in several tabs.

What happens:

- `OrderBoard` holds the orders. Each one moves placed → packing → shipped → delivered
  (已下单 → 备货中 → 已发货 → 已送达), one step at a time, on the server side: every 1-2 s
  (``--tick``) a simulated warehouse advances a random order or takes a new one.
- A page that connects gets a snapshot of the whole board, then every change as a delta,
  numbered (``seq``) so that it can tell it missed nothing. A page that reconnects, after a
  network hiccup or a server restart, gets a new snapshot: it catches up at once.
- Plain HTTP and WebSocket share one port: ``process_request`` answers ``GET /`` with the
  page and lets ``/ws`` through to the WebSocket handshake.
- Ctrl-C (or SIGTERM) closes every connection with 1001 (going away) and exits; the pages
  show it, and reconnect, with backoff, until a server is back.

Messages, server to page (JSON text): ``snapshot`` {seq, server, statuses, orders, viewers};
``order`` {seq, change: created|advanced, order}; ``removed`` {seq, id}; ``viewers`` {count}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fullduplex
from fullduplex import Request, Response, ServerConnection

PAGE = (Path(__file__).parent / "order_board.html").read_bytes()

# The statuses, in order, with their labels: (key, English, Chinese).
STATUSES = (
    ("placed", "Placed", "已下单"),
    ("packing", "Packing", "备货中"),
    ("shipped", "Shipped", "已发货"),
    ("delivered", "Delivered", "已送达"),
)
# An order only ever moves one step forward; "delivered" is final.
NEXT_STATUS = {"placed": "packing", "packing": "shipped", "shipped": "delivered"}

ITEMS = (
    "龙井茶 Longjing tea",
    "机械键盘 Mechanical keyboard",
    "保温杯 Thermos",
    "蓝牙耳机 Earbuds",
    "折叠伞 Umbrella",
    "台灯 Desk lamp",
    "运动鞋 Running shoes",
    "月饼礼盒 Mooncakes",
    "电饭煲 Rice cooker",
    "围巾 Scarf",
)
CITIES = ("上海 Shanghai", "北京 Beijing", "杭州 Hangzhou", "深圳 Shenzhen", "成都 Chengdu")

MIN_OPEN_ORDERS = 4
"""Below this many undelivered orders, the warehouse always takes a new one."""
MAX_OPEN_ORDERS = 9
"""At this many undelivered orders, it only advances the ones it has."""
DELIVERED_KEPT = 4
"""Delivered orders stay on the board until this many newer ones are delivered."""
SEND_TIMEOUT_S = 5.0
"""A page that cannot take a change within this long is dropped; it reconnects and catches up."""


@dataclass
class Order:
    id: str
    item: str
    city: str
    status: str
    updated: str  # ISO 8601, UTC


class OrderBoard:
    """The orders on the board, and the changes the simulated warehouse makes to them.

    Every change gets the next sequence number: a snapshot at ``seq`` plus the changes
    numbered ``seq + 1``, ``seq + 2``… is the board at any later point.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seq = 0
        self.orders: dict[str, Order] = {}
        self._delivered: list[str] = []  # oldest first
        self._next_id = rng.randrange(1000, 9000)
        for _ in range(MIN_OPEN_ORDERS + 2):
            self._create()
            for _ in range(rng.randrange(len(STATUSES))):
                last = list(self.orders)[-1]
                if self.orders[last].status in NEXT_STATUS:
                    self._advance(last)
        self.seq = 0  # the starting board is the first snapshot, not a list of changes

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "seq": self.seq,
            "statuses": [{"key": key, "en": en, "zh": zh} for key, en, zh in STATUSES],
            "orders": [asdict(order) for order in self.orders.values()],
        }

    def step(self) -> list[dict[str, Any]]:
        """Make one change, as the warehouse would; return the messages that describe it."""
        open_ids = [id for id, order in self.orders.items() if order.status != "delivered"]
        if len(open_ids) < MIN_OPEN_ORDERS or (
            len(open_ids) < MAX_OPEN_ORDERS and self.rng.random() < 0.3
        ):
            return [self._create()]
        changes = [self._advance(self.rng.choice(open_ids))]
        if len(self._delivered) > DELIVERED_KEPT:
            changes.append(self._remove(self._delivered.pop(0)))
        return changes

    def _create(self) -> dict[str, Any]:
        self._next_id += self.rng.randrange(1, 7)
        order = Order(
            id=f"#{self._next_id}",
            item=self.rng.choice(ITEMS),
            city=self.rng.choice(CITIES),
            status="placed",
            updated=_now(),
        )
        self.orders[order.id] = order
        self.seq += 1
        return {"type": "order", "seq": self.seq, "change": "created", "order": asdict(order)}

    def _advance(self, order_id: str) -> dict[str, Any]:
        order = self.orders[order_id]
        order.status = NEXT_STATUS[order.status]
        order.updated = _now()
        if order.status == "delivered":
            self._delivered.append(order_id)
        self.seq += 1
        return {"type": "order", "seq": self.seq, "change": "advanced", "order": asdict(order)}

    def _remove(self, order_id: str) -> dict[str, Any]:
        del self.orders[order_id]
        self.seq += 1
        return {"type": "removed", "seq": self.seq, "id": order_id}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class OrderBoardServer:
    """Pushes the board to every connected page: a snapshot on connect, then each change."""

    def __init__(self, board: OrderBoard, tick_s: float) -> None:
        self.board = board
        self.tick_s = tick_s
        # Tells pages that the server restarted (their next snapshot starts a new sequence).
        self.server_id = secrets.token_hex(4)
        self.pages: set[ServerConnection] = set()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Serve the page at /, let /ws through to the WebSocket handshake, 404 the rest."""
        path = urlsplit(request.path).path
        if path == "/ws":
            return None
        if path == "/":
            headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
            return Response(200, headers, PAGE)
        if path == "/favicon.ico":
            return Response(204)
        return Response(404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found\n")

    async def handler(self, ws: ServerConnection) -> None:
        # The snapshot is written before this coroutine yields, so no change can come first.
        self.pages.add(ws)
        snapshot = self.board.snapshot()
        snapshot.update(server=self.server_id, viewers=len(self.pages))
        try:
            await ws.send(json.dumps(snapshot, ensure_ascii=False))
            await self.broadcast({"type": "viewers", "count": len(self.pages)})
            async for _ in ws:  # pages only listen; whatever they send is ignored
                pass
        finally:
            self.pages.discard(ws)
            await self.broadcast({"type": "viewers", "count": len(self.pages)})

    async def broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, ensure_ascii=False)
        await asyncio.gather(*(self._deliver(page, text) for page in list(self.pages)))

    async def _deliver(self, page: ServerConnection, text: str) -> None:
        try:
            await asyncio.wait_for(page.send(text), SEND_TIMEOUT_S)
        except fullduplex.ConnectionClosed:
            pass
        except TimeoutError:
            page.fail(fullduplex.CloseCode.TRY_AGAIN_LATER, "too slow")

    async def run_warehouse(self) -> None:
        """Change the board every ``tick_s`` seconds on average (from 2/3 to 4/3 of it)."""
        rng = self.board.rng
        while True:
            await asyncio.sleep(self.tick_s * rng.uniform(2 / 3, 4 / 3))
            for change in self.board.step():
                await self.broadcast(change)


async def main(host: str, port: int, tick_s: float, seed: int | None) -> int:
    app = OrderBoardServer(OrderBoard(random.Random(seed)), tick_s)
    try:
        server = await fullduplex.serve(
            app.handler, host, port, process_request=app.process_request
        )
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"order board: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    warehouse = asyncio.create_task(app.run_warehouse())
    print(f"order board: http://{host}:{server.port}/  (Ctrl-C stops)", flush=True)
    await stop.wait()
    warehouse.cancel()
    server.close(fullduplex.CloseCode.GOING_AWAY)
    await server.wait_closed()
    with contextlib.suppress(asyncio.CancelledError):
        await warehouse
    print("order board: stopped", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="fullduplex demo: a live order board")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any)")
    parser.add_argument(
        "--tick", type=float, default=1.5, help="seconds between changes, on average"
    )
    parser.add_argument("--seed", type=int, help="seed the simulation, to replay it")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.host, args.port, args.tick, args.seed)))
