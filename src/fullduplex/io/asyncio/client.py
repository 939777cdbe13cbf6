"""The asyncio WebSocket client: `connect` opens a connection to a ``ws://`` or ``wss://`` URL."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import AsyncIterator, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Unpack
from urllib.parse import urljoin, urlsplit, urlunsplit

from ...exceptions import InvalidHandshake, InvalidRedirect, InvalidStatus
from ...protocol.client import ClientProtocol
from ...protocol.connection import State
from ...protocol.events import HandshakeCompleted
from ...protocol.extensions.permessage_deflate import ClientPerMessageDeflate
from ...protocol.http11 import Response
from ..options import DEFAULT_OPTIONS, OptionOverrides, Options
from .connection import WebSocketConnection
from .proxy import ProxyURL, open_through_proxy, parse_proxy_url, proxy_from_environment
from .reconnect import Backoff, RetrySchedule, ends_conversation, is_retryable

__all__ = ["connect", "ClientConnection", "WebSocketURI", "parse_uri", "Backoff"]

logger = logging.getLogger("fullduplex")

DEFAULT_MAX_REDIRECTS = 10
# RFC 9110 §15.4: the redirections that name a new target in Location (not 300, 304, 305).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Credentials meant for one host do not follow a redirect to another (curl and requests agree).
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})


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

    @property
    def url(self) -> str:
        """The URL again, normalized: ``ws://host[:port]/path?query``."""
        return f"{'wss' if self.secure else 'ws'}://{self.host_header}{self.path}"


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
    """Open a WebSocket connection to ``url``, or keep one open by reconnecting.

    ::

        async with connect("ws://127.0.0.1:8000/") as ws:
            await ws.send("hello")
            print(await ws.recv())

        async for ws in connect("wss://example.test/feed"):  # reconnects
            try:
                async for message in ws:
                    print(message)
            except ConnectionClosed:
                continue

    Used with ``await`` or ``async with``, it opens one connection. Used with ``async for``,
    it yields a new connection each time the previous one ended, until a connection ends with
    a normal closure, 1000 or no code, whichever side began it (leave the loop with ``break``
    to stop sooner; an exception in the body ends it too). Every other end, such as 1001 from
    a restarting server or a lost connection, and every failure to connect that time may cure
    (refused, timed out, HTTP 408, 429, 5xx), is followed by a wait (``backoff``) and a new
    try, logged at INFO level on the ``fullduplex`` logger; other failures (4xx, a broken
    handshake, an untrusted certificate) are raised. A connection the body leaves open is
    closed with 1000 when the loop asks for the next one, which ends the iteration.

    The handshake follows redirects (301, 302, 303, 307, 308), resolving a relative
    ``Location``; ``http(s)://`` targets are read as ``ws(s)://``. ``Authorization`` and
    ``Cookie`` among ``extra_headers`` are not sent to another host than the URL's.

    Args:
        url: a ``ws://`` or ``wss://`` URL.
        subprotocols: subprotocols to offer, by preference; the server's choice is
            ``ws.subprotocol``.
        origin: the ``Origin`` header to send, if any.
        extra_headers: more request headers (``[("Authorization", "Bearer ...")]``).
        ssl: an `ssl.SSLContext` for ``wss://``; the default context when None.
        server_hostname: the name to verify the server's certificate against.
        unix_path: connect to this Unix socket instead of the URL's host and port.
        proxy: the proxy to go through: ``http://[user:password@]host:port`` (``CONNECT``),
            ``https://...`` (``CONNECT`` over TLS to the proxy), ``socks5://``, ``socks5h://``
            (the proxy resolves names), ``socks4://`` or ``socks4a://`` (SOCKS needs the
            ``socks`` extra: ``pip install 'fullduplex[socks]'``); True (the default) takes
            it from the environment (``https_proxy`` for wss://, ``http_proxy`` for ws://,
            ``all_proxy``, ``no_proxy``, in either case, as curl does); None connects
            directly.
        proxy_ssl: the `ssl.SSLContext` for an ``https://`` proxy; the default when None.
        max_redirects: how many redirects to follow at most; 0 follows none.
        backoff: the waits between tries of ``async for``: `Backoff` (1 s, doubling, up to
            60 s, with up to half of each removed at random, by default).
        options: timeouts, keepalive, limits, buffering and compression (see `Options`);
            ``open_timeout`` bounds the TCP connection, the proxy, the redirects and the
            opening handshake together.
        overrides: any field of `Options` as a keyword argument (``ping_interval=None``,
            ``compression=None``), which overrides ``options``.

    Raises:
        InvalidStatus: the server refused the upgrade (its response is attached).
        InvalidRedirect: a redirect from wss:// to ws://, to another scheme, or one too many.
        InvalidHandshake: the handshake failed otherwise.
        ProxyError: the proxy could not be reached or would not open a tunnel (its
            ``status`` attached).
        OSError: the connection could not be made.
        TimeoutError: the opening handshake took longer than ``open_timeout``.
        TypeError: a keyword argument names no field of `Options`.
        ValueError: a URL or an option is invalid (before any connection).
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
        proxy: str | Literal[True] | None = True,
        proxy_ssl: ssl_module.SSLContext | None = None,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        backoff: Backoff = Backoff(),  # noqa: B008 (a frozen dataclass: one shared value is fine)
        options: Options = DEFAULT_OPTIONS,
        **overrides: Unpack[OptionOverrides],
    ) -> None:
        options = options.updated(overrides)
        self.uri = parse_uri(url)
        if ssl is not None and not self.uri.secure:
            raise ValueError("an SSL context was given for a ws:// URL; use wss://")
        if max_redirects < 0:
            raise ValueError("max_redirects must be 0 or more")
        self._proxy: ProxyURL | Literal[True] | None = None
        if isinstance(proxy, str):
            if unix_path is not None:
                raise ValueError("a proxy cannot reach a Unix socket; pass proxy=None")
            self._proxy = parse_proxy_url(proxy)
        elif proxy is True and unix_path is None:
            self._proxy = True
        self._protocol_options: dict[str, Any] = dict(
            origin=origin,
            subprotocols=subprotocols,
            extensions=(
                [ClientPerMessageDeflate(compression_threshold=options.compression_threshold)]
                if options.compression == "deflate"
                else []
            ),
            extra_headers=tuple(extra_headers),
            max_header_bytes=options.max_header_bytes,
            max_headers=options.max_headers,
            max_message_size=options.max_size,
            max_frame_size=options.max_frame_size,
            max_fragments=options.max_fragments,
        )
        self._options = options
        self._ssl = ssl
        self._proxy_ssl = proxy_ssl
        self._server_hostname = server_hostname
        self._unix_path = unix_path
        self._max_redirects = max_redirects
        self._backoff = backoff
        self._connection: ClientConnection | None = None

    async def _open(self) -> ClientConnection:
        uri = self.uri
        redirects = 0
        async with asyncio.timeout(self._options.open_timeout):
            while True:
                try:
                    connection = await self._open_once(uri)
                except InvalidStatus as exc:
                    if exc.response.status not in REDIRECT_STATUSES:
                        raise
                    target = _redirect_target(uri, exc)
                    if redirects == self._max_redirects:
                        raise InvalidRedirect(
                            exc.response,
                            target.url,
                            f"{uri.url} redirected to {target.url}, one redirect more than "
                            f"max_redirects={self._max_redirects}",
                        ) from None
                    redirects += 1
                    logger.info(
                        "%s redirected to %s (HTTP %d)", uri.url, target.url, exc.response.status
                    )
                    uri = target
                    continue
                self._connection = connection
                return connection

    async def _open_once(self, uri: WebSocketURI) -> ClientConnection:
        """Connect to ``uri`` (through its proxy, if any) and complete the opening handshake."""
        loop = asyncio.get_running_loop()

        protocol_options = self._protocol_options
        if uri.host != self.uri.host:
            protocol_options = dict(protocol_options)
            protocol_options["extra_headers"] = tuple(
                (name, value)
                for name, value in protocol_options["extra_headers"]
                if name.lower() not in CREDENTIAL_HEADERS
            )

        def factory() -> ClientConnection:
            protocol = ClientProtocol(uri.host_header, uri.path, **protocol_options)
            return ClientConnection(protocol, self._options)

        tls: ssl_module.SSLContext | None = None
        tls_options: dict[str, Any] = {}
        if uri.secure:
            if self._ssl is None:  # made once: loading the system's CAs takes milliseconds
                self._ssl = ssl_module.create_default_context()
            tls = self._ssl
            # server_hostname names the first server; a redirect elsewhere is checked by name.
            server_hostname = uri.host
            if self._server_hostname is not None and uri.host == self.uri.host:
                server_hostname = self._server_hostname
            tls_options = dict(ssl=tls, server_hostname=server_hostname)
        proxy = self._proxy_for(uri)
        if self._unix_path is not None:
            _, connection = await loop.create_unix_connection(
                factory, self._unix_path, **tls_options
            )
        elif proxy is not None:
            logger.debug("connecting to %s through %s", uri.url, proxy.display)
            connection = await open_through_proxy(
                proxy,
                uri.host,
                uri.port,
                factory,
                ssl=tls,
                server_hostname=tls_options.get("server_hostname"),
                proxy_ssl=self._proxy_ssl,
            )
        else:
            _, connection = await loop.create_connection(factory, uri.host, uri.port, **tls_options)
        try:
            await connection.opened
        except BaseException:
            if connection.transport is not None:
                connection.transport.abort()
            raise
        return connection

    def _proxy_for(self, uri: WebSocketURI) -> ProxyURL | None:
        if self._proxy is not True:
            return self._proxy
        url = proxy_from_environment(uri.host, uri.port, secure=uri.secure)
        return parse_proxy_url(url) if url is not None else None

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        """Yield a connection, then a new one each time it ends, until a normal closure.

        Raises:
            Any error of `connect` that another try cannot cure.
        """
        loop = asyncio.get_running_loop()
        schedule = RetrySchedule(self._backoff)
        while True:
            try:
                connection = await self._open()
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                delay = schedule.after_failure(exc)
                logger.info(
                    "cannot connect to %s (%s); retrying in %.3g s",
                    self.uri.url,
                    _describe(exc),
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            opened_at = loop.time()
            try:
                yield connection
            except GeneratorExit:
                # The loop was left (break, an exception) and this generator is closed.
                await connection.close()
                raise
            if connection.state is State.OPEN and connection.protocol.close_sent is None:
                await connection.close()
            await connection.wait_closed()
            if ends_conversation(connection.protocol):
                return
            delay = schedule.after_close(loop.time() - opened_at)
            logger.info(
                "connection to %s ended (%s); reconnecting in %.3g s",
                self.uri.url,
                connection.protocol.closed_error(),
                delay,
            )
            await asyncio.sleep(delay)

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._open()

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._connection is not None
        if self._connection.state is not State.CLOSED:
            await self._connection.close()


def _redirect_target(uri: WebSocketURI, refusal: InvalidStatus) -> WebSocketURI:
    """Where a redirect points, resolved against the URL that answered it.

    Raises:
        InvalidRedirect: no usable Location, another scheme, or a downgrade from wss to ws.
    """
    response = refusal.response
    location = response.headers.get("Location")
    if not location:
        raise InvalidRedirect(response, "", f"HTTP {response.status} redirect without a Location")
    # urljoin resolves relative references for http(s) only; ws(s) share their syntax
    # (RFC 6455 §3), so resolve in http terms and map the scheme back.
    base = ("https" if uri.secure else "http") + "://" + uri.host_header + uri.path
    parts = urlsplit(urljoin(base, location.strip()))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    target = urlunsplit(parts._replace(scheme=scheme, fragment=""))
    if scheme not in ("ws", "wss"):
        raise InvalidRedirect(response, location, f"redirect to {location!r}, not a WebSocket URL")
    if uri.secure and scheme == "ws":
        raise InvalidRedirect(
            response, location, f"redirect from {uri.url} to {target}: refusing to drop TLS"
        )
    try:
        return parse_uri(target)
    except ValueError as exc:
        raise InvalidRedirect(response, location, f"invalid redirect: {exc}") from None


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
