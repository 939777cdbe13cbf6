"""Client tested by Autobahn|Testsuite's fuzzingserver, started by tests/test_autobahn.py.

Usage: AUTOBAHN_URL=ws://127.0.0.1:9001 AUTOBAHN_AGENT=fullduplex python tests/autobahn/client.py

Asks for the number of cases, runs each one (echoing every message, text as text and binary
as binary, until the fuzzingserver closes), then asks the fuzzingserver to write its reports.
Prints whether the compiled extension (fullduplex.protocol._speedups) is in use, which
tests/test_autobahn.py checks against the pass it runs in.
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import quote

import fullduplex
from fullduplex.protocol import _compiled

URL = os.environ["AUTOBAHN_URL"]
AGENT = quote(os.environ["AUTOBAHN_AGENT"])


def speedups_in_use() -> bool:
    # protocol/_compiled.py takes all of its functions from the extension, or none.
    return _compiled.apply_mask.__module__ == "fullduplex.protocol._speedups"


def connect(path: str):
    # Cases 9.* send messages of up to 16 MiB; keepalive pings would add frames to the cases.
    return fullduplex.connect(f"{URL}{path}", max_size=2**25, ping_interval=None)


async def run_case(case: int) -> None:
    try:
        async with connect(f"/runCase?case={case}&agent={AGENT}") as ws:
            async for message in ws:
                await ws.send(message)
    except (fullduplex.FullDuplexError, OSError):
        pass  # the library failed the connection: that is the case's verdict


async def main() -> None:
    print(f"fullduplex.protocol._speedups in use: {speedups_in_use()}", flush=True)
    async with connect("/getCaseCount") as ws:
        count = int(await ws.recv())
    print(f"running {count} cases as agent {AGENT}", flush=True)
    for case in range(1, count + 1):
        await run_case(case)
        if case % 100 == 0:
            print(f"{case} of {count} cases done", flush=True)
    async with connect(f"/updateReports?agent={AGENT}") as ws:
        await ws.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
