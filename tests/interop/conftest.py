"""Interoperability with other WebSocket implementations: the shared exchange and its fixtures.

Every peer (websockets, aiohttp, Node ws, Chromium) runs the same *echo peer*:

- a data message is echoed back with its type (text as text, binary as binary);
- a text message starting with ``!`` is a command:

  ``!info``            answer ``info {"subprotocol": ..., "extensions": ...}`` (JSON), as the
                       peer's own API reports the handshake;
  ``!close CODE WHY``  start the closing handshake with that code and reason;
  ``!ping DATA``       ping with DATA, wait for the pong, answer ``pong DATA``;
  ``!fragments``       send ``peer-`` ``frag`` ``mented`` as one fragmented text message, then
                       ``ff`` ``fe`` as one fragmented binary message.

and reports, through a side channel (a future, stdout, a page variable), the code and reason of
the close frame it received. ``exercise`` drives one `Case` from fullduplex's side, whichever
role fullduplex plays, and checks both sides' view of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import fullduplex
from fullduplex.protocol.extensions.permessage_deflate import PerMessageDeflate

from ..conftest import TestCA

TIMEOUT_S = 15
"""Upper bound for one test, handshakes and closing included."""

MAX_SIZE = 8 * 1024 * 1024
"""The message size limit every side is given, so that a 4 MiB message fits with room."""

LARGE_SIZE = 4 * 1024 * 1024

COMPRESSIBLE = ("fullduplex speaks permessage-deflate. " * 30_000)[: 1024 * 1024]
"""A 1 MiB text that deflates to a few KiB."""

WIRE_BUDGET = len(COMPRESSIBLE) // 10
"""What a compressed COMPRESSIBLE may cost on the wire, in each direction."""


@dataclass(frozen=True)
class Case:
    """One thing two implementations must agree on.

    Attributes:
        name: the test id.
        subprotocols: offered by the client and supported by the server.
        secure: run over wss:// with the trustme CA.
        metered: route the connection through a `WireMeter` to count the bytes it carries.
    """

    name: str
    subprotocols: tuple[str, ...] = ()
    secure: bool = False
    metered: bool = False

    def url(self, port: int) -> str:
        return f"{'wss' if self.secure else 'ws'}://127.0.0.1:{port}/"


CASES = [
    Case("text"),
    Case("binary"),
    Case("large"),
    Case("fragmented"),
    Case("ping"),
    Case("close_by_fullduplex"),
    Case("close_by_peer"),
    Case("subprotocol", subprotocols=("chat",)),
    Case("deflate", metered=True),
    Case("tls", secure=True),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, ids=[case.name for case in CASES])


@dataclass
class Peer:
    """The far end, as `exercise` sees it.

    Attributes:
        name: for assertion messages.
        can_ping: its API pings and reports the pong, so it answers ``!ping``.
        can_fragment: its API sends a message in several frames, so it answers ``!fragments``.
        close_echo: the code and reason it answers a close frame with, given the received ones.
        close_seen: resolved with the code and reason of the close frame it received; the
            reason is None when its API does not expose it.
    """

    name: str
    can_ping: bool
    can_fragment: bool
    close_echo: Callable[[int, str], tuple[int, str]]
    close_seen: asyncio.Future[tuple[int, str | None]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


async def exercise(
    ws: fullduplex.WebSocketConnection, case: Case, peer: Peer, wire: WireMeter | None = None
) -> None:
    """Run ``case`` on ``ws`` against ``peer``'s echo, then close, checking both sides."""
    await _EXERCISES[case.name](ws, peer, wire)


async def _echo(ws: fullduplex.WebSocketConnection, message: str | bytes) -> None:
    await ws.send(message)
    reply = await ws.recv()
    assert type(reply) is type(message)
    assert reply == message


async def _info(ws: fullduplex.WebSocketConnection) -> dict[str, str | None]:
    await ws.send("!info")
    reply = await ws.recv()
    assert isinstance(reply, str) and reply.startswith("info "), reply[:80]
    info: dict[str, str | None] = json.loads(reply.removeprefix("info "))
    return info


async def _close(ws: fullduplex.WebSocketConnection, peer: Peer, code: int, reason: str) -> None:
    """Close from fullduplex's side; check the code and reason each side received."""
    await ws.close(code, reason)
    assert ws.state is fullduplex.State.CLOSED
    assert ws.protocol.was_clean
    assert (ws.close_code, ws.close_reason) == peer.close_echo(code, reason), peer.name
    seen_code, seen_reason = await peer.close_seen
    assert seen_code == code, peer.name
    assert seen_reason in (reason, None), peer.name


async def _exercise_text(ws: fullduplex.WebSocketConnection, peer: Peer, _: object) -> None:
    await _echo(ws, "héllo, wörld ☃ 🎉")
    await _echo(ws, "")
    await _close(ws, peer, 1000, "")


async def _exercise_binary(ws: fullduplex.WebSocketConnection, peer: Peer, _: object) -> None:
    await _echo(ws, bytes(range(256)))
    await _echo(ws, b"")
    await _close(ws, peer, 1000, "")


async def _exercise_large(ws: fullduplex.WebSocketConnection, peer: Peer, _: object) -> None:
    # Random bytes don't deflate: 4 MiB cross the wire each way.
    await _echo(ws, os.urandom(LARGE_SIZE))
    await _close(ws, peer, 1000, "")


async def _exercise_fragmented(ws: fullduplex.WebSocketConnection, peer: Peer, _: object) -> None:
    await ws.send(["frag", "men", "ted ☃"])
    assert await ws.recv() == "fragmented ☃"
    await ws.send([b"\x00\x01", b"", b"\x02\x03"])
    assert await ws.recv() == b"\x00\x01\x02\x03"
    if peer.can_fragment:
        await ws.send("!fragments")
        assert await ws.recv() == "peer-fragmented"
        assert await ws.recv() == b"\xff\xfe"
    await _close(ws, peer, 1000, "")


async def _exercise_ping(ws: fullduplex.WebSocketConnection, peer: Peer, _: object) -> None:
    latency = await ws.ping(b"fullduplex-ping")
    assert latency >= 0
    if peer.can_ping:
        await ws.send("!ping peer-ping")
        assert await ws.recv() == "pong peer-ping"
    await _close(ws, peer, 1000, "")


async def _exercise_close_by_fullduplex(
    ws: fullduplex.WebSocketConnection, peer: Peer, _: object
) -> None:
    await _echo(ws, "before closing")
    await _close(ws, peer, 4000, "bye ☃")


async def _exercise_close_by_peer(
    ws: fullduplex.WebSocketConnection, peer: Peer, _: object
) -> None:
    await ws.send("!close 4001 ciao ☃")
    with pytest.raises(fullduplex.ConnectionClosed) as caught:
        await ws.recv()
    assert (caught.value.code, caught.value.reason) == (4001, "ciao ☃")
    await ws.wait_closed()
    assert ws.protocol.was_clean
    assert (ws.close_code, ws.close_reason) == (4001, "ciao ☃")
    # fullduplex echoes the code, not the reason.
    seen_code, seen_reason = await peer.close_seen
    assert seen_code == 4001, peer.name
    assert seen_reason in ("", None), peer.name


async def _exercise_subprotocol(ws: fullduplex.WebSocketConnection, peer: Peer, _: object) -> None:
    assert ws.subprotocol == "chat"
    info = await _info(ws)
    assert info["subprotocol"] == "chat", info
    await _close(ws, peer, 1000, "")


async def _exercise_deflate(
    ws: fullduplex.WebSocketConnection, peer: Peer, wire: WireMeter | None
) -> None:
    assert wire is not None
    assert [type(extension) for extension in ws.protocol.extensions] == [PerMessageDeflate]
    if isinstance(ws, fullduplex.ClientConnection):
        header = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
    else:
        header = ", ".join(ws.request.headers.get_all("Sec-WebSocket-Extensions"))
    assert header.startswith("permessage-deflate"), header
    info = await _info(ws)
    assert "permessage-deflate" in (info["extensions"] or ""), info
    before = wire.snapshot()
    await _echo(ws, COMPRESSIBLE)
    to_server, to_client = (now - then for now, then in zip(wire.snapshot(), before, strict=True))
    assert 0 < to_server < WIRE_BUDGET, f"client sent {to_server} bytes for 1 MiB"
    assert 0 < to_client < WIRE_BUDGET, f"server sent {to_client} bytes for 1 MiB"
    await _close(ws, peer, 1000, "")


async def _exercise_tls(ws: fullduplex.WebSocketConnection, peer: Peer, _: object) -> None:
    assert ws.transport is not None
    ssl_object = ws.transport.get_extra_info("ssl_object")
    assert ssl_object is not None
    assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    await _echo(ws, "over TLS")
    await _echo(ws, b"\x00over TLS\xff")
    await _close(ws, peer, 1000, "")


_EXERCISES: dict[str, Callable[..., Awaitable[None]]] = {
    "text": _exercise_text,
    "binary": _exercise_binary,
    "large": _exercise_large,
    "fragmented": _exercise_fragmented,
    "ping": _exercise_ping,
    "close_by_fullduplex": _exercise_close_by_fullduplex,
    "close_by_peer": _exercise_close_by_peer,
    "subprotocol": _exercise_subprotocol,
    "deflate": _exercise_deflate,
    "tls": _exercise_tls,
}
assert set(_EXERCISES) == {case.name for case in CASES}


class Interop:
    """The harness each interop test gets as its ``interop`` fixture.

    Attributes:
        tls: the test CA, server certificate and SSL contexts.
        max_size: the message size limit to give every side, so that a 4 MiB message fits.
        timeout_s: the bound on one test (``async with asyncio.timeout(interop.timeout_s)``).
    """

    max_size = MAX_SIZE
    timeout_s = TIMEOUT_S

    def __init__(self, tls: TestCA) -> None:
        self.tls = tls

    def peer(
        self,
        name: str,
        *,
        can_ping: bool,
        can_fragment: bool,
        close_echo: Callable[[int, str], tuple[int, str]],
    ) -> Peer:
        """Describe the peer under test; see `Peer` for the arguments."""
        return Peer(name, can_ping=can_ping, can_fragment=can_fragment, close_echo=close_echo)

    def server_ssl(self, case: Case) -> ssl.SSLContext | None:
        """The SSL context for a server running ``case``."""
        return self.tls.server_context if case.secure else None

    def client_ssl(self, case: Case) -> ssl.SSLContext | None:
        """The SSL context for a client running ``case``: it trusts the test CA."""
        return self.tls.client_context if case.secure else None

    async def serve(
        self,
        case: Case,
        peer: Peer,
        run_peer_client: Callable[[str], Awaitable[object]],
        **serve_options: Any,
    ) -> None:
        """Serve ``case`` with fullduplex; ``run_peer_client(url)`` runs the peer's client to
        the end of its connection. ``serve_options`` go to `fullduplex.serve`."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        wire: WireMeter | None = None  # set before any client connects

        async def handler(ws: fullduplex.ServerConnection) -> None:
            try:
                await exercise(ws, case, peer, wire)
            except BaseException as exc:
                if not done.done():
                    done.set_exception(exc)
                raise
            if not done.done():
                done.set_result(None)

        async with (
            fullduplex.serve(
                handler,
                "127.0.0.1",
                0,
                subprotocols=list(case.subprotocols) or None,
                ssl=self.server_ssl(case),
                max_size=MAX_SIZE,
                **serve_options,
            ) as server,
            _route(case, server.port) as (port, route_wire),
        ):
            wire = route_wire
            client = asyncio.ensure_future(run_peer_client(case.url(port)))
            try:
                await asyncio.wait({done, client}, return_when=asyncio.FIRST_COMPLETED)
                if not done.done():
                    client.result()  # the peer gave up before the exercise ended: say why
                await done
                await client
            finally:
                client.cancel()
                await asyncio.gather(client, return_exceptions=True)

    async def connect(self, case: Case, peer: Peer, port: int) -> None:
        """Connect with fullduplex to the peer's server on ``port`` and run ``case``."""
        async with (
            _route(case, port) as (port, wire),
            fullduplex.connect(
                case.url(port),
                subprotocols=case.subprotocols,
                ssl=self.client_ssl(case),
                max_size=MAX_SIZE,
            ) as ws,
        ):
            await exercise(ws, case, peer, wire)


@contextlib.asynccontextmanager
async def _route(case: Case, port: int) -> AsyncIterator[tuple[int, WireMeter | None]]:
    """Where a client should connect to reach the server on ``port``: through a `WireMeter`
    when ``case`` is metered."""
    if not case.metered:
        yield port, None
        return
    wire = WireMeter(port)
    await wire.start()
    try:
        yield wire.port, wire
    finally:
        await wire.stop()


@pytest.fixture
def interop(tls: TestCA) -> Interop:
    """The interop harness: see `Interop`. Synchronous, so it serves any event loop scope."""
    return Interop(tls)


# --- counting bytes on the wire ----------------------------------------------------------


class WireMeter:
    """A TCP relay from ``port`` to a server, counting the bytes it carries each way."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.to_server = 0
        self.to_client = 0
        self.port = 0
        self._listener: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def snapshot(self) -> tuple[int, int]:
        """The bytes relayed so far: (client to server, server to client)."""
        return self.to_server, self.to_client

    async def start(self) -> None:
        self._listener = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._listener is not None:
            await self._listener.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            try:
                await asyncio.gather(
                    self._pipe(client_r, server_w, to_server=True),
                    self._pipe(server_r, client_w, to_server=False),
                )
            finally:
                server_w.close()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            client_w.close()
            self._tasks.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_server: bool
    ) -> None:
        while chunk := await reader.read(65536):
            if to_server:
                self.to_server += len(chunk)
            else:
                self.to_client += len(chunk)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
