"""Peers for the asyncio tests: a hand-written "hostile" WebSocket peer, and a connected pair.

`RawPeer` speaks WebSocket over a plain asyncio stream, with its own frame encoder and decoder
(not fullduplex's, so that the library is checked against an independent reading of RFC 6455).
It can do what a well-behaved peer never does: send unmasked or oversized frames, invalid
UTF-8, half a request, or complete the handshake and then ignore everything.

`serve_raw` runs `RawPeer` as a server (it answers one upgrade request, then hands the peer
to a callback), for the client's tests.

`blocking_client` completes a handshake on a plain socket that `read_now` reads while
blocking the event loop: what it reads was written before the sending coroutine yielded.

`ws_pair` opens a fullduplex server and client and yields both ends of their connection.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from fullduplex import ClientConnection, ServerConnection, connect, serve

from ..wire import close_payload, encode_frame

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's sample key
MASK = b"\x01\x02\x03\x04"  # for frames a raw client writes itself

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def upgrade_request(
    path: str = "/",
    *,
    method: str = "GET",
    headers: dict[str, str | None] | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A valid upgrade request; ``headers`` replaces defaults (None removes one)."""
    fields: dict[str, str | None] = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    fields.update(headers or {})
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class RawFrame:
    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int:
        assert self.opcode == CLOSE, self
        return int(struct.unpack("!H", self.payload[:2])[0]) if self.payload else 1005


@dataclass
class HTTPReply:
    status: int
    headers: dict[str, str]
    body: bytes = field(default=b"")


class RawPeer:
    """A WebSocket endpoint written by hand over an asyncio stream; see the module docstring.

    Args:
        masks: True on the client side: frames are masked unless told otherwise.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, masks: bool
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.masks = masks

    @classmethod
    async def open(
        cls, port: int, host: str = "127.0.0.1", *, rcvbuf: int | None = None
    ) -> RawPeer:
        """Open a TCP connection as a client; ``rcvbuf`` shrinks the socket's receive buffer
        (to reach backpressure sooner when this peer stops reading)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer, masks=True)

    @classmethod
    async def connected(cls, port: int, path: str = "/", **options: Any) -> RawPeer:
        """Open a connection and complete the opening handshake."""
        peer = await cls.open(port, **options)
        reply = await peer.handshake(path)
        assert reply.status == 101, reply
        return peer

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def handshake(self, path: str = "/", **options: Any) -> HTTPReply:
        """Send an upgrade request and read the response head (and body, unless 101)."""
        self.write(upgrade_request(path, **options))
        return await self.read_http_response()

    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv1: bool = False,
        rsv2: bool = False,
        masked: bool | None = None,
    ) -> None:
        masked = self.masks if masked is None else masked
        mask = os.urandom(4) if masked else None
        self.write(encode_frame(opcode, payload, fin=fin, rsv1=rsv1, rsv2=rsv2, mask=mask))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(CLOSE, close_payload(code, reason))

    async def read_frame(self) -> RawFrame:
        head = await self.reader.readexactly(2)
        fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
        length = head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        mask = await self.reader.readexactly(4) if head[1] & 0x80 else None
        payload = await self.reader.readexactly(length)
        if mask is not None:
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        return RawFrame(opcode, payload, fin)

    async def read_close(self) -> RawFrame:
        """Read frames until a close frame, and return it."""
        while True:
            frame = await self.read_frame()
            if frame.opcode == CLOSE:
                return frame

    async def read_http_response(self) -> HTTPReply:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split(" ")[1])
        body = b""
        if status != 101 and "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        return HTTPReply(status, headers, body)

    async def read_until_eof(self) -> bytes:
        """Everything until the end of the stream (a reset counts as the end)."""
        chunks = []
        try:
            while chunk := await self.reader.read(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


OnOpen = Callable[[RawPeer], Awaitable[None]]


@asynccontextmanager
async def serve_raw(on_open: OnOpen) -> AsyncIterator[int]:
    """Serve on 127.0.0.1 as `RawPeer`: read the upgrade request, answer 101, then run
    ``on_open(peer)``. Yields the port."""
    tasks: set[asyncio.Task[None]] = set()
    peers: list[RawPeer] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = RawPeer(reader, writer, masks=False)
        peers.append(peer)
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(":", 1)[1].strip()
            for line in request.decode().split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
            ).encode()
        )
        await on_open(peer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for peer in peers:
            await peer.close()
        await server.wait_closed()


async def blocking_client(port: int) -> socket.socket:
    """A client that completed the opening handshake; read it with `read_now`."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, upgrade_request())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += await loop.sock_recv(sock, 1)  # byte by byte: nothing read past the head
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_now(sock: socket.socket) -> bytes:
    """Read one short unmasked frame's payload, blocking the event loop meanwhile."""
    sock.settimeout(5)  # the bound on a test that fails: nothing else can write meanwhile
    try:
        header = sock.recv(2, socket.MSG_WAITALL)
        assert len(header) == 2 and header[1] < 126, header
        return sock.recv(header[1], socket.MSG_WAITALL) if header[1] else b""
    finally:
        sock.setblocking(False)


class Holder:
    """A handler that hands each connection to the test, then waits for it to close."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def __call__(self, ws: ServerConnection) -> None:
        self.connections.put_nowait(ws)
        await ws.wait_closed()

    async def next(self) -> ServerConnection:
        return await self.connections.get()


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@asynccontextmanager
async def ws_pair(
    server_options: dict[str, Any] | None = None, client_options: dict[str, Any] | None = None
) -> AsyncIterator[tuple[ServerConnection, ClientConnection]]:
    """Serve on 127.0.0.1, connect, and yield (server's connection, client's connection).

    The server's handler only waits for the connection to close; the test drives both ends.
    """
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0, **(server_options or {})) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with connect(url, **(client_options or {})) as client:
            yield await hold.next(), client
