"""Running ``python -m fullduplex`` in a subprocess, through pipes or a pseudo-terminal, and
the servers it talks to: fullduplex's and the ``websockets`` library's, in the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets.asyncio.server

import fullduplex

TIMEOUT_S = 20
"""Bound on one command run; a hang fails the test instead of the whole suite."""

CLI = [sys.executable, "-m", "fullduplex"]


@dataclass
class Result:
    status: int
    stdout: bytes
    stderr: str


async def run_cli(
    *args: str, stdin: bytes = b"", cwd: str | None = None, timeout: float = TIMEOUT_S
) -> Result:
    """Run ``fullduplex ARGS`` with ``stdin`` piped in; return its status and output."""
    async with started_cli(*args, cwd=cwd) as process:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
    assert process.returncode is not None
    return Result(process.returncode, stdout, stderr.decode())


@contextlib.asynccontextmanager
async def started_cli(
    *args: str, cwd: str | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``fullduplex ARGS`` running with pipes; killed (by PID) on the way out if still running."""
    process = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=_env(),
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


async def read_banner(process: asyncio.subprocess.Process) -> int:
    """Read `fullduplex serve`'s first stderr line; return the port it listens on."""
    assert process.stderr is not None
    line = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT_S)).decode()
    match = re.search(r"://127\.0\.0\.1:(\d+)/", line)
    assert match, line
    return int(match.group(1))


# --- a pseudo-terminal -------------------------------------------------------------------


class Terminal:
    """``fullduplex ARGS`` on a pseudo-terminal of 100 x 30, which is its controlling
    terminal (so that Ctrl-C typed there sends SIGINT). ``output`` accumulates all it wrote."""

    def __init__(
        self, *args: str, python_code: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.args = args
        self.python_code = python_code
        self.env = env or {}
        self.output = b""
        self._master = -1
        self._arrived = asyncio.Event()
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Terminal:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        command = (
            [sys.executable, "-c", self.python_code, *self.args]
            if self.python_code
            else [*CLI, *self.args]
        )
        self.process = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=_env(TERM="xterm", **self.env),
            start_new_session=True,
            # After setsid, the terminal on stdin becomes the controlling terminal.
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        asyncio.get_running_loop().add_reader(master, self._read)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        asyncio.get_running_loop().remove_reader(self._master)
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        await asyncio.to_thread(self.process.wait)
        os.close(self._master)

    def _read(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the other side is closed
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._master)
        self.output += data
        self._arrived.set()

    def type(self, keys: bytes) -> None:
        os.write(self._master, keys)

    def interrupt(self) -> None:
        self.type(b"\x03")

    async def expect(self, pattern: bytes, *, after: int = 0, timeout: float = 10) -> int:
        """Wait until ``pattern`` (a regex) appears in the output past ``after``; return
        where its match ends."""
        async with asyncio.timeout(timeout):
            while True:
                match = re.compile(pattern).search(self.output, after)
                if match:
                    return match.end()
                self._arrived.clear()
                await self._arrived.wait()

    async def exit_status(self, timeout: float = 10) -> int:
        assert self.process is not None
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout)

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)


# --- servers -----------------------------------------------------------------------------


@dataclass
class Peer:
    """What a test server saw of its clients."""

    url: str = ""
    received: list[str | bytes] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    subprotocols: list[str | None] = field(default_factory=list)
    closes: list[tuple[int | None, str]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


Behaviour = Callable[[Any, Peer], Awaitable[None]]
"""What a server does with one connection, given a connection object of either library
(both have ``send``, ``recv``, ``close`` and ``async for``)."""


async def echo(ws: Any, peer: Peer) -> None:
    async for message in ws:
        peer.received.append(message)
        await ws.send(message)


@contextlib.asynccontextmanager
async def fullduplex_server(behaviour: Behaviour = echo, **options: Any) -> AsyncIterator[Peer]:
    peer = Peer()

    async def handler(ws: fullduplex.ServerConnection) -> None:
        peer.request_headers.append({k.lower(): v for k, v in ws.request.headers})
        peer.subprotocols.append(ws.subprotocol)
        peer.connected.set()
        try:
            await behaviour(ws, peer)
        except fullduplex.ConnectionClosed:
            pass
        finally:
            await ws.close()
            peer.closes.append((ws.close_code, ws.close_reason))
            peer.closed.set()

    async with fullduplex.serve(handler, "127.0.0.1", 0, **options) as server:
        scheme = "wss" if options.get("ssl") else "ws"
        peer.url = f"{scheme}://127.0.0.1:{server.port}/"
        yield peer


@contextlib.asynccontextmanager
async def websockets_server(behaviour: Behaviour = echo, **options: Any) -> AsyncIterator[Peer]:
    peer = Peer()

    async def handler(ws: websockets.asyncio.server.ServerConnection) -> None:
        assert ws.request is not None
        peer.request_headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        peer.subprotocols.append(ws.subprotocol)
        peer.connected.set()
        try:
            await behaviour(ws, peer)
        except websockets.ConnectionClosed:
            pass
        finally:
            await ws.close()
            peer.closes.append((ws.close_code, ws.close_reason or ""))
            peer.closed.set()

    async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0, **options) as server:
        port = server.sockets[0].getsockname()[1]
        scheme = "wss" if options.get("ssl") else "ws"
        peer.url = f"{scheme}://127.0.0.1:{port}/"
        yield peer


SERVERS = {"fullduplex": fullduplex_server, "websockets": websockets_server}
