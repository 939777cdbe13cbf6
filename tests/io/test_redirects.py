"""connect follows the handshake's redirects: every redirect status, relative and absolute
Locations, http(s) targets read as ws(s), a limit, and never from wss:// down to ws://."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator

import pytest

from fullduplex import (
    InvalidRedirect,
    InvalidStatus,
    Request,
    Response,
    ServerConnection,
    connect,
    serve,
)
from fullduplex.io.asyncio.server import RequestHook

from ..conftest import TestCA
from .peers import echo


def redirects(table: dict[str, tuple[int, str]]) -> RequestHook:
    """A `process_request` hook that answers the paths in ``table`` with (status, Location)."""

    def answer(ws: ServerConnection, request: Request) -> Response | None:
        if request.path in table:
            status, location = table[request.path]
            return Response(status, [("Location", location)] if location else [])
        return None

    return answer


async def path_echo(ws: ServerConnection) -> None:
    await ws.send(ws.request.path)
    await ws.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_client_follows_a_relative_redirect(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    hook = redirects({"/old/room": (status, "../new/room?x=1")})
    caplog.set_level(logging.INFO, logger="fullduplex")
    async with (
        serve(path_echo, "127.0.0.1", 0, process_request=hook) as server,
        connect(f"ws://127.0.0.1:{server.port}/old/room") as ws,
    ):
        assert await ws.recv() == "/new/room?x=1"
        port = server.port
    hops = [r.getMessage() for r in caplog.records if "redirected" in r.getMessage()]
    assert hops == [
        f"ws://127.0.0.1:{port}/old/room redirected to "
        f"ws://127.0.0.1:{port}/new/room?x=1 (HTTP {status})"
    ]


async def test_client_follows_a_chain_of_absolute_redirects_across_servers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fullduplex")
    async with serve(path_echo, "127.0.0.1", 0) as target:
        hook = redirects(
            {
                "/a": (302, "/b"),
                # An http:// Location means the ws:// URL at the same place.
                "/b": (307, f"http://127.0.0.1:{target.port}/c"),
            }
        )
        async with (
            serve(echo, "127.0.0.1", 0, process_request=hook) as front,
            connect(f"ws://127.0.0.1:{front.port}/a") as ws,
        ):
            assert ws.remote_address[1] == target.port
            assert await ws.recv() == "/c"
    assert len([r for r in caplog.records if "redirected" in r.getMessage()]) == 2


async def test_client_stops_after_max_redirects() -> None:
    hook = redirects({"/loop": (302, "/loop")})
    async with serve(echo, "127.0.0.1", 0, process_request=hook) as server:
        with pytest.raises(InvalidRedirect, match="max_redirects=3") as caught:
            await connect(f"ws://127.0.0.1:{server.port}/loop", max_redirects=3)
        assert caught.value.response.status == 302
        with pytest.raises(InvalidRedirect, match="max_redirects=0"):
            await connect(f"ws://127.0.0.1:{server.port}/loop", max_redirects=0)


async def test_client_follows_exactly_max_redirects() -> None:
    hook = redirects({"/1": (301, "/2"), "/2": (301, "/3")})
    async with (
        serve(path_echo, "127.0.0.1", 0, process_request=hook) as server,
        connect(f"ws://127.0.0.1:{server.port}/1", max_redirects=2) as ws,
    ):
        assert await ws.recv() == "/3"


@pytest.fixture
def server_tls(tls: TestCA) -> ssl.SSLContext:
    return tls.server_context


@pytest.fixture
def client_tls(tls: TestCA) -> ssl.SSLContext:
    return tls.client_context


async def test_client_refuses_a_redirect_from_wss_to_ws(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with serve(echo, "127.0.0.1", 0) as plain:
        plain_url = f"ws://127.0.0.1:{plain.port}/"
        hook = redirects({"/": (302, plain_url)})
        async with serve(echo, "127.0.0.1", 0, ssl=server_tls, process_request=hook) as secure:
            with pytest.raises(InvalidRedirect, match="refusing to drop TLS") as caught:
                await connect(f"wss://127.0.0.1:{secure.port}/", ssl=client_tls)
    assert caught.value.location == plain_url
    assert isinstance(caught.value, InvalidStatus)  # so handlers of refusals see it too


@pytest.fixture
def trust_for_default_contexts(tls: TestCA) -> Iterator[None]:
    """Make `ssl.create_default_context()` trust the test CA (OpenSSL reads SSL_CERT_FILE)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(tls.ca_pem))
        yield


@pytest.mark.usefixtures("trust_for_default_contexts")
async def test_client_follows_a_redirect_from_ws_to_wss(server_tls: ssl.SSLContext) -> None:
    async with serve(path_echo, "127.0.0.1", 0, ssl=server_tls) as secure:
        hook = redirects({"/": (308, f"https://127.0.0.1:{secure.port}/tls")})
        async with (
            serve(echo, "127.0.0.1", 0, process_request=hook) as plain,
            connect(f"ws://127.0.0.1:{plain.port}/") as ws,
        ):
            assert ws.transport is not None
            assert ws.transport.get_extra_info("ssl_object") is not None
            assert await ws.recv() == "/tls"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("", "without a Location"),
        ("ftp://127.0.0.1/", "not a WebSocket URL"),
        ("ws://127.0.0.1:99999/", "invalid redirect"),
    ],
)
async def test_client_refuses_an_unusable_redirect(location: str, message: str) -> None:
    hook = redirects({"/": (302, location)})
    async with serve(echo, "127.0.0.1", 0, process_request=hook) as server:
        with pytest.raises(InvalidRedirect, match=message):
            await connect(f"ws://127.0.0.1:{server.port}/")


@pytest.mark.parametrize("status", [300, 304, 305])
async def test_client_does_not_follow_other_3xx(status: int) -> None:
    hook = redirects({"/": (status, "/elsewhere")})
    async with serve(echo, "127.0.0.1", 0, process_request=hook) as server:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{server.port}/")
    assert not isinstance(caught.value, InvalidRedirect)
    assert caught.value.response.status == status


def test_negative_max_redirects_raises_value_error() -> None:
    with pytest.raises(ValueError, match="max_redirects"):
        connect("ws://127.0.0.1:1/", max_redirects=-1)


async def test_client_keeps_credentials_from_another_host() -> None:
    seen: list[dict[str, str]] = []

    async def headers(ws: ServerConnection) -> None:
        seen.append({name.lower(): value for name, value in ws.request.headers})
        await ws.close()

    credentials = [("Authorization", "Bearer t0ken"), ("Cookie", "id=1"), ("X-Trace", "7")]
    async with serve(headers, "127.0.0.1", 0) as target:
        same_host = redirects({"/": (302, f"ws://127.0.0.1:{target.port}/")})
        other_host = redirects({"/": (302, f"ws://localhost:{target.port}/")})
        for hook in (same_host, other_host):
            async with (
                serve(echo, "127.0.0.1", 0, process_request=hook) as front,
                connect(f"ws://127.0.0.1:{front.port}/", extra_headers=credentials) as ws,
            ):
                await ws.wait_closed()
    assert seen[0]["authorization"] == "Bearer t0ken" and seen[0]["cookie"] == "id=1"
    assert "authorization" not in seen[1] and "cookie" not in seen[1]
    assert seen[1]["x-trace"] == "7"
