"""`fullduplex bench` in a subprocess against echo servers, and its arithmetic."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

import pytest

from fullduplex.cli.bench import Results, percentile

from .conftest import ServerFactory
from .support import CLI, Peer, run_cli


async def test_bench_reports_rates_and_latency_percentiles_as_json(server: ServerFactory) -> None:
    async with server() as peer:
        args = ["-c", "3", "-s", "1K", "-p", "4", "-d", "1", "--json"]
        result = await run_cli("bench", peer.url, *args)
    assert result.status == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["connections"], report["pipeline"], report["message_bytes"]) == (3, 4, 1024)
    assert report["sent"] == report["received"] > 0
    assert report["unexpected"] == 0
    assert report["messages_per_s"] > 0
    assert report["bytes_per_s"] == pytest.approx(report["messages_per_s"] * 1024, rel=0.01)
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"]
    assert latency["p99.9"] <= latency["max"]
    assert len(peer.received) == report["received"]
    assert all(len(message) == 1024 for message in peer.received)


async def test_bench_prints_a_summary_for_people(server: ServerFactory) -> None:
    async with server() as peer:
        result = await run_cli("bench", peer.url, "-c", "2", "-d", "0.5", "--text", "-s", "10")
    assert result.status == 0, result.stderr
    text = result.stdout.decode()
    assert "2 connections, pipeline 1, 10-byte text messages" in text
    assert "msg/s" in text and "p50" in text and "p99" in text
    assert all(isinstance(message, str) for message in {*peer.received})


async def test_bench_fails_against_an_endpoint_that_does_not_echo() -> None:
    from .support import fullduplex_server

    async def swallow(ws: Any, peer: Peer) -> None:
        async for _ in ws:
            pass

    async with fullduplex_server(swallow) as peer:
        result = await run_cli("bench", peer.url, "-c", "1", "-d", "0.3")
    assert result.status == 1
    assert "no replies: is the URL an echo endpoint?" in result.stderr


async def test_bench_exits_4_when_it_cannot_connect(free_port: int) -> None:
    result = await run_cli("bench", f"ws://127.0.0.1:{free_port}/", "-d", "0.2")
    assert result.status == 4
    assert "connection refused" in result.stderr


async def test_bench_draws_a_progress_bar_on_a_terminal(server: ServerFactory) -> None:
    async with server() as peer:
        master, slave = os.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                *CLI,
                "bench",
                peer.url,
                "-c",
                "1",
                "-d",
                "1",
                stdout=subprocess.PIPE,
                stderr=slave,
            )
            stdout, _ = await asyncio.wait_for(process.communicate(), 20)
            os.close(slave)
            slave = -1
            progress = b""
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                progress += chunk
        finally:
            os.close(master)
            if slave != -1:
                os.close(slave)
    assert process.returncode == 0
    assert b"\r[" in progress and b"msg/s" in progress
    assert progress.endswith(b"\r\x1b[K")  # the bar is erased before the results
    assert b"[" not in stdout.split(b"\n")[0]


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(value) for value in range(1, 101)]
    assert percentile(ordered, 50) == 50
    assert percentile(ordered, 99) == 99
    assert percentile(ordered, 99.9) == 100
    assert percentile([7.0], 50) == 7.0
    results = Results(received=4, elapsed_s=2.0)
    assert results.rate == 2.0


def test_bench_help_names_every_option() -> None:
    help_text = subprocess.run(
        [*CLI, "bench", "--help"], capture_output=True, text=True, check=True, timeout=20
    ).stdout
    for option in ("--connections", "--size", "--duration", "--pipeline", "--text", "--json"):
        assert option in help_text
