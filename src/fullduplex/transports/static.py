"""`StaticFiles`: an endpoint serving the files of a directory, off the event loop.

Files are opened, checked and read in the loop's default executor, so a slow disk never stalls
other connections; large files are streamed in 64 KiB pieces with backpressure. Responses
carry ``Content-Type``, ``Content-Length``, ``ETag`` and ``Last-Modified``, and conditional
requests (``If-None-Match``, ``If-Modified-Since``) get 304. The path is percent-decoded, then
refused (404) if any segment is ``..``, if it holds a NUL or a backslash, or if it resolves,
through symbolic links or otherwise, outside the directory.
"""

from __future__ import annotations

import asyncio
import email.utils
import mimetypes
import os
import stat
from os import PathLike
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from ..io.asyncio.exchange import HTTPExchange
from ..protocol.http11 import Request, Response
from .base import Endpoint, Session

__all__ = ["StaticFiles"]

_CHUNK_BYTES = 64 * 1024
_PLAIN = ("Content-Type", "text/plain; charset=utf-8")


class StaticFiles(Endpoint):
    """Serve the files under ``directory`` for GET and HEAD; mount it with `Router.static`.

    Args:
        directory: the directory to serve.
        index: the file that answers for a directory (None: directories answer 404).

    Raises:
        NotADirectoryError: ``directory`` is not a directory.
    """

    __slots__ = ("directory", "index")

    def __init__(self, directory: str | PathLike[str], *, index: str | None = "index.html") -> None:
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise NotADirectoryError(f"not a directory: {self.directory}")
        self.index = index

    async def handle_http(self, exchange: HTTPExchange, path: str) -> None:
        """Answer GET or HEAD with the file at ``path``; 404, 405 or 304 otherwise."""
        method = exchange.request.method
        if method not in ("GET", "HEAD"):
            body = b"Method Not Allowed\n"
            await exchange.respond(405, [_PLAIN, ("Allow", "GET, HEAD")], body)
            return
        relative = _safe_relative(path)
        loop = asyncio.get_running_loop()
        opened = (
            None if relative is None else await loop.run_in_executor(None, self._open, relative)
        )
        if opened is None:
            await exchange.respond(404, [_PLAIN], b"Not Found\n")
            return
        file, file_path, status = opened
        try:
            await self._send(exchange, file, file_path, status, loop)
        finally:
            file.close()

    async def _send(
        self,
        exchange: HTTPExchange,
        file: BinaryIO,
        file_path: Path,
        status: os.stat_result,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        etag = f'"{status.st_mtime_ns:x}-{status.st_size:x}"'
        modified = email.utils.formatdate(status.st_mtime, usegmt=True)
        validators = [("ETag", etag), ("Last-Modified", modified)]
        if _not_modified(exchange.request, etag, status.st_mtime):
            await exchange.respond(304, validators)
            return
        headers = [
            ("Content-Type", _content_type(file_path)),
            ("Content-Length", str(status.st_size)),
            *validators,
        ]
        if exchange.request.method == "HEAD":
            await exchange.respond(200, headers)
        elif status.st_size <= _CHUNK_BYTES:
            await exchange.respond(200, headers, await loop.run_in_executor(None, file.read))
        else:
            await exchange.start(200, headers)
            remaining = status.st_size
            while remaining > 0:
                chunk = await loop.run_in_executor(None, file.read, min(_CHUNK_BYTES, remaining))
                if not chunk:  # the file shrank meanwhile: the length sent can't be kept
                    raise OSError(f"{file_path} shrank while being sent")
                remaining -= len(chunk)
                await exchange.write(chunk)
            await exchange.end()

    def _open(self, relative: str) -> tuple[BinaryIO, Path, os.stat_result] | None:
        """Open the regular file at ``relative`` if it is inside the directory (in a thread)."""
        try:
            path = (self.directory / relative).resolve()
            if not path.is_relative_to(self.directory):
                return None
            if path.is_dir():
                if self.index is None:
                    return None
                path = path / self.index
            file = path.open("rb")
        except (OSError, ValueError):
            return None
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            file.close()
            return None
        return file, path, status

    def refuse_websocket(self, request: Request, path: str) -> Response | None:
        """Files take no WebSocket connections: 404."""
        return Response(404, [_PLAIN], b"Not Found\n")

    async def handle_websocket(self, session: Session, path: str) -> None:
        """Never called: `refuse_websocket` refuses every upgrade."""
        await session.close(1008, "not a WebSocket endpoint")


def _safe_relative(path: str) -> str | None:
    """The percent-decoded path relative to the served directory, or None if it tries to
    leave it or cannot name a file."""
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in decoded or "\\" in decoded:
        return None
    segments = [segment for segment in decoded.split("/") if segment not in ("", ".")]
    if ".." in segments:
        return None
    return "/".join(segments)


def _not_modified(request: Request, etag: str, mtime: float) -> bool:
    """RFC 9110 §13.1.2, §13.1.3: If-None-Match wins over If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since is not None:
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
        return int(mtime) <= since
    return False


def _content_type(path: Path) -> str:
    content_type, _ = mimetypes.guess_type(path.name)
    if content_type is None:
        return "application/octet-stream"
    if content_type.startswith("text/") or content_type in (
        "application/javascript",
        "application/json",
    ):
        return f"{content_type}; charset=utf-8"
    return content_type
