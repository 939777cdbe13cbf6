"""fullduplex.run: asyncio.run on uvloop when it is installed."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

import fullduplex


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_returns_what_main_returned() -> None:
    async def main() -> int:
        return 42

    assert fullduplex.run(main()) == 42


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed")
def test_run_uses_uvloop_when_installed() -> None:
    assert fullduplex.run(loop_module()).startswith("uvloop")


def test_run_serves_and_connects() -> None:
    async def main() -> str:
        async def echo(ws: fullduplex.ServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        async with (
            fullduplex.serve(echo, "127.0.0.1", 0) as server,
            fullduplex.connect(f"ws://127.0.0.1:{server.port}/") as ws,
        ):
            await ws.send("over uvloop")
            reply = await ws.recv()
            assert isinstance(reply, str)
            return reply

    assert fullduplex.run(main()) == "over uvloop"
