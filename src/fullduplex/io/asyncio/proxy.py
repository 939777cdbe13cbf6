"""Reaching a WebSocket server through a proxy: HTTP ``CONNECT`` (RFC 9110 §9.3.6), over TCP or
TLS, and SOCKS 4/4a/5/5h (RFC 1928, 1929) through the optional ``python-socks`` package.

Theory of operation
-------------------
A proxy gives the client a byte stream to the server; the WebSocket handshake, and TLS for
``wss://``, then run through it exactly as over a direct connection. For an HTTP proxy, a
`_Tunnel` protocol writes ``CONNECT host:port`` and reads the proxy's answer head; on a 2xx
it hands the transport to the TLS layer (``loop.start_tls``, TLS inside TLS for an
``https://`` proxy) or straight to the WebSocket connection (``transport.set_protocol``).
For SOCKS, python-socks returns a connected socket, and ``loop.create_connection(sock=...)``
goes on from there.

Which proxy: the ``proxy=`` argument of `connect`, or, by default, the environment, read as
curl, requests and httpx read it: ``https_proxy`` for ``wss://``, ``http_proxy`` for ``ws://``,
else ``all_proxy``, lowercase before uppercase, and no proxy for a host listed in
``no_proxy`` (``*``, a name that also covers its subdomains, an address or a network, with an
optional ``:port``). The standard library's `urllib.request.getproxies_environment` reads the
variables, including its refusal of ``HTTP_PROXY`` inside a CGI script (httpoxy).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import ssl as ssl_module
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from ...exceptions import InvalidResponse, ProxyError
from ...protocol.http11 import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADERS, parse_response

__all__ = ["ProxyURL", "parse_proxy_url", "proxy_from_environment", "open_through_proxy"]

P = TypeVar("P", bound=asyncio.BaseProtocol)

_DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "socks4": 1080,
    "socks4a": 1080,
    "socks5": 1080,
    "socks5h": 1080,
}
_SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")

# RFC 1928 §6 replies worth another try later: general failure, network or host unreachable,
# connection refused, TTL expired. SOCKS4 (91) does not say why; a retry cannot know either.
_TRANSIENT_SOCKS_REPLIES = frozenset({1, 3, 4, 5, 6})


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL: ``http://``, ``https://`` (TLS to the proxy), ``socks5://``,
    ``socks5h://`` (the proxy resolves the server's name), ``socks4://`` or ``socks4a://``.

    ``username`` and ``password`` come percent-decoded from the URL's user information.
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def is_socks(self) -> bool:
        """Whether this is a SOCKS proxy (else an HTTP one)."""
        return self.scheme in _SOCKS_SCHEMES

    @property
    def display(self) -> str:
        """The URL without its credentials, for messages and logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse a proxy URL; one without a scheme (``127.0.0.1:3128``) is an HTTP proxy, as for
    curl. The port defaults to 80 for http, 443 for https and 1080 for SOCKS.

    Raises:
        ValueError: the scheme is not one of http, https, socks4, socks4a, socks5, socks5h,
            or the URL has no host or a bad port.
    """
    parts = urlsplit(url if "://" in url else "http://" + url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"unsupported proxy URL {url!r}: the scheme must be http, https, socks5, "
            "socks5h, socks4 or socks4a"
        )
    if not parts.hostname:
        raise ValueError(f"proxy URL {url!r} has no host")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"proxy URL {url!r} has an invalid port") from None
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ProxyURL(scheme, parts.hostname, port, username, password)


def proxy_from_environment(host: str, port: int, *, secure: bool) -> str | None:
    """The proxy URL the environment names for a server, or None for a direct connection.

    Args:
        host: the server's host name or address.
        port: the server's port, which ``no_proxy`` entries with a port must match.
        secure: True for ``wss://`` (read ``https_proxy``), False for ``ws://``
            (``http_proxy``); ``all_proxy`` applies to both.
    """
    proxies = urllib.request.getproxies_environment()
    url = proxies.get("https" if secure else "http") or proxies.get("all")
    if not url or _bypasses(host, port, proxies.get("no", "")):
        return None
    return url


def _bypasses(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (``*``, or ``name``, ``.name``, ``address``, ``network/bits``,
    each with an optional ``:port``, comma-separated) exempts ``host:port``."""
    host = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.lower().replace(" ", "").split(","):
        if entry == "*":
            return True
        name, entry_port = entry, ""
        if entry.startswith("["):  # [v6]:port
            name, _, rest = entry[1:].partition("]")
            entry_port = rest.removeprefix(":")
        elif entry.count(":") == 1:  # name:port (a bare IPv6 address has more colons)
            name, _, entry_port = entry.partition(":")
        name = name.removeprefix("*").removeprefix(".").rstrip(".")
        if not name or (entry_port and entry_port != str(port)):
            continue
        if address is not None and "/" in name:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


async def open_through_proxy(
    proxy: ProxyURL,
    host: str,
    port: int,
    factory: Callable[[], P],
    *,
    ssl: ssl_module.SSLContext | None,
    server_hostname: str | None,
    proxy_ssl: ssl_module.SSLContext | None = None,
) -> P:
    """Connect to ``host:port`` through ``proxy``; return the protocol ``factory`` made,
    connected to the server (over TLS when ``ssl`` is given).

    Args:
        proxy: the proxy.
        host, port: the server, as the proxy should reach it.
        factory: makes the protocol that speaks to the server (the WebSocket connection).
        ssl: the TLS context for the server (``wss://``); None for ``ws://``.
        server_hostname: the name to check the server's certificate against.
        proxy_ssl: the TLS context for an ``https://`` proxy; the default context when None.

    Raises:
        ProxyError: the proxy could not be reached (``is_transient``), refused (``status``
            or ``socks_reply`` says why) or broke its protocol.
        OSError: TLS with the proxy or the server failed (`ssl.SSLError`).
        ImportError: a SOCKS proxy, without the ``socks`` extra installed.
    """
    loop = asyncio.get_running_loop()
    if proxy.is_socks:
        sock = await _socks_connect(proxy, host, port)
        try:
            _, protocol = await loop.create_connection(
                factory, sock=sock, ssl=ssl, server_hostname=server_hostname if ssl else None
            )
        except BaseException:
            sock.close()
            raise
        return protocol
    transport, tunnel = await _http_tunnel(proxy, host, port, proxy_ssl)
    try:
        if ssl is not None:
            tls_transport = await loop.start_tls(
                transport, tunnel, ssl, server_hostname=server_hostname
            )
            assert tls_transport is not None  # None only when the transport is closing
            transport = tls_transport
        protocol = factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
    except BaseException:
        transport.abort()
        raise
    return protocol


async def _http_tunnel(
    proxy: ProxyURL, host: str, port: int, proxy_ssl: ssl_module.SSLContext | None
) -> tuple[asyncio.Transport, _Tunnel]:
    loop = asyncio.get_running_loop()
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if proxy.username is not None:
        # RFC 9110 §11.7.2 and RFC 7617: Basic credentials, user-id ":" password, UTF-8.
        credentials = f"{proxy.username}:{proxy.password or ''}".encode()
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(credentials).decode()}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    tls: dict[str, Any] = {}
    if proxy.scheme == "https":
        tls = dict(ssl=proxy_ssl or ssl_module.create_default_context(), server_hostname=proxy.host)
    try:
        transport, tunnel = await loop.create_connection(
            lambda: _Tunnel(request, proxy.display), proxy.host, proxy.port, **tls
        )
    except ssl_module.SSLError:
        raise
    except OSError as exc:
        raise _unreachable(proxy, exc) from exc
    try:
        await tunnel.established
    except BaseException:
        transport.abort()
        raise
    return transport, tunnel


class _Tunnel(asyncio.Protocol):
    """Sends ``CONNECT`` and waits for the proxy's answer; `established` resolves on a 2xx."""

    def __init__(self, request: bytes, proxy: str) -> None:
        self.request = request
        self.proxy = proxy
        self.head = bytearray()
        self.established: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport: no isinstance check.
        cast(asyncio.WriteTransport, transport).write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.established.done():
            # The server spoke before the client's handshake: no WebSocket server does.
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > DEFAULT_MAX_HEADER_BYTES:
                self._fail(ProxyError(f"{self.proxy} sent an oversized answer", self.proxy))
            return
        # RFC 9110 §9.3.6: a 2xx answer to CONNECT has no content, whatever its headers say;
        # the bytes after the head already belong to the server, of which there are none
        # before the client speaks. Only the head matters, also in a refusal.
        try:
            parsed = parse_response(
                bytes(self.head[: end + 4]),
                max_header_bytes=DEFAULT_MAX_HEADER_BYTES,
                max_headers=DEFAULT_MAX_HEADERS,
                at_eof=True,
            )
        except InvalidResponse as exc:
            self._fail(ProxyError(f"{self.proxy} sent an invalid answer: {exc}", self.proxy))
            return
        assert parsed is not None  # at_eof: complete or an error
        response, _ = parsed
        status = response.status
        if 200 <= status < 300:
            self.established.set_result(None)
            return
        reason = f" {response.reason}" if response.reason else ""
        hint = " (check the user:password in the proxy URL)" if status == 407 else ""
        self._fail(
            ProxyError(
                f"proxy {self.proxy} refused the tunnel: HTTP {status}{reason}{hint}",
                self.proxy,
                status=status,
                # 502/503/504: the proxy could not reach the server, which may come back.
                is_transient=status >= 500 or status in (408, 429),
            )
        )

    def eof_received(self) -> bool | None:
        self._hung_up()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._hung_up()

    def _hung_up(self) -> None:
        if not self.established.done():
            self._fail(
                ProxyError(
                    f"proxy {self.proxy} closed the connection without opening the tunnel",
                    self.proxy,
                    is_transient=True,
                )
            )

    def _fail(self, error: ProxyError) -> None:
        if not self.established.done():
            self.established.set_exception(error)


async def _socks_connect(proxy: ProxyURL, host: str, port: int) -> socket.socket:
    try:
        from python_socks import ProxyConnectionError, ProxyType
        from python_socks import ProxyError as SocksError
        from python_socks.async_.asyncio import Proxy
    except ImportError as exc:
        raise ImportError(
            f"{proxy.display} is a SOCKS proxy, which needs the python-socks package: "
            "pip install 'fullduplex[socks]'"
        ) from exc
    version = ProxyType.SOCKS4 if proxy.scheme.startswith("socks4") else ProxyType.SOCKS5
    client = Proxy(
        version,
        proxy.host,
        proxy.port,
        username=proxy.username,
        password=proxy.password,
        # socks5h and socks4a: the proxy resolves the name (as curl reads these schemes).
        rdns=proxy.scheme in ("socks5h", "socks4a"),
        loop=asyncio.get_running_loop(),
    )
    try:
        # Under python-socks' own 60 s limit, connect's open_timeout bounds the whole opening.
        return await client.connect(host, port)
    except ProxyConnectionError as exc:
        raise _unreachable(proxy, exc) from exc
    except SocksError as exc:
        reply = exc.error_code
        raise ProxyError(
            f"proxy {proxy.display} refused the tunnel: {exc}",
            proxy.display,
            socks_reply=reply,
            is_transient=reply in _TRANSIENT_SOCKS_REPLIES,
        ) from exc


def _unreachable(proxy: ProxyURL, error: OSError) -> ProxyError:
    detail = error.strerror or str(error) or type(error).__name__
    return ProxyError(
        f"cannot connect to proxy {proxy.display}: {detail.lower()}",
        proxy.display,
        is_transient=True,
    )
