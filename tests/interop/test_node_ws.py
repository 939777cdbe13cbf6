"""Interoperability with Node's `ws` library (pinned in tests/package.json), in both roles.

The peer is tests/interop/node_peer.js, run as a subprocess per test; it reports on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .conftest import Case, Interop, Peer

HERE = Path(__file__).resolve().parent
NODE = "/usr/bin/node"
NODE_PEER = HERE / "node_peer.js"
WS_PACKAGE = HERE.parent / "node_modules" / "ws" / "package.json"


@pytest.fixture
def node(require_tool: Callable[[str, str], str]) -> str:
    """The node executable, with the pinned ws package installed."""
    require_tool("ws", str(WS_PACKAGE))
    return require_tool("node", NODE)


def describe_node_ws(interop: Interop) -> Peer:
    return interop.peer(
        "node ws",
        can_ping=True,
        can_fragment=True,
        close_echo=lambda code, reason: (code, reason),
    )


class NodePeer:
    """A running node_peer.js: its reports, and its stderr for failure messages."""

    def __init__(self, process: asyncio.subprocess.Process, peer: Peer) -> None:
        self.process = process
        self.peer = peer
        self.listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.stderr = b""
        self._readers = [
            asyncio.ensure_future(self._read_reports()),
            asyncio.ensure_future(self._read_stderr()),
        ]

    async def _read_reports(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            report = json.loads(line)
            if report["event"] == "listening":
                self.listening.set_result(report["port"])
            elif report["event"] == "close":
                self.peer.close_seen.set_result((report["code"], report["reason"]))
            else:
                self._fail(f"node peer reported {report}")
        self._fail(f"node peer exited: {self.stderr.decode(errors='replace')}")

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = await self.process.stderr.read()

    def _fail(self, message: str) -> None:
        for future in (self.listening, self.peer.close_seen):
            if not future.done():
                future.set_exception(AssertionError(message))

    async def wait(self) -> None:
        """Wait for the peer to exit by itself (the client does after its connection)."""
        returncode = await self.process.wait()
        await asyncio.gather(*self._readers)
        assert returncode == 0, self.stderr.decode(errors="replace")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()  # by PID: asyncio's Process signals its own child only
        await self.process.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        # Nobody awaits these after a failure: don't log "exception never retrieved".
        for future in (self.listening, self.peer.close_seen):
            if future.done() and not future.cancelled():
                future.exception()


@contextlib.asynccontextmanager
async def node_peer(node: str, peer: Peer, config: dict[str, Any]) -> AsyncIterator[NodePeer]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(NODE_PEER),
        json.dumps(config),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    running = NodePeer(process, peer)
    try:
        yield running
    finally:
        await running.stop()


def node_config(case: Case, interop: Interop, role: str, **more: Any) -> dict[str, Any]:
    return {
        "role": role,
        "subprotocols": list(case.subprotocols),
        "maxPayload": interop.max_size,
        **more,
    }


async def test_fullduplex_server_talks_to_node_ws_client(
    case: Case, interop: Interop, node: str
) -> None:
    peer = describe_node_ws(interop)
    tls = {"ca": str(interop.tls.ca_pem)} if case.secure else None

    async def run_client(url: str) -> None:
        config = node_config(case, interop, "client", url=url, tls=tls)
        async with node_peer(node, peer, config) as client:
            await client.wait()

    async with asyncio.timeout(interop.timeout_s):
        await interop.serve(case, peer, run_client)


async def test_fullduplex_client_talks_to_node_ws_server(
    case: Case, interop: Interop, node: str
) -> None:
    peer = describe_node_ws(interop)
    tls = {"cert": str(interop.tls.cert_pem), "key": str(interop.tls.key_pem)}
    config = node_config(case, interop, "server", tls=tls if case.secure else None)
    async with asyncio.timeout(interop.timeout_s), node_peer(node, peer, config) as server:
        await interop.connect(case, peer, await server.listening)
