"""picows echo server for the benchmark, on picows' frame-level core API (see common.py).

This is the echo a picows user writes, and it does less than the others: picows hands over
frames, not messages, so each frame is echoed as it comes (text as text, binary as binary,
continuations as continuations) and nothing is reassembled; text is not checked to be UTF-8;
``max_frame_size`` limits a frame, not a message. picows has no permessage-deflate, so it
sits out the deflate cell. Pings are answered by picows itself (``enable_auto_pong``).
"""

from __future__ import annotations

from common import MAX_MESSAGE_SIZE, Stop, run
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type is not WSMsgType.PONG:
            transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)


def new_listener(request: WSUpgradeRequest) -> WSListener:
    return Echo()


async def start(port: int, deflate: bool) -> tuple[int, Stop]:
    if deflate:
        raise SystemExit("picows does not implement permessage-deflate")
    server = await ws_create_server(
        new_listener, "127.0.0.1", port, max_frame_size=MAX_MESSAGE_SIZE
    )

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return server.sockets[0].getsockname()[1], stop


if __name__ == "__main__":
    run(start, __doc__)
