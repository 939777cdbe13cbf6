"""Options: one object with the defaults that serve, connect and sync.connect share, and
its fields as keyword arguments that override it."""

from __future__ import annotations

import dataclasses

import pytest

import fullduplex
from fullduplex import ConnectionClosedError, Options, ServerConnection, connect, serve
from fullduplex.protocol.connection import DEFAULT_MAX_MESSAGE_SIZE

from .peers import echo


def test_options_hold_the_documented_defaults() -> None:
    options = Options()
    assert (options.open_timeout, options.close_timeout) == (10, 10)
    assert (options.ping_interval, options.ping_timeout) == (20, 20)
    assert options.max_size == DEFAULT_MAX_MESSAGE_SIZE
    assert (options.max_queue, options.write_limit, options.compression) == (32, 65536, "deflate")
    assert options.compression_threshold == 1024


def test_options_refuse_an_unknown_compression() -> None:
    with pytest.raises(ValueError, match="unsupported compression"):
        Options(compression="gzip")  # type: ignore[arg-type]


def test_options_refuse_a_negative_compression_threshold() -> None:
    with pytest.raises(ValueError, match="compression_threshold must be 0 or more"):
        Options(compression_threshold=-1)


async def test_server_and_client_negotiate_with_their_compression_thresholds() -> None:
    async with (
        serve(echo, "127.0.0.1", 0, compression_threshold=0) as server,
        connect(f"ws://127.0.0.1:{server.port}/", compression_threshold=4096) as ws,
    ):
        await ws.send("ready")
        assert await ws.recv() == "ready"
        [connection] = server.connections
        assert connection.protocol.extensions[0].compression_threshold == 0  # type: ignore[attr-defined]
        assert ws.protocol.extensions[0].compression_threshold == 4096  # type: ignore[attr-defined]


def test_options_updated_applies_overrides_and_keeps_the_rest() -> None:
    base = Options(close_timeout=3)
    assert base.updated({}) is base
    updated = base.updated({"max_size": 10})
    assert (updated.max_size, updated.close_timeout) == (10, 3)
    with pytest.raises(TypeError):
        base.updated({"max_sise": 10})  # type: ignore[typeddict-unknown-key]


def test_serve_and_connect_refuse_an_unknown_keyword() -> None:
    with pytest.raises(TypeError):
        serve(echo, "127.0.0.1", 0, max_sise=10)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        connect("ws://127.0.0.1:1/", max_sise=10)  # type: ignore[call-arg]


async def test_server_and_client_run_with_one_options_object() -> None:
    options = Options(max_size=8, compression=None, ping_interval=None)
    seen: list[Options] = []

    async def report(ws: ServerConnection) -> None:
        seen.append(ws.options)
        await echo(ws)

    async with (
        serve(report, "127.0.0.1", 0, options=options) as server,
        connect(f"ws://127.0.0.1:{server.port}/", options=options) as ws,
    ):
        assert ws.options is options
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        await ws.send("12345678")
        assert await ws.recv() == "12345678"
        await ws.send("123456789")  # one byte over the server's max_size
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
        assert caught.value.code == 1009
    assert seen == [options]


async def test_keyword_arguments_override_the_options_object() -> None:
    options = Options(max_size=8)
    async with (
        serve(echo, "127.0.0.1", 0, options=options, max_size=100) as server,
        connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws,
    ):
        assert ws.options == dataclasses.replace(Options(), compression=None)
        await ws.send("x" * 100)
        assert await ws.recv() == "x" * 100


def test_sync_connect_takes_the_same_options() -> None:
    with pytest.raises(TypeError):
        fullduplex.sync.connect("ws://127.0.0.1:1/", max_sise=1)  # type: ignore[arg-type]
