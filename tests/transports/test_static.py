"""StaticFiles through a Router on `fullduplex.serve`: types, validators, 304, HEAD, large
files, directory index, and every way out of the directory refused."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fullduplex import serve
from fullduplex.transports import Router, StaticFiles


def bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Fail a test that hangs instead of the whole run."""

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(10):
            await test(*args, **kwargs)

    return run


@pytest.fixture
def site(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "app.js").write_text("console.log(1)")
    (public / "sub" / "data.bin").write_bytes(bytes(range(256)) * 1024)  # 256 KiB
    (public / "with space.txt").write_text("spaced")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", public / "link.txt")
    return public


@pytest.fixture
async def port(site: Path) -> AsyncIterator[int]:
    app = Router()
    app.static("/static", site)
    async with serve(app, "127.0.0.1", 0) as server:
        yield server.port


async def raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request (HTTP/1.0: the server closes after) and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        data = await reader.read(-1)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def get(path: str, *extra: str, method: str = "GET") -> bytes:
    return ("\r\n".join([f"{method} {path} HTTP/1.0", *extra]) + "\r\n\r\n").encode()


@bounded
async def test_static_serves_a_file_with_its_type_and_validators(port: int) -> None:
    status, headers, body = await raw(port, get("/static/app.js"))
    assert (status, body) == (200, b"console.log(1)")
    assert headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert headers["content-length"] == "14"
    assert headers["etag"].startswith('"') and "last-modified" in headers


@bounded
async def test_static_answers_304_to_a_matching_validator(port: int) -> None:
    _, headers, _ = await raw(port, get("/static/app.js"))
    status, _, body = await raw(port, get("/static/app.js", f"If-None-Match: {headers['etag']}"))
    assert (status, body) == (304, b"")
    status, _, _ = await raw(
        port, get("/static/app.js", f"If-Modified-Since: {headers['last-modified']}")
    )
    assert status == 304
    status, _, _ = await raw(port, get("/static/app.js", 'If-None-Match: "other"'))
    assert status == 200


@bounded
async def test_static_answers_head_without_a_body(port: int) -> None:
    status, headers, body = await raw(port, get("/static/sub/data.bin", method="HEAD"))
    assert (status, headers["content-length"], body) == (200, str(256 * 1024), b"")


@bounded
async def test_static_streams_a_large_file(port: int) -> None:
    status, headers, body = await raw(port, get("/static/sub/data.bin"))
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert body == bytes(range(256)) * 1024


@bounded
async def test_static_serves_the_index_and_decodes_escapes(port: int) -> None:
    assert (await raw(port, get("/static/")))[2] == b"<h1>home</h1>"
    assert (await raw(port, get("/static")))[2] == b"<h1>home</h1>"
    assert (await raw(port, get("/static/with%20space.txt")))[2] == b"spaced"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/sub/..%2f..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/link.txt",  # a symbolic link out of the directory
        "/static/app.js%00.txt",
        "/static/%ff",
        "/static/missing.txt",
        "/static/sub/data.bin/x",
    ],
)
@bounded
async def test_static_refuses_paths_out_of_the_directory(port: int, path: str) -> None:
    status, _, body = await raw(port, get(path))
    assert status == 404
    assert b"secret" not in body


@bounded
async def test_static_refuses_other_methods(port: int) -> None:
    status, headers, _ = await raw(port, get("/static/app.js", method="DELETE"))
    assert (status, headers["allow"]) == (405, "GET, HEAD")


def test_static_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        StaticFiles(tmp_path / "nothing")
