"""connect through real proxies (pproxy, in a subprocess): HTTP CONNECT, over TCP and TLS, with
ws:// and wss:// behind it; SOCKS5, SOCKS5h and SOCKS4; credentials and refusals; the proxy
taken from the environment; and the parsing that decides which proxy applies."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest

from fullduplex import ProxyError, ServerConnection, connect, serve
from fullduplex.io.asyncio.proxy import (
    ProxyURL,
    _bypasses,
    parse_proxy_url,
    proxy_from_environment,
)

from ..conftest import TestCA
from .peers import echo
from .proxy_servers import PROXY_PASSWORD, PROXY_USER, run_pproxy

CREDENTIALS = f"{quote(PROXY_USER)}:{quote(PROXY_PASSWORD, safe='')}@"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the machine's environment leaks into a test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def server_tls(tls: TestCA) -> ssl.SSLContext:
    return tls.server_context


@pytest.fixture
def client_tls(tls: TestCA) -> ssl.SSLContext:
    return tls.client_context


@pytest.fixture
def proxy_certificate(tls: TestCA) -> str:
    """pproxy's ``--ssl CERT,KEY``: the proxy presents the suite's server certificate."""
    return f"{tls.cert_pem},{tls.key_pem}"


@pytest.fixture(scope="module")
def http_proxy() -> Iterator[int]:
    """An HTTP CONNECT and SOCKS4/SOCKS5 proxy that wants `PROXY_USER`'s credentials."""
    with run_pproxy("http+socks5") as port:
        yield port


# --- HTTP CONNECT --------------------------------------------------------------------------


async def test_client_connects_through_an_http_proxy_with_credentials(http_proxy: int) -> None:
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(
            f"ws://127.0.0.1:{server.port}/chat",
            proxy=f"http://{CREDENTIALS}127.0.0.1:{http_proxy}",
        ) as ws,
    ):
        # The socket goes to the proxy, which opened its own to the server.
        assert ws.remote_address[1] == http_proxy
        await ws.send("through CONNECT")
        assert await ws.recv() == "through CONNECT"


async def test_client_speaks_tls_to_the_server_inside_the_tunnel(
    http_proxy: int, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with (
        serve(echo, "127.0.0.1", 0, ssl=server_tls) as server,
        connect(
            f"wss://127.0.0.1:{server.port}/",
            ssl=client_tls,
            proxy=f"http://{CREDENTIALS}127.0.0.1:{http_proxy}",
        ) as ws,
    ):
        assert ws.transport is not None
        assert ws.transport.get_extra_info("ssl_object") is not None
        await ws.send("secret")
        assert await ws.recv() == "secret"


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_client_speaks_tls_to_an_https_proxy(
    scheme: str,
    proxy_certificate: str,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    secure = scheme == "wss"
    with run_pproxy("http+ssl", certificate=proxy_certificate) as proxy_port:
        async with (
            serve(echo, "127.0.0.1", 0, ssl=server_tls if secure else None) as server,
            connect(
                f"{scheme}://127.0.0.1:{server.port}/",
                ssl=client_tls if secure else None,
                proxy=f"https://{CREDENTIALS}127.0.0.1:{proxy_port}",
                proxy_ssl=client_tls,
            ) as ws,
        ):
            assert ws.remote_address[1] == proxy_port
            await ws.send(f"{scheme} through TLS to the proxy")
            assert await ws.recv() == f"{scheme} through TLS to the proxy"


async def test_client_refuses_an_https_proxy_it_does_not_trust(proxy_certificate: str) -> None:
    with run_pproxy("http+ssl", certificate=proxy_certificate) as proxy_port:
        async with serve(echo, "127.0.0.1", 0) as server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await connect(
                    f"ws://127.0.0.1:{server.port}/",
                    proxy=f"https://{CREDENTIALS}127.0.0.1:{proxy_port}",
                )


@pytest.mark.parametrize(
    "userinfo", ["", f"{PROXY_USER}:wrong@"], ids=["no credentials", "wrong password"]
)
async def test_http_proxy_refusal_raises_proxy_error_with_its_status(
    http_proxy: int, userinfo: str
) -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        with pytest.raises(ProxyError) as caught:
            await connect(
                f"ws://127.0.0.1:{server.port}/", proxy=f"http://{userinfo}127.0.0.1:{http_proxy}"
            )
    error = caught.value
    assert error.status == 407
    assert not error.is_transient
    assert error.proxy == f"http://127.0.0.1:{http_proxy}"
    assert "407" in str(error) and "wrong" not in str(error)


async def test_http_proxy_that_cannot_reach_the_server_raises_a_transient_proxy_error(
    http_proxy: int,
) -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.port
    with pytest.raises(ProxyError) as caught:
        await connect(
            f"ws://127.0.0.1:{port}/", proxy=f"http://{CREDENTIALS}127.0.0.1:{http_proxy}"
        )
    assert caught.value.is_transient


async def test_unreachable_proxy_raises_a_transient_proxy_error() -> None:
    with run_pproxy("http") as proxy_port:
        pass  # stopped: nothing listens there any more
    with pytest.raises(ProxyError, match="cannot connect to proxy") as caught:
        await connect("ws://127.0.0.1:1/", proxy=f"http://127.0.0.1:{proxy_port}")
    assert caught.value.is_transient
    assert isinstance(caught.value.__cause__, OSError)


# --- SOCKS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_client_connects_through_a_socks5_proxy_with_credentials(
    http_proxy: int, scheme: str
) -> None:
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(
            f"ws://127.0.0.1:{server.port}/",
            proxy=f"{scheme}://{CREDENTIALS}127.0.0.1:{http_proxy}",
        ) as ws,
    ):
        assert ws.remote_address[1] == http_proxy
        await ws.send(scheme)
        assert await ws.recv() == scheme


async def test_client_speaks_tls_to_the_server_through_socks5(
    http_proxy: int, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with (
        serve(echo, "127.0.0.1", 0, ssl=server_tls) as server,
        connect(
            f"wss://127.0.0.1:{server.port}/",
            ssl=client_tls,
            proxy=f"socks5://{CREDENTIALS}127.0.0.1:{http_proxy}",
        ) as ws,
    ):
        await ws.send("secret over socks")
        assert await ws.recv() == "secret over socks"


async def test_client_connects_through_a_socks4_proxy() -> None:
    with run_pproxy("socks4", auth=False) as proxy_port:
        async with (
            serve(echo, "127.0.0.1", 0) as server,
            connect(
                f"ws://127.0.0.1:{server.port}/", proxy=f"socks4://127.0.0.1:{proxy_port}"
            ) as ws,
        ):
            await ws.send("socks4")
            assert await ws.recv() == "socks4"


async def test_socks5_proxy_refusing_the_credentials_raises_proxy_error(http_proxy: int) -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        with pytest.raises(ProxyError, match="refused") as caught:
            await connect(
                f"ws://127.0.0.1:{server.port}/",
                proxy=f"socks5://{PROXY_USER}:wrong@127.0.0.1:{http_proxy}",
            )
    assert not caught.value.is_transient


# --- from the environment ------------------------------------------------------------------


async def test_client_takes_the_proxy_from_the_environment(
    http_proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://{CREDENTIALS}127.0.0.1:{http_proxy}")
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        assert ws.remote_address[1] == http_proxy
    # proxy=None, and a no_proxy entry, both connect directly.
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/", proxy=None) as ws,
    ):
        assert ws.remote_address[1] == server.port
    monkeypatch.setenv("no_proxy", "example.test, 127.0.0.1")
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        assert ws.remote_address[1] == server.port


async def test_client_takes_a_socks_proxy_from_all_proxy(
    http_proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", f"socks5h://{CREDENTIALS}127.0.0.1:{http_proxy}")
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        assert ws.remote_address[1] == http_proxy


def test_environment_picks_the_variable_for_the_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://plain.test:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure.test:3128")
    monkeypatch.setenv("ALL_PROXY", "socks5://any.test")
    assert proxy_from_environment("example.test", 80, secure=False) == "http://plain.test:3128"
    assert proxy_from_environment("example.test", 443, secure=True) == "http://secure.test:3128"
    monkeypatch.delenv("HTTPS_PROXY")
    assert proxy_from_environment("example.test", 443, secure=True) == "socks5://any.test"
    # Lowercase wins over uppercase, as for curl.
    monkeypatch.setenv("http_proxy", "http://lower.test:3128")
    assert proxy_from_environment("example.test", 80, secure=False) == "http://lower.test:3128"
    monkeypatch.setenv("NO_PROXY", "*")
    assert proxy_from_environment("example.test", 80, secure=False) is None


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("example.test", 80, "example.test", True),
        ("api.example.test", 80, "example.test", True),
        ("api.example.test", 80, ".example.test", True),
        ("api.example.test", 80, "*.example.test", True),
        ("badexample.test", 80, "example.test", False),
        ("example.test", 80, "example.test:8080", False),
        ("example.test", 8080, "other.test, example.test:8080", True),
        ("EXAMPLE.test", 80, "example.TEST", True),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("::1", 80, "::1", True),
        ("::1", 8080, "[::1]:8080", True),
        ("fd00::5", 80, "fd00::/8", True),
        ("example.test", 80, "", False),
        ("example.test", 80, "*", True),
    ],
)
def test_no_proxy_matches_as_curl_does(host: str, port: int, no_proxy: str, bypassed: bool) -> None:
    assert _bypasses(host, port, no_proxy) is bypassed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.test:3128", ProxyURL("http", "proxy.test", 3128)),
        ("proxy.test:3128", ProxyURL("http", "proxy.test", 3128)),
        ("http://proxy.test", ProxyURL("http", "proxy.test", 80)),
        ("https://proxy.test", ProxyURL("https", "proxy.test", 443)),
        ("SOCKS5h://[::1]", ProxyURL("socks5h", "::1", 1080)),
        ("socks5://u%40x:p%3Aw@proxy.test:1", ProxyURL("socks5", "proxy.test", 1, "u@x", "p:w")),
        ("http://user@proxy.test", ProxyURL("http", "proxy.test", 80, "user")),
    ],
)
def test_proxy_urls_are_parsed_with_their_credentials(url: str, expected: ProxyURL) -> None:
    assert parse_proxy_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://proxy.test", "http://", "http://proxy.test:99999"])
def test_invalid_proxy_urls_raise_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="proxy URL"):
        parse_proxy_url(url)


def test_proxy_urls_display_without_credentials() -> None:
    assert parse_proxy_url("http://u:p@[::1]:8080").display == "http://[::1]:8080"


def test_explicit_proxy_with_a_unix_socket_raises_value_error() -> None:
    with pytest.raises(ValueError, match="Unix socket"):
        connect("ws://localhost/", unix_path="/tmp/x.sock", proxy="http://127.0.0.1:1")


async def test_proxy_sees_the_server_handler_unchanged(http_proxy: int) -> None:
    """The handshake goes through the tunnel byte for byte: the server sees its own path."""
    paths: list[str] = []

    async def record(ws: ServerConnection) -> None:
        paths.append(ws.request.path)
        await ws.close()

    async with (
        serve(record, "127.0.0.1", 0) as server,
        connect(
            f"ws://127.0.0.1:{server.port}/room?id=7",
            proxy=f"http://{CREDENTIALS}127.0.0.1:{http_proxy}",
        ) as ws,
    ):
        await ws.wait_closed()
    assert paths == ["/room?id=7"]


# --- proxies that misbehave, and TLS failures inside the tunnel ------------------------------


@contextlib.asynccontextmanager
async def answering_proxy(answer: bytes) -> AsyncIterator[int]:
    """A TCP listener that reads a request head, writes ``answer`` and hangs up: a broken proxy."""

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(respond, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "invalid answer"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"x" * 70_000, "oversized answer"),
        (b"", "closed the connection without opening the tunnel"),
    ],
    ids=["not HTTP", "endless head", "hang-up"],
)
async def test_broken_http_proxy_raises_proxy_error(answer: bytes, message: str) -> None:
    async with answering_proxy(answer) as proxy_port:
        with pytest.raises(ProxyError, match=message):
            await connect("ws://127.0.0.1:1/", proxy=f"http://127.0.0.1:{proxy_port}")


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_client_checks_the_server_certificate_inside_the_tunnel(
    http_proxy: int, server_tls: ssl.SSLContext, scheme: str
) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_tls) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(
                f"wss://127.0.0.1:{server.port}/",  # the system's CAs only
                proxy=f"{scheme}://{CREDENTIALS}127.0.0.1:{http_proxy}",
            )


async def test_unreachable_socks_proxy_raises_a_transient_proxy_error() -> None:
    with run_pproxy("socks5") as proxy_port:
        pass  # stopped: nothing listens there any more
    with pytest.raises(ProxyError, match="cannot connect to proxy") as caught:
        await connect("ws://127.0.0.1:1/", proxy=f"socks5://127.0.0.1:{proxy_port}")
    assert caught.value.is_transient


async def test_socks_proxy_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "python_socks", None)  # as if not installed
    with pytest.raises(ImportError, match=r"fullduplex\[socks\]"):
        await connect("ws://127.0.0.1:1/", proxy="socks5://127.0.0.1:1")
