"""The draft-76 WebSocket the SockJS suite checks (its HAProxy case), end to end on a socket:
the response head before the nonce, the nonce's answer, then SockJS frames in draft-76 framing."""

from __future__ import annotations

import asyncio

import fullduplex
from fullduplex.protocol.http11 import Headers, Request
from fullduplex.transports import Router, Session
from fullduplex.transports.sockjs import SockJSEndpoint
from fullduplex.transports.sockjs.hixie76 import is_hixie76_request

KEY1, KEY2 = "4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00"
ANSWER = b"\xca4\x00\xd8\xa5\x08G\x97,\xd5qZ\xba\xbfC{"


async def echo(session: Session) -> None:
    async for message in session:
        await session.send(message)


async def handshake(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\n"
            f"Upgrade: WebSocket\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Sec-WebSocket-Key1: {KEY1}\r\nSec-WebSocket-Key2: {KEY2}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert f"Sec-WebSocket-Location: ws://127.0.0.1:{port}{path}".encode() in head
    assert b"Content-Length" not in head
    writer.write(b"aaaaaaaa")  # the nonce, only once the head arrived (HAProxy's order)
    assert await reader.readexactly(16) == ANSWER
    return reader, writer


async def test_server_speaks_sockjs_over_draft76() -> None:
    app = Router()
    app.mount("/echo", SockJSEndpoint(echo))
    async with fullduplex.serve(app, "127.0.0.1", 0) as server:
        reader, writer = await handshake(server.port, "/echo/000/abc/websocket")
        assert await reader.readuntil(b"\xff") == b"\x00o\xff"
        writer.write(b'\x00["hi"]\xff')
        assert await reader.readuntil(b"\xff") == b'\x00a["hi"]\xff'
        writer.write(b"\xff\x00")
        assert await reader.read() == b""  # the server closed
        writer.close()

        reader, writer = await handshake(server.port, "/echo/websocket")
        writer.write(b"\x00raw\xff")
        assert await reader.readuntil(b"\xff") == b"\x00raw\xff"
        writer.close()


def test_only_draft76_requests_are_taken_for_draft76() -> None:
    hixie = Headers([("Sec-WebSocket-Key1", KEY1), ("Sec-WebSocket-Key2", KEY2)])
    assert is_hixie76_request(Request("/", hixie))
    rfc = Headers(
        [("Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw=="), ("Sec-WebSocket-Version", "13")]
    )
    assert not is_hixie76_request(Request("/", rfc))
