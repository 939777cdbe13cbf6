"""Interoperability with the `websockets` library (its asyncio implementation), in both roles."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.typing import ExtensionParameter

import fullduplex
from fullduplex.protocol.connection import DEFAULT_MAX_MESSAGE_SIZE as DEFAULT_MAX_SIZE
from fullduplex.protocol.extensions.permessage_deflate import DEFAULT_COMPRESSION_THRESHOLD

if TYPE_CHECKING:
    from .conftest import Case, Interop, Peer


def describe_websockets(interop: Interop) -> Peer:
    return interop.peer(
        "websockets",
        can_ping=True,
        can_fragment=True,
        close_echo=lambda code, reason: (code, reason),
    )


async def run_websockets_peer(ws: ClientConnection | ServerConnection, peer: Peer) -> None:
    """The echo peer (see conftest), on a websockets connection, until it closes."""
    try:
        async for message in ws:
            if not isinstance(message, str) or not message.startswith("!"):
                await ws.send(message)
                continue
            command, _, argument = message.partition(" ")
            if command == "!info":
                assert ws.response is not None
                info = {
                    "subprotocol": ws.subprotocol,
                    "extensions": ws.response.headers.get("Sec-WebSocket-Extensions"),
                }
                await ws.send("info " + json.dumps(info))
            elif command == "!close":
                code, _, reason = argument.partition(" ")
                await ws.close(int(code), reason)
            elif command == "!ping":
                pong_received = await ws.ping(argument)
                await pong_received
                await ws.send(f"pong {argument}")
            elif command == "!fragments":
                await ws.send(["peer-", "frag", "mented"])
                await ws.send([b"\xff", b"\xfe"])
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    assert ws.close_code is not None
    peer.close_seen.set_result((ws.close_code, ws.close_reason))


async def test_fullduplex_server_talks_to_websockets_client(case: Case, interop: Interop) -> None:
    peer = describe_websockets(interop)

    async def run_client(url: str) -> None:
        async with connect(
            url,
            subprotocols=list(case.subprotocols) or None,
            ssl=interop.client_ssl(case),
            max_size=interop.max_size,
        ) as ws:
            await run_websockets_peer(ws, peer)

    async with asyncio.timeout(interop.timeout_s):
        await interop.serve(case, peer, run_client)


async def test_fullduplex_client_talks_to_websockets_server(case: Case, interop: Interop) -> None:
    peer = describe_websockets(interop)

    async def handler(ws: ServerConnection) -> None:
        await run_websockets_peer(ws, peer)

    async with (
        asyncio.timeout(interop.timeout_s),
        serve(
            handler,
            "127.0.0.1",
            0,
            subprotocols=list(case.subprotocols) or None,
            ssl=interop.server_ssl(case),
            max_size=interop.max_size,
        ) as server,
    ):
        await interop.connect(case, peer, server.sockets[0].getsockname()[1])


async def test_fullduplex_server_accepts_compressed_message_of_max_size(interop: Interop) -> None:
    message = os.urandom(DEFAULT_MAX_SIZE)

    async def handler(ws: fullduplex.ServerConnection) -> None:
        await ws.send(str(len(await ws.recv())))

    async with (
        asyncio.timeout(interop.timeout_s),
        fullduplex.serve(handler, "127.0.0.1", 0, max_size=DEFAULT_MAX_SIZE) as server,
        connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws,
    ):
        await ws.send(message)
        assert await ws.recv() == str(DEFAULT_MAX_SIZE)


async def test_fullduplex_client_accepts_compressed_message_of_max_size(interop: Interop) -> None:
    message = os.urandom(DEFAULT_MAX_SIZE)

    async def handler(ws: ServerConnection) -> None:
        await ws.send(message)
        await ws.wait_closed()

    async with (
        asyncio.timeout(interop.timeout_s),
        serve(handler, "127.0.0.1", 0) as server,
        fullduplex.connect(
            f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/", max_size=DEFAULT_MAX_SIZE
        ) as ws,
    ):
        assert ws.protocol.extensions  # the server deflates
        assert await ws.recv() == message


# Around the default threshold: below it a message goes out with RSV1 clear, from it deflated.
THRESHOLD_SIZES = [
    10,
    DEFAULT_COMPRESSION_THRESHOLD - 1,
    DEFAULT_COMPRESSION_THRESHOLD,
    5000,
    3,
    5000,
]


def threshold_messages() -> list[str]:
    text = "the quick brown fox jumps over the lazy dog; " * 200
    return [text[index : index + size] for index, size in enumerate(THRESHOLD_SIZES)]


def recording_rsv1(extension: PerMessageDeflate, seen: list[bool]) -> PerMessageDeflate:
    """Make websockets' own inflater note whether each message it receives is compressed."""
    decode = extension.decode

    def recording_decode(frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            seen.append(frame.rsv1)
        return decode(frame, max_size=max_size)

    extension.decode = recording_decode  # type: ignore[method-assign]
    return extension


class RecordingClientFactory(ClientPerMessageDeflateFactory):
    def __init__(self, seen: list[bool]) -> None:
        super().__init__(client_max_window_bits=True)
        self.seen = seen

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> PerMessageDeflate:
        extension = super().process_response_params(params, accepted_extensions)
        return recording_rsv1(extension, self.seen)


class RecordingServerFactory(ServerPerMessageDeflateFactory):
    def __init__(self, seen: list[bool]) -> None:
        super().__init__()
        self.seen = seen

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, extension = super().process_request_params(params, accepted_extensions)
        return response, recording_rsv1(extension, self.seen)


async def test_fullduplex_server_deflates_only_messages_from_threshold(interop: Interop) -> None:
    messages = threshold_messages()

    async def handler(ws: fullduplex.ServerConnection) -> None:
        for message in messages:
            await ws.send(message)
        await ws.wait_closed()

    seen: list[bool] = []
    async with (
        asyncio.timeout(interop.timeout_s),
        fullduplex.serve(handler, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/", extensions=[RecordingClientFactory(seen)]) as ws,
    ):
        assert [await ws.recv() for _ in messages] == messages
    assert seen == [size >= DEFAULT_COMPRESSION_THRESHOLD for size in THRESHOLD_SIZES]


async def test_fullduplex_client_deflates_only_messages_from_threshold(interop: Interop) -> None:
    messages = threshold_messages()
    received: asyncio.Queue[str | bytes] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            received.put_nowait(message)

    seen: list[bool] = []
    async with (
        asyncio.timeout(interop.timeout_s),
        serve(handler, "127.0.0.1", 0, extensions=[RecordingServerFactory(seen)]) as server,
    ):
        port = server.sockets[0].getsockname()[1]
        async with fullduplex.connect(f"ws://127.0.0.1:{port}/") as ws:
            for message in messages:
                await ws.send(message)
        async with fullduplex.connect(f"ws://127.0.0.1:{port}/", compression_threshold=0) as ws:
            await ws.send("tiny")
        assert [await received.get() for _ in range(len(messages) + 1)] == [*messages, "tiny"]
    assert seen == [size >= DEFAULT_COMPRESSION_THRESHOLD for size in THRESHOLD_SIZES] + [True]
