"""A scripted server for the WHATWG `WebSocket` tests: each path is one server behaviour.

Both `test_browser.py` and the differential test against Chromium talk to it, on 127.0.0.1.

====================  ===========================================================================
path                  behaviour
====================  ===========================================================================
``/echo``             sends every message back, with its type
``/greet-and-close``  sends ``hello``, then closes with the query's ``code`` and ``reason``
                      (no code: a close frame without one)
``/drop``             sends ``before the end``, then resets the TCP connection (no close frame)
``/protocol-error``   sends ``test``, then a frame with the reserved opcode 3
``/silent``           completes the handshake, then reads nothing (its peer's writes back up)
``/reject``           answers the upgrade with 403
``/page``             an empty HTML page, for a browser to run scripts from
====================  ===========================================================================

The server offers the subprotocol ``chat`` and permessage-deflate, and takes messages of up to
16 MiB. Beside it, on ``mute_port``, a TCP server accepts connections and never answers: there,
a WebSocket stays CONNECTING (``mute_accepted`` tells when a connection got that far).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fullduplex import Response, ServerConnection, serve

MAX_SIZE = 16 * 1024 * 1024
PAGE = b'<!doctype html><meta charset="utf-8"><title>fullduplex WHATWG tests</title>'


async def scripted(ws: ServerConnection) -> None:
    parts = urlsplit(ws.request.path)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    if parts.path == "/echo":
        async for message in ws:
            await ws.send(message)
    elif parts.path == "/greet-and-close":
        await ws.send("hello")
        await ws.close(int(query.get("code", 1005)), query.get("reason", ""))
    elif parts.path == "/drop":
        await ws.send("before the end")
        # Pacing, not readiness: the client must read the message before the reset, which
        # discards what it has not read, and it sends nothing back that says it has.
        await asyncio.sleep(0.05)
        reset(ws)
    elif parts.path == "/protocol-error":
        await ws.send("test")
        await asyncio.sleep(0)  # sends go out at the end of the loop turn: let "test" go first
        assert ws.transport is not None
        ws.transport.write(b"\x83\x03LOL")  # behind the library's back: opcode 3 is reserved
        await ws.wait_closed()
    elif parts.path == "/silent":
        assert ws.transport is not None
        ws.transport.pause_reading()
        await ws.wait_closed()


def reset(ws: ServerConnection) -> None:
    """End the TCP connection with a reset: SO_LINGER with a zero timeout, then close."""
    assert ws.transport is not None
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


async def route(ws: ServerConnection, request: Any) -> Response | None:
    path = urlsplit(request.path).path
    if path == "/page":
        return Response(200, [("Content-Type", "text/html; charset=utf-8")], PAGE)
    if path == "/reject":
        return Response(403, [("Content-Type", "text/plain")], b"go away\n")
    return None


@dataclass(frozen=True)
class Ports:
    port: int
    """The scripted WebSocket server's."""
    mute_port: int
    """The TCP server's that never answers."""
    mute_accepted: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the mute server accepted a TCP connection (on the server's event loop)."""


@asynccontextmanager
async def scripted_server(**options: Any) -> AsyncIterator[Ports]:
    """Run the scripted server and the mute one on 127.0.0.1. ``options`` go to `serve`."""
    options = {"subprotocols": ["chat"], "max_size": MAX_SIZE, **options}
    writers: list[asyncio.StreamWriter] = []
    mute_accepted = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        mute_accepted.set()
        await reader.read()  # until the client leaves

    mute_server = await asyncio.start_server(mute, "127.0.0.1", 0)
    try:
        async with serve(scripted, "127.0.0.1", 0, process_request=route, **options) as server:
            yield Ports(server.port, mute_server.sockets[0].getsockname()[1], mute_accepted)
    finally:
        mute_server.close()
        for writer in writers:
            writer.close()
        await mute_server.wait_closed()
