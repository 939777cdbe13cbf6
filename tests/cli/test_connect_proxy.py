"""`fullduplex connect --proxy URL`, --no-proxy and --proxy-cacert, in a subprocess, through real
proxies (pproxy), and the proxy the environment names."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ..conftest import TestCA
from ..io.proxy_servers import PROXY_PASSWORD, PROXY_USER, run_pproxy
from .support import fullduplex_server, run_cli

CREDENTIALS = f"{quote(PROXY_USER)}:{quote(PROXY_PASSWORD, safe='')}@"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_connect_goes_through_the_proxy_given(scheme: str) -> None:
    with run_pproxy("http+socks5") as proxy_port:
        async with fullduplex_server() as peer:
            proxy = f"{scheme}://{CREDENTIALS}127.0.0.1:{proxy_port}"
            result = await run_cli("connect", peer.url, "--proxy", proxy, "-n", "1", stdin=b"hi")
            await peer.closed.wait()
    assert (result.status, result.stderr) == (0, "")
    assert result.stdout == b"hi\n"
    assert peer.received == ["hi"]


async def test_connect_reports_a_proxy_refusal_with_its_status() -> None:
    with run_pproxy("http") as proxy_port:
        async with fullduplex_server() as peer:
            proxy = f"http://127.0.0.1:{proxy_port}"  # no credentials
            result = await run_cli("connect", peer.url, "--proxy", proxy, "-n", "1")
    assert result.status == 4
    assert "HTTP 407" in result.stderr
    assert result.stdout == b""


async def test_connect_speaks_tls_to_an_https_proxy_it_trusts(tls: TestCA) -> None:
    with run_pproxy("http+ssl", certificate=f"{tls.cert_pem},{tls.key_pem}") as proxy_port:
        async with fullduplex_server() as peer:
            proxy = f"https://{CREDENTIALS}127.0.0.1:{proxy_port}"
            args = ("connect", peer.url, "--proxy", proxy, "-n", "1")
            refused = await run_cli(*args, stdin=b"x")
            result = await run_cli(*args, "--proxy-cacert", str(tls.ca_pem), stdin=b"tls")
    assert refused.status == 5  # the proxy's certificate is not trusted without its CA
    assert (result.status, result.stderr) == (0, "")
    assert result.stdout == b"tls\n"


async def test_connect_takes_the_proxy_from_the_environment_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with run_pproxy("http") as dead_port:
        pass  # nothing listens there any more
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead_port}")
    async with fullduplex_server() as peer:
        through_environment = await run_cli("connect", peer.url, "-n", "1", stdin=b"x")
        direct = await run_cli("connect", peer.url, "--no-proxy", "-n", "1", stdin=b"direct")
    assert through_environment.status == 4
    assert f"cannot connect to proxy http://127.0.0.1:{dead_port}" in through_environment.stderr
    assert (direct.status, direct.stdout) == (0, b"direct\n")


async def test_connect_refuses_a_bad_proxy_url() -> None:
    result = await run_cli("connect", "ws://127.0.0.1:1/", "--proxy", "ftp://proxy.test")
    assert result.status == 2
    assert "unsupported proxy URL" in result.stderr
