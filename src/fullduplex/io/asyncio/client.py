"""The asyncio WebSocket client: `connect` opens a connection to a ``ws://`` or ``wss://`` URL."""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Unpack
from urllib.parse import urlsplit

from ...exceptions import InvalidHandshake
from ...protocol.client import ClientProtocol
from ...protocol.connection import State
from ...protocol.events import HandshakeCompleted
from ...protocol.extensions.permessage_deflate import ClientPerMessageDeflate
from ...protocol.http11 import Response
from ..options import DEFAULT_OPTIONS, OptionOverrides, Options
from .connection import WebSocketConnection

__all__ = ["connect", "ClientConnection", "WebSocketURI", "parse_uri"]


@dataclass(frozen=True)
class WebSocketURI:
    """A parsed ``ws://`` or ``wss://`` URL."""

    secure: bool
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the host, bracketed if IPv6, with the port unless default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_uri(url: str) -> WebSocketURI:
    """Parse a WebSocket URL (RFC 6455 §3).

    Raises:
        ValueError: the scheme is not ws/wss, the host is missing, or it has a fragment.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"{url!r} is not a WebSocket URL: the scheme must be ws or wss")
    if parts.fragment or url.endswith("#"):
        raise ValueError(f"{url!r} has a fragment, which WebSocket URLs may not have")
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    secure = parts.scheme == "wss"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return WebSocketURI(secure, parts.hostname, parts.port or (443 if secure else 80), path)


class ClientConnection(WebSocketConnection):
    """A client's connection to a WebSocket server; returned by `connect`.

    ``response`` is the server's 101 response (``response.headers``).
    """

    protocol: ClientProtocol

    __slots__ = ("opened",)

    def __init__(self, protocol: ClientProtocol, options: Options) -> None:
        super().__init__(protocol, options)
        self.opened: asyncio.Future[None] = self._loop.create_future()

    @property
    def response(self) -> Response:
        """The server's handshake response."""
        assert self.protocol.response is not None
        return self.protocol.response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._flush()  # the upgrade request, queued by the protocol

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.opened.done():
            failure = self.protocol.failure
            if isinstance(failure, InvalidHandshake):
                self._fail_opening(failure)
            else:
                self._fail_opening(
                    exc or ConnectionError("connection closed during the opening handshake")
                )

    def _handle_event(self, event: object) -> None:
        if isinstance(event, HandshakeCompleted):
            self.opened.set_result(None)
            self._start_keepalive()

    def _log_failure(self, error: Exception) -> None:
        if isinstance(error, InvalidHandshake) and not self.opened.done():
            self._fail_opening(error)
        else:
            super()._log_failure(error)

    def _fail_opening(self, error: BaseException) -> None:
        self.opened.set_exception(error)
        # `connect` may have given up already (open_timeout, cancellation): then nobody
        # awaits `opened`, and asyncio would log "exception was never retrieved".
        self.opened.exception()


# Lowercase, as it is used like a function: ``async with connect(...)`` or ``await connect(...)``.
class connect:
    """Open a WebSocket connection to ``url``.

    ::

        async with connect("ws://127.0.0.1:8000/") as ws:
            await ws.send("hello")
            print(await ws.recv())

    Args:
        url: a ``ws://`` or ``wss://`` URL.
        subprotocols: subprotocols to offer, by preference; the server's choice is
            ``ws.subprotocol``.
        origin: the ``Origin`` header to send, if any.
        extra_headers: more request headers (``[("Authorization", "Bearer ...")]``).
        ssl: an `ssl.SSLContext` for ``wss://``; the default context when None.
        server_hostname: the name to verify the server's certificate against.
        unix_path: connect to this Unix socket instead of the URL's host and port.
        options: timeouts, keepalive, limits, buffering and compression (see `Options`);
            ``open_timeout`` bounds the TCP connection and the opening handshake together.
        overrides: any field of `Options` as a keyword argument (``ping_interval=None``,
            ``compression=None``), which overrides ``options``.

    Raises:
        InvalidStatus: the server refused the upgrade (its response is attached).
        InvalidHandshake: the handshake failed otherwise.
        OSError: the connection could not be made.
        TimeoutError: the opening handshake took longer than ``open_timeout``.
        TypeError: a keyword argument names no field of `Options`.
        ValueError: the URL or an option is invalid.
    """

    def __init__(
        self,
        url: str,
        *,
        subprotocols: Sequence[str] = (),
        origin: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        unix_path: str | None = None,
        options: Options = DEFAULT_OPTIONS,
        **overrides: Unpack[OptionOverrides],
    ) -> None:
        options = options.updated(overrides)
        self.uri = parse_uri(url)
        if ssl is not None and not self.uri.secure:
            raise ValueError("an SSL context was given for a ws:// URL; use wss://")
        self._protocol_options: dict[str, Any] = dict(
            origin=origin,
            subprotocols=subprotocols,
            extensions=[ClientPerMessageDeflate()] if options.compression == "deflate" else [],
            extra_headers=tuple(extra_headers),
            max_header_bytes=options.max_header_bytes,
            max_headers=options.max_headers,
            max_message_size=options.max_size,
            max_frame_size=options.max_frame_size,
            max_fragments=options.max_fragments,
        )
        self._options = options
        if ssl is None and self.uri.secure:
            ssl = ssl_module.create_default_context()
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._unix_path = unix_path
        self._connection: ClientConnection | None = None

    async def _open(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        uri = self.uri

        def factory() -> ClientConnection:
            protocol = ClientProtocol(uri.host_header, uri.path, **self._protocol_options)
            return ClientConnection(protocol, self._options)

        tls: dict[str, Any] = {}
        if self._ssl is not None:
            tls = dict(ssl=self._ssl, server_hostname=self._server_hostname or uri.host)
        async with asyncio.timeout(self._options.open_timeout):
            if self._unix_path is not None:
                _, connection = await loop.create_unix_connection(factory, self._unix_path, **tls)
            else:
                _, connection = await loop.create_connection(factory, uri.host, uri.port, **tls)
            try:
                await connection.opened
            except BaseException:
                if connection.transport is not None:
                    connection.transport.abort()
                raise
        self._connection = connection
        return connection

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._open()

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._connection is not None
        if self._connection.state is not State.CLOSED:
            await self._connection.close()
