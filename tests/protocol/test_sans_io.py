"""The protocol core stays sans-I/O: no module under fullduplex/protocol imports networking,
concurrency or clocks, nor the layers above it. Checked on the source with `ast`, so an import
hidden in a function or behind ``TYPE_CHECKING`` counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fullduplex.protocol

PROTOCOL_DIR = Path(fullduplex.protocol.__file__).parent
FORBIDDEN_MODULES = {"asyncio", "socket", "time", "threading", "selectors"}
# STYLE.md: imports only point down the layers, protocol <- io <- transports <- realtime <- cli.
FORBIDDEN_PACKAGES = {"io", "transports", "realtime", "cli"}


def protocol_modules() -> list[Path]:
    return sorted(PROTOCOL_DIR.rglob("*.py"))


def imported_modules(source: str, path: Path) -> set[str]:
    """Every module ``source`` imports, as an absolute dotted name.

    Relative imports are resolved against ``path``'s package inside ``fullduplex``.
    """
    package = ["fullduplex", *path.relative_to(PROTOCOL_DIR.parent).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            # `from . import x` and `from asyncio import x` may name submodules too.
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def forbidden_imports(source: str, path: Path) -> list[str]:
    def is_forbidden(parts: list[str]) -> bool:
        if parts[0] == "fullduplex":
            return len(parts) > 1 and parts[1] in FORBIDDEN_PACKAGES
        return parts[0] in FORBIDDEN_MODULES

    return [
        name for name in sorted(imported_modules(source, path)) if is_forbidden(name.split("."))
    ]


def test_protocol_package_has_modules_to_check() -> None:
    names = {path.relative_to(PROTOCOL_DIR).as_posix() for path in protocol_modules()}
    assert {
        "frames.py",
        "http11.py",
        "handshake.py",
        "connection.py",
        "server.py",
        "client.py",
    } <= names
    assert "extensions/permessage_deflate.py" in names


@pytest.mark.parametrize(
    "path", protocol_modules(), ids=lambda path: path.relative_to(PROTOCOL_DIR).as_posix()
)
def test_protocol_module_imports_no_io_concurrency_or_clock(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8"), path) == []


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import socket as s",
        "import os, time",
        "from threading import Lock",
        "import selectors",
        "def f():\n    import time\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import asyncio.streams\n",
        "from ..io.asyncio import connection",
        "from .. import io",
        "from fullduplex.transports import base",
    ],
)
def test_checker_finds_forbidden_import(source: str) -> None:
    assert forbidden_imports(source, PROTOCOL_DIR / "frames.py") != []


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import zlib, codecs",
        "from ..exceptions import ProtocolViolation",
        "from .frames import Opcode",
        "from ..frames import Frame",
        "import timeit",
        "from . import events",
    ],
)
def test_checker_allows_pure_import(source: str) -> None:
    path = PROTOCOL_DIR / "extensions" / "permessage_deflate.py"
    assert forbidden_imports(source, path) == []


def test_frame_layer_knows_nothing_of_events() -> None:
    # frames.py builds messages with the types its caller passes (FrameParser.next_messages).
    path = PROTOCOL_DIR / "frames.py"
    imported = imported_modules(path.read_text(encoding="utf-8"), path)
    assert not {name for name in imported if name.startswith("fullduplex.protocol.events")}
