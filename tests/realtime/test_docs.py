"""docs/realtime.md's Python examples run: the hub example as written, the Socket.IO server's
handlers driven by the asyncio client, the client example against that server."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fullduplex
from fullduplex.realtime.socketio import AsyncClient, ConnectRefused, Server
from fullduplex.transports import Router
from fullduplex.transports.engineio import EngineIOEndpoint

DOC = Path(__file__).resolve().parents[2] / "docs" / "realtime.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def block(marker: str) -> str:
    (found,) = [code for code in BLOCKS if marker in code]
    return found


def test_hub_example_runs() -> None:
    code = block("from fullduplex.realtime import Hub")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "presence:" in result.stdout


async def test_server_example_handlers_serve_the_client_example() -> None:
    # The server example without its last line (asyncio.run(main())), and on port 0.
    code = block("chat_server.py").replace("asyncio.run(main())", "")
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    sio: Server = namespace["sio"]
    endpoint = EngineIOEndpoint(sio.serve, cors="*")
    app = Router()
    app.mount("/socket.io", endpoint)
    async with fullduplex.serve(app, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"
        with pytest.raises(ConnectRefused):
            await AsyncClient(url).connect()
        said: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        async with AsyncClient(url, auth={"name": "ann"}) as client:
            client.on("said", lambda *args: said.put_nowait(args))
            assert await client.call("join", "lobby") == ["ann"]
            assert await client.call("say", "lobby", "hello") == "delivered"
            name, text, *_ = await asyncio.wait_for(said.get(), 5)
            assert (name, text) == ("ann", "hello")
        # The client example, pointed at this server.
        client_code = block("AsyncClient(").replace("http://127.0.0.1:9700", url)
        client_code = client_code.replace("asyncio.run(main())", "")
        scope: dict[str, Any] = {}
        exec(compile(client_code, str(DOC), "exec"), scope)
        await scope["main"]()
        await endpoint.aclose()
        await sio.close()
