"""`fullduplex connect` in scripted mode, in a subprocess, against fullduplex's server and the
websockets library's: what goes through, byte for byte, and how it exits."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
from typing import Any

import pytest

from ..conftest import TestCA
from .conftest import ServerFactory, SilentListener
from .support import (
    TIMEOUT_S,
    Peer,
    fullduplex_server,
    run_cli,
    started_cli,
    websockets_server,
)

LINES = 'hello\nwörld ☃ 🎉\n\n{"order": 42}\n   spaced   \nlast without newline'


async def test_connect_sends_each_line_and_prints_each_reply_byte_for_byte(
    server: ServerFactory,
) -> None:
    async with server() as peer:
        result = await run_cli("connect", peer.url, "-n", "6", stdin=LINES.encode())
        await peer.closed.wait()
    assert (result.status, result.stderr) == (0, "")
    assert result.stdout == (LINES + "\n").encode()
    assert peer.received == LINES.split("\n")
    assert peer.closes == [(1000, "")]


async def test_connect_closes_once_input_ends_and_the_replies_stop(server: ServerFactory) -> None:
    async with server() as peer:
        result = await run_cli("connect", peer.url, "--linger", "0.5", stdin=b"one\ntwo\n")
        await peer.closed.wait()
    assert (result.status, result.stdout, result.stderr) == (0, b"one\ntwo\n", "")
    assert peer.closes == [(1000, "")]


def send_then_close(messages: list[str | bytes], code: int, reason: str = "") -> Any:
    async def behaviour(ws: Any, peer: Peer) -> None:
        for message in messages:
            await ws.send(message)
        await ws.close(code, reason)

    return behaviour


async def test_connect_writes_binary_messages_as_hex_or_base64(server: ServerFactory) -> None:
    data = b"\x00\xffbinary\x80"
    async with server(send_then_close([data, "text"], 1000)) as peer:
        as_hex = await run_cli("connect", peer.url, stdin=b"")
        as_base64 = await run_cli("connect", peer.url, "--binary-as", "base64", stdin=b"")
    assert as_hex.stdout == data.hex().encode() + b"\ntext\n"
    assert as_base64.stdout == base64.b64encode(data) + b"\ntext\n"
    assert as_hex.status == as_base64.status == 0


async def test_connect_pretty_prints_json_and_adds_timestamps(server: ServerFactory) -> None:
    messages: list[str | bytes] = ['{"id":"#1042","status":"已发货"}', "not json", "[1,2]"]
    async with server(send_then_close(messages, 1000)) as peer:
        result = await run_cli("connect", peer.url, "--json", "--timestamps", stdin=b"")
    assert result.status == 0, result.stderr
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
    text = result.stdout.decode()
    assert re.fullmatch(
        f'{stamp} {{\n  "id": "#1042",\n  "status": "已发货"\n}}\n'
        f"{stamp} not json\n"
        f"{stamp} \\[\n  1,\n  2\n\\]\n",
        text,
    ), text


async def test_connect_sends_headers_subprotocols_and_origin(server: ServerFactory) -> None:
    async def report(ws: Any, peer: Peer) -> None:
        await ws.send(f"subprotocol={ws.subprotocol}")

    async with server(report, subprotocols=["chat.v2", "chat.v3"]) as peer:
        result = await run_cli(
            "connect",
            peer.url,
            "--once",
            "-H",
            "Authorization: Bearer s3cret",
            "--header",
            "X-Trace:  abc ",
            "--subprotocol",
            "chat.v2",
            "--subprotocol",
            "chat.v1",
            "--origin",
            "https://app.example",
            "--no-compression",
        )
    assert (result.status, result.stdout) == (0, b"subprotocol=chat.v2\n"), result.stderr
    headers = peer.request_headers[0]
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["x-trace"] == "abc"
    assert headers["origin"] == "https://app.example"
    assert headers["sec-websocket-protocol"] == "chat.v2, chat.v1"
    assert "sec-websocket-extensions" not in headers
    assert peer.subprotocols == ["chat.v2"]


async def test_connect_offers_compression_by_default(server: ServerFactory) -> None:
    async with server() as peer:
        await run_cli("connect", peer.url, "--once", stdin=b"x\n")
    assert "permessage-deflate" in peer.request_headers[0]["sec-websocket-extensions"]


# --- exit statuses -----------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001])
async def test_connect_exits_0_when_the_server_closes_normally(
    server: ServerFactory, code: int
) -> None:
    async with server(send_then_close(["bye"], code)) as peer:
        result = await run_cli("connect", peer.url, "--linger", "inf")
    assert (result.status, result.stdout, result.stderr) == (0, b"bye\n", "")


async def test_connect_exits_1_with_the_close_code_and_reason(server: ServerFactory) -> None:
    async with server(send_then_close([], 4000, "maintenance")) as peer:
        result = await run_cli("connect", peer.url, "--linger", "inf")
    assert result.status == 1
    assert result.stderr == "fullduplex connect: closed with 4000 'maintenance'\n"


async def test_connect_exits_1_when_the_connection_drops_without_closing() -> None:
    async def vanish(ws: Any, peer: Peer) -> None:
        ws.transport.abort()

    async with fullduplex_server(vanish) as peer:
        result = await run_cli("connect", peer.url, "--linger", "inf")
    assert result.status == 1
    assert "without a closing handshake (1006)" in result.stderr


async def test_connect_exits_1_when_a_message_exceeds_max_size(server: ServerFactory) -> None:
    async with server(send_then_close(["x" * 2048], 1000)) as peer:
        result = await run_cli("connect", peer.url, "--max-size", "1K", "--linger", "inf")
        await peer.closed.wait()
    assert result.status == 1
    assert "1009" in result.stderr
    assert peer.closes[0][0] == 1009


async def test_connect_exits_1_when_closed_before_the_expected_replies(
    server: ServerFactory,
) -> None:
    async with server(send_then_close(["only one"], 1000)) as peer:
        result = await run_cli("connect", peer.url, "-n", "2")
    assert (result.status, result.stdout) == (1, b"only one\n")
    assert "after 1 of 2 messages" in result.stderr


async def test_connect_exits_3_with_the_status_of_a_refused_handshake() -> None:
    async with websockets_server(origins=["https://allowed.example"]) as peer:
        result = await run_cli("connect", peer.url, "--origin", "https://evil.example")
    assert result.status == 3
    assert result.stderr == "fullduplex connect: handshake refused: HTTP 403 Forbidden\n"


async def test_connect_exits_3_when_a_plain_http_server_answers() -> None:
    def not_found(connection: Any, request: Any) -> Any:
        import fullduplex

        return fullduplex.Response(404, [("Content-Type", "text/plain")], b"nothing here\n")

    async with fullduplex_server(process_request=not_found) as peer:
        result = await run_cli("connect", peer.url + "missing")
    assert result.status == 3
    assert "HTTP 404 Not Found" in result.stderr


async def test_connect_exits_4_when_the_connection_is_refused(free_port: int) -> None:
    result = await run_cli("connect", f"ws://127.0.0.1:{free_port}/")
    assert result.status == 4
    assert result.stderr == (
        f"fullduplex connect: cannot connect to 127.0.0.1:{free_port}: connection refused\n"
    )


async def test_connect_exits_6_when_the_handshake_times_out(
    silent_listener: SilentListener,
) -> None:
    url = f"ws://127.0.0.1:{silent_listener.port}/"
    result = await run_cli("connect", url, "--timeout", "0.5")
    assert result.status == 6
    assert result.stderr == f"fullduplex connect: timed out after 0.5 s opening {url}\n"


async def test_connect_exits_6_when_the_replies_take_too_long(server: ServerFactory) -> None:
    async def one_then_silence(ws: Any, peer: Peer) -> None:
        await ws.send("first")
        await ws.wait_closed()  # silent until the client gives up and leaves

    async with server(one_then_silence) as peer:
        result = await run_cli("connect", peer.url, "-n", "2", "--timeout", "0.5")
    assert (result.status, result.stdout) == (6, b"first\n")
    assert "waiting for 2 messages (1 arrived)" in result.stderr


async def test_connect_exits_130_on_sigint_after_closing_with_1000(server: ServerFactory) -> None:
    async def greet(ws: Any, peer: Peer) -> None:
        await ws.send("ready")
        await ws.recv()

    async with server(greet) as peer, started_cli("connect", peer.url) as process:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"  # the client is open
        process.send_signal(signal.SIGINT)
        status = await asyncio.wait_for(process.wait(), 10)
        await peer.closed.wait()
    assert status == 130
    assert peer.closes == [(1000, "")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://127.0.0.1/"], "scheme must be ws or wss"),
        (["ws://127.0.0.1/", "-H", "no colon"], "write it as 'Name: value'"),
        (["ws://127.0.0.1/", "--max-size", "lots"], "is not a size"),
        (["ws://127.0.0.1/", "-n", "0"], "is not a positive integer"),
        (["ws://127.0.0.1/", "--cacert", "ca.pem"], "--cacert and --insecure need a wss:// URL"),
        (["wss://127.0.0.1/", "--cacert", "/nonexistent.pem"], "cannot load --cacert"),
    ],
)
async def test_connect_exits_2_on_bad_arguments(args: list[str], message: str) -> None:
    result = await run_cli("connect", *args)
    assert result.status == 2
    assert message in result.stderr


async def test_connect_exits_2_on_input_that_is_not_utf8(server: ServerFactory) -> None:
    async with server() as peer:
        result = await run_cli("connect", peer.url, "-n", "1", stdin=b"fine\n\xff\xfe\n")
    assert result.status == 2
    assert "line 2 of the input is not UTF-8 text" in result.stderr


async def test_connect_accepts_http_urls_and_bare_hosts(server: ServerFactory) -> None:
    async with server() as peer:
        port = peer.url.rsplit(":", 1)[1].rstrip("/")
        for url in (f"http://127.0.0.1:{port}/", f"127.0.0.1:{port}"):
            result = await run_cli("connect", url, "--once", stdin=b"hi\n")
            assert (result.status, result.stdout) == (0, b"hi\n"), result.stderr


# --- wss:// ------------------------------------------------------------------------------


async def test_connect_over_tls_trusts_the_ca_given_with_cacert(
    server: ServerFactory, tls: TestCA
) -> None:
    async with server(ssl=tls.server_context) as peer:
        assert peer.url.startswith("wss://")
        result = await run_cli(
            "connect", peer.url, "--cacert", str(tls.ca_pem), "--once", stdin=b"secret\n"
        )
    assert (result.status, result.stdout, result.stderr) == (0, b"secret\n", "")


async def test_connect_over_tls_exits_5_on_an_untrusted_certificate(
    server: ServerFactory, tls: TestCA
) -> None:
    async with server(ssl=tls.server_context) as peer:
        result = await run_cli("connect", peer.url, "--once", stdin=b"secret\n")
    assert result.status == 5
    assert result.stderr.startswith("fullduplex connect: TLS error: ")
    assert "certificate" in result.stderr and "--cacert" in result.stderr
    assert result.stdout == b""


async def test_connect_over_tls_with_insecure_skips_verification(
    server: ServerFactory, tls: TestCA
) -> None:
    async with server(ssl=tls.server_context) as peer:
        result = await run_cli("connect", peer.url, "--insecure", "--once", stdin=b"hi\n")
    assert (result.status, result.stdout) == (0, b"hi\n"), result.stderr


def test_exit_statuses_are_documented_in_the_help() -> None:
    import subprocess
    import sys

    help_text = subprocess.run(
        [sys.executable, "-m", "fullduplex", "connect", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    ).stdout
    for status in ("0", "1", "2", "3", "4", "5", "6", "130"):
        assert re.search(rf"^  {status} +\S", help_text, re.MULTILINE), status


def test_json_option_leaves_non_json_text_alone() -> None:
    from argparse import Namespace

    from fullduplex.cli.connect import render

    args = Namespace(json=True, binary_as="hex")
    assert render("{not json", args) == "{not json"
    assert json.loads(render('{"a": 1}', args)) == {"a": 1}
    assert render(b"\x01", args) == "01"


async def test_connect_exits_130_on_sigint_during_the_handshake(
    silent_listener: SilentListener,
) -> None:
    async with started_cli("connect", f"ws://127.0.0.1:{silent_listener.port}/") as process:
        # The upgrade request arrived: the command runs, and its handshake hangs.
        await asyncio.wait_for(silent_listener.request_arrived.wait(), TIMEOUT_S)
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 5) == 130
