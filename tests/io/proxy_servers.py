"""Real proxy servers for the client's tests: pproxy (HTTP CONNECT, SOCKS4, SOCKS5, and HTTP
CONNECT over TLS) in a subprocess on 127.0.0.1, on a port the system picks.

pproxy prints ``Serving on ... 127.0.0.1:PORT by ...`` once its socket listens: reading that
line is the readiness signal. ``--auth 0`` makes it check the credentials of every request
(by default it trusts an address for a month once it authenticated).
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["run_pproxy", "PROXY_USER", "PROXY_PASSWORD"]

PROXY_USER = "alice"
PROXY_PASSWORD = "s3cret:with colon"
STARTUP_TIMEOUT_S = 10

# pproxy 2.7.9 switches to uvloop when it can import it, then calls asyncio.get_event_loop(),
# which uvloop's policy refuses outside a running loop: hide uvloop from it.
_MAIN = (
    "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'pproxy'; "
    "from pproxy.server import main; main()"
)
_SERVING = re.compile(r"Serving on \S+ 127\.0\.0\.1:(\d+)")


@contextmanager
def run_pproxy(
    protocols: str, *, auth: bool = True, certificate: str | Path | None = None
) -> Iterator[int]:
    """Run a pproxy server on 127.0.0.1; yield its port, stop it at the end.

    Args:
        protocols: pproxy's scheme for the listener: ``http``, ``socks5``, ``http+socks5``...
            (``+ssl`` with ``certificate`` for TLS to the proxy).
        auth: require `PROXY_USER` and `PROXY_PASSWORD`.
        certificate: for ``+ssl``, a PEM file with the certificate chain and the key, or
            ``CERT,KEY`` (pproxy's ``--ssl``).
    """
    credentials = f"#{PROXY_USER}:{PROXY_PASSWORD}" if auth else ""
    command = [sys.executable, "-u", "-c", _MAIN, "-l", f"{protocols}://127.0.0.1:0{credentials}"]
    command += ["--auth", "0"]
    if certificate is not None:
        command += ["--ssl", str(certificate)]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line.decode(errors="replace"))
        lines.put("")  # end of output

    reader = threading.Thread(target=read, name="pproxy output", daemon=True)
    reader.start()
    try:
        output = []
        while True:
            line = lines.get(timeout=STARTUP_TIMEOUT_S)
            output.append(line)
            if not line:
                raise RuntimeError(f"pproxy exited before listening: {''.join(output)}")
            if match := _SERVING.search(line):
                break
        yield int(match.group(1))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        stdout.close()
