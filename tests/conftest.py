"""Fixtures shared by the whole suite, and its one timeout mechanism.

Every test is bounded in time: `DEFAULT_TIMEOUT_S` (`BROWSER_TIMEOUT_S` when it drives
Chromium), or the seconds of its ``@pytest.mark.timeout_s(N)`` marker. A coroutine test runs
inside ``asyncio.timeout``, so that a hang cancels it and its fixtures still clean up; any other
test gets a ``SIGALRM`` that raises in it. Either way a bug that hangs fails its test instead of
the whole run.

External tools (Autobahn's wstest, Chromium, Node) are looked up with `require_tool`:
outside CI a missing tool skips the test with the command that installs it; under
``CI=true`` it fails the test, so that CI never passes by skipping.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import inspect
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = "/usr/bin/chromium"
# Flags for a headless Chromium that makes no connection of its own: tests talk to
# 127.0.0.1 only, and nothing is downloaded (never `playwright install`).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

HOW_TO_INSTALL = {
    "wstest": (
        "sudo scripts/install-autobahn.sh (or AUTOBAHN_PREFIX=DIR scripts/install-autobahn.sh, "
        "then run the tests with the same AUTOBAHN_PREFIX)"
    ),
    "chromium": "sudo apt-get install -y chromium",
    "node": "sudo apt-get install -y nodejs npm",
    "ws": "npm ci --prefix tests (or make test)",
    "socket.io-client": "npm ci --prefix tests (or make test)",
    # The public protocol suites, which the repository's runners run (scripts/).
    "sockjs-suite": (
        "scripts/install-sockjs-suite.sh (to install elsewhere than /tmp/sockjs-harness-venv, "
        "the same SOCKJS_VENV=DIR for it and the tests)"
    ),
    "sockjs-client": "make src/fullduplex/transports/sockjs/client/node_modules/.installed",
    "chat-client": "make examples/chat/node_modules/.installed",
    "engine.io-client": "npm ci --prefix tests (or make test)",
    "socketio-suites": (
        "scripts/install-socketio-suites.sh (to install elsewhere than /tmp/socketio-node, "
        "the same SOCKETIO_NODE_DIR=DIR for it and the tests)"
    ),
}


DEFAULT_TIMEOUT_S = 120
BROWSER_TIMEOUT_S = 300
"""The default of tests marked ``browser``: Chromium starts slowly on a loaded machine."""


def _timeout_s(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout_s")
    if marker is not None:
        return float(marker.args[0])
    return BROWSER_TIMEOUT_S if item.get_closest_marker("browser") else DEFAULT_TIMEOUT_S


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-asyncio runs `item.obj`; the wrapper keeps the signature for fixtures.
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.obj = _bounded(item.obj, _timeout_s(item))


def _bounded(
    test: Callable[..., Awaitable[None]], timeout_s: float
) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(timeout_s):
            await test(*args, **kwargs)

    return run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
        return (yield)  # bounded by asyncio.timeout
    timeout_s = _timeout_s(item)

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the test ran for more than {timeout_s} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _require_tool(name: str, path: str | os.PathLike[str]) -> str:
    """Return ``path`` if it exists; otherwise skip the test, or fail it under CI=true.

    Args:
        name: the tool's name, as known to `HOW_TO_INSTALL` (``wstest``, ``chromium``…).
        path: where the tool must be.
    """
    if os.path.exists(path):
        return os.fspath(path)
    message = f"{name} not found at {path}; install with: {HOW_TO_INSTALL.get(name, name)}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str, str | os.PathLike[str]], str]:
    """`require_tool(name, path) -> path`: skip (or, under CI=true, fail) if path is missing."""
    return _require_tool


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def chromium_launch_options() -> dict[str, Any]:
    """Playwright's launch options for the system's Chromium; add flags to a copy of ``args``."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS), "headless": True}


@pytest.fixture
async def chromium_browser(chromium_launch_options: dict[str, Any]) -> AsyncIterator[Browser]:
    """A headless Chromium (the system's /usr/bin/chromium) driven by Playwright."""
    _require_tool("chromium", CHROMIUM)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**chromium_launch_options)
        try:
            yield browser
        finally:
            await browser.close()


# --- TLS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCA:
    """A trustme CA and a server certificate for 127.0.0.1 and localhost, as contexts and files.

    Attributes:
        ca_pem: the CA certificate (what clients trust).
        cert_pem, key_pem: the server's certificate chain and private key.
        server_spki_sha256: base64 SHA-256 of the server certificate's SubjectPublicKeyInfo,
            the form Chromium's ``--ignore-certificate-errors-spki-list`` takes. (Chromium
            matches it against the chain the server presents, which stops below the CA.)
    """

    __test__ = False  # not a test class, despite its name

    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    server_spki_sha256: str


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """The one test CA of the suite: a server certificate for 127.0.0.1 and localhost that it
    issued, and contexts for a server presenting it and for a client trusting the CA."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    directory = tmp_path_factory.mktemp("tls")
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca.cert_pem.write_to_path(ca_pem)
    cert_pem.write_bytes(b"".join(blob.bytes() for blob in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(key_pem)

    leaf = x509.load_pem_x509_certificate(server_cert.cert_chain_pems[0].bytes())
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TestCA(
        server_context=server_context,
        client_context=client_context,
        ca_pem=ca_pem,
        cert_pem=cert_pem,
        key_pem=key_pem,
        server_spki_sha256=base64.b64encode(hashlib.sha256(spki).digest()).decode(),
    )
