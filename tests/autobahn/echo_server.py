"""Echo server tested by Autobahn|Testsuite's fuzzingclient.

Usage: python tests/autobahn/echo_server.py PORT [callbacks]

Echoes text as text and binary as binary on ws://127.0.0.1:PORT, with permessage-deflate
(on by default) and a 32 MiB size limit, since cases 9.* send messages of up to 16 MiB.
With ``callbacks``, on the callback API (``ws.on_message(ws.send_nowait)``, whose read path
differs: `_PlainReads`), else with ``async for`` and ``send``.
Prints whether the compiled extension (fullduplex.protocol._speedups) is in use, which
tests/test_autobahn.py checks against the pass it runs in.
"""

from __future__ import annotations

import sys

import fullduplex
from fullduplex.protocol import _compiled


def speedups_in_use() -> bool:
    # protocol/_compiled.py takes all of its functions from the extension, or none.
    return _compiled.apply_mask.__module__ == "fullduplex.protocol._speedups"


async def echo(ws: fullduplex.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def echo_by_callback(ws: fullduplex.ServerConnection) -> None:
    ws.on_message(ws.send_nowait)
    await ws.wait_closed()


async def main(port: int, on_callbacks: bool) -> None:
    print(f"fullduplex.protocol._speedups in use: {speedups_in_use()}", flush=True)
    handler = echo_by_callback if on_callbacks else echo
    async with fullduplex.serve(handler, "127.0.0.1", port, max_size=2**25) as server:
        await server.serve_forever()


if __name__ == "__main__":
    fullduplex.run(main(int(sys.argv[1]), sys.argv[2:] == ["callbacks"]))
