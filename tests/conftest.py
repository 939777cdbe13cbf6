"""Fixtures shared by the whole suite.

External tools (Autobahn's wstest, Chromium, Node) are looked up with `require_tool`:
outside CI a missing tool skips the test with the command that installs it; under
``CI=true`` it fails the test, so that CI never passes by skipping.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

REPO = Path(__file__).resolve().parents[1]
SOCKJS_SUITE_DIR = Path(
    os.environ.get("SOCKJS_SUITE_DIR", REPO.parent / "shared" / "tools" / "sockjs")
)
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
    "sockjs-suite": f"{SOCKJS_SUITE_DIR / 'setup.sh'}",
    "sockjs-client": "make src/fullduplex/transports/sockjs/client/node_modules/.installed",
    "engine.io-client": "npm ci --prefix tests (or make test)",
    "socketio-tools": "a checkout of shared/ beside the repository, or SOCKETIO_TOOLS=DIR",
    "socketio-suites": f"{REPO.parent / 'shared' / 'tools' / 'socketio' / 'setup.sh'}",
}


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
