"""picows' client in the benchmark (cell h), on its callback API (see common.py).

As in bench/servers/picows_server.py, picows works on frames: the echo is compared as bytes,
without decoding it as UTF-8 as the other clients do.
"""

from __future__ import annotations

import asyncio

from common import MAX_MESSAGE_SIZE, Library, Stats, run
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect


class Pump(WSListener):
    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.payload = b""
        self.in_flight = 0
        self.stats: Stats | None = None
        self.drained: asyncio.Future[None] | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def start(self, payload: bytes, pipeline: int, stats: Stats) -> asyncio.Future[None]:
        assert self.transport is not None
        self.payload, self.stats = payload, stats
        self.drained = asyncio.get_running_loop().create_future()
        for _ in range(pipeline):
            self.transport.send(WSMsgType.TEXT, payload)
        self.in_flight = pipeline
        return self.drained

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        stats = self.stats
        if stats is None or frame.msg_type is not WSMsgType.TEXT:
            return
        if frame.get_payload_as_memoryview() != self.payload:
            stats.error("echo differs from what was sent")
        stats.received += 1
        self.in_flight -= 1
        if not stats.stopping.is_set():
            transport.send(WSMsgType.TEXT, self.payload)
            self.in_flight += 1
        elif self.in_flight == 0 and self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_exception(ConnectionError("disconnected"))


async def open_connection(url: str) -> Pump:
    _, listener = await ws_connect(Pump, url, max_frame_size=MAX_MESSAGE_SIZE)
    return listener


async def pump(listener: Pump, payload: str, pipeline: int, stats: Stats) -> None:
    await listener.start(payload.encode(), pipeline, stats)


async def close(listener: Pump) -> None:
    assert listener.transport is not None
    listener.transport.send_close()
    await listener.transport.wait_disconnected()


if __name__ == "__main__":
    run(Library("picows", open_connection, pump, close))
