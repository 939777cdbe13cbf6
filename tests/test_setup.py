"""setup.py's build switches, on a machine without a C compiler.

``CC=/bin/false`` stands in for a missing compiler: every compile fails, as it does where gcc
or Python's headers are absent. The package must then build and install without the
extension and work in pure Python; with ``FULLDUPLEX_BUILD_SPEEDUPS=require`` the build must
fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 300
# A test runs up to three commands bounded by BUILD_TIMEOUT_S.
pytestmark = [pytest.mark.slow, pytest.mark.timeout_s(3 * BUILD_TIMEOUT_S)]

# Runs in the new virtualenv: pure Python chosen, and a message echoed over a real socket.
SMOKE_TEST = """
import asyncio
import fullduplex
from fullduplex.protocol import _compiled

assert _compiled.parse_messages is None, "the extension was built after all"
assert _compiled.apply_mask.__module__ == "fullduplex.protocol._compiled"

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with fullduplex.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with fullduplex.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("pure")
            assert await ws.recv() == "pure"
            await ws.send(b"\\x00" * 100_000)
            assert await ws.recv() == b"\\x00" * 100_000

asyncio.run(asyncio.wait_for(main(), 30))
print("pure install works")
"""


def copy_sources(target: Path) -> Path:
    """Copy what a source distribution holds, without anything built in this checkout."""
    source = target / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "src",
        source / "src",
        ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info"),
    )
    return source


def pip_install(source: Path, venv: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """``pip install source`` into a new virtualenv, as a user does, but with no compiler.

    pip builds in an isolated environment, so setuptools comes from the configured package index
    (or its cache), as it does for a user.
    """
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=BUILD_TIMEOUT_S)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FULLDUPLEX_")}
    env |= {"CC": "/bin/false"} | environment
    return subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-deps", "--no-compile", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )


def installed_files(venv: Path) -> list[str]:
    (package,) = venv.glob("lib/python3*/site-packages/fullduplex")
    return sorted(str(path.relative_to(package)) for path in package.rglob("*"))


def test_install_without_a_compiler_gives_a_working_pure_python_package(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    installed = pip_install(copy_sources(tmp_path), venv)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    files = installed_files(venv)
    assert "protocol/_compiled.py" in files
    assert "protocol/_speedups.pyi" in files
    assert not [name for name in files if name.endswith((".so", ".c"))]
    smoke = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SMOKE_TEST],
        cwd=tmp_path,  # not the checkout, whose src/ must not shadow the installed package
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert smoke.stdout == "pure install works\n"


def test_install_that_requires_the_extension_fails_without_a_compiler(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    installed = pip_install(copy_sources(tmp_path), venv, FULLDUPLEX_BUILD_SPEEDUPS="require")
    assert installed.returncode != 0
    assert "fullduplex.protocol._speedups" in installed.stdout + installed.stderr
    assert not list(venv.glob("lib/python3*/site-packages/fullduplex"))


def test_install_refuses_an_unknown_switch_value(tmp_path: Path) -> None:
    installed = pip_install(
        copy_sources(tmp_path), tmp_path / "venv", FULLDUPLEX_BUILD_SPEEDUPS="yes"
    )
    assert installed.returncode != 0
    assert "expected one of ('auto', 'require', 'skip')" in installed.stdout + installed.stderr
