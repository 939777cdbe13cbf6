"""WebSocketConnection: what both roles share (receiving, sending, pings, closing,
backpressure), over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest

from fullduplex import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ServerConnection,
    State,
    connect,
    serve,
)

from .peers import CONTINUATION, PING, PONG, TEXT, Holder, RawPeer, ws_pair

# --- receiving -------------------------------------------------------------------------------


async def test_recv_returns_str_for_text_and_bytes_for_binary() -> None:
    async with ws_pair() as (server, client):
        await client.send("café")
        await client.send(b"\x00\xff")
        await client.send(bytearray(b"ba"))
        await client.send(memoryview(b"mv"))
        assert await server.recv() == "café"
        assert await server.recv() == b"\x00\xff"
        assert await server.recv() == b"ba"
        assert await server.recv() == b"mv"


async def test_async_for_ends_after_a_normal_close() -> None:
    async with ws_pair() as (server, client):
        await client.send("one")
        await client.send("two")
        await client.close()
        assert [message async for message in server] == ["one", "two"]


async def test_async_for_raises_after_an_error_close() -> None:
    async with ws_pair() as (server, client):
        await client.send("one")
        await client.close(1011, "oops")
        received = []
        with pytest.raises(ConnectionClosedError) as caught:
            async for message in server:
                received.append(message)
        assert received == ["one"]
        assert (caught.value.code, caught.value.reason) == (1011, "oops")


async def test_recv_delivers_messages_received_before_the_close() -> None:
    async with ws_pair() as (server, client):
        for index in range(5):
            await server.send(f"m{index}")
        await server.close()
        await client.wait_closed()
        assert [await client.recv() for _ in range(5)] == [f"m{index}" for index in range(5)]
        with pytest.raises(ConnectionClosedOK):
            await client.recv()


async def test_concurrent_recv_raises_runtime_error() -> None:
    async with ws_pair() as (server, _client):
        first = asyncio.create_task(server.recv())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already receiving"):
            await server.recv()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_cancelled_recv_loses_no_message() -> None:
    async with ws_pair() as (server, client):
        waiting = asyncio.create_task(server.recv())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await client.send("after")
        assert await server.recv() == "after"


async def test_recv_wakes_with_connection_closed_when_the_peer_goes_away() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0, compression=None) as server:
        peer = await RawPeer.connected(server.port)
        ws = await hold.next()
        waiting = asyncio.create_task(ws.recv())
        await asyncio.sleep(0)  # one loop turn: the task runs until it waits for a message
        assert not waiting.done()
        peer.writer.transport.abort()
        with pytest.raises(ConnectionClosedError) as caught:
            await waiting
        assert caught.value.code == 1006
        assert ws.close_code == 1006
        await peer.close()


# --- sending ---------------------------------------------------------------------------------


async def test_send_fragments_from_an_iterable_as_one_message() -> None:
    async with ws_pair() as (server, client):
        await client.send(["frag", "ment", "ed"])
        await client.send([b"a", bytearray(b"b"), memoryview(b"c")])
        await client.send(iter(["single"]))
        assert await server.recv() == "fragmented"
        assert await server.recv() == b"abc"
        assert await server.recv() == "single"


async def test_send_fragments_from_an_async_iterable_as_one_message() -> None:
    async def fragments() -> AsyncIterator[str]:
        for part in ("as", "ync"):
            await asyncio.sleep(0)
            yield part

    async with ws_pair() as (server, client):
        await client.send(fragments())
        assert await server.recv() == "async"


async def test_send_fragments_one_frame_per_item_on_the_wire() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(["a", "b", "c"])
        await ws.send([])  # nothing at all
        await ws.send("whole")
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        peer = await RawPeer.connected(server.port)
        frames = [await peer.read_frame() for _ in range(4)]
        assert [(f.opcode, f.payload, f.fin) for f in frames] == [
            (TEXT, b"a", False),
            (CONTINUATION, b"b", False),
            (CONTINUATION, b"c", True),
            (TEXT, b"whole", True),
        ]
        peer.send_close()
        assert (await peer.read_close()).close_code == 1000
        await peer.close()


async def test_send_waits_for_a_fragmented_message_in_progress() -> None:
    release = asyncio.Event()

    sending = asyncio.Event()

    async def slow_fragments() -> AsyncIterator[str]:
        yield "first "
        sending.set()  # asked for the next fragment: the send is under way
        await release.wait()
        yield "message"

    async with ws_pair() as (server, client):
        fragmented = asyncio.create_task(client.send(slow_fragments()))
        await sending.wait()
        whole = asyncio.create_task(client.send("second message"))
        await asyncio.sleep(0)  # one loop turn: the second send runs until it waits
        assert not whole.done()
        release.set()
        await asyncio.gather(fragmented, whole)
        assert await server.recv() == "first message"
        assert await server.recv() == "second message"


async def test_send_refuses_fragments_that_mix_text_and_binary() -> None:
    async with ws_pair() as (server, client):
        # Nothing went out yet (a fragment is sent once the next one is known): no harm done.
        with pytest.raises(TypeError, match="mixes"):
            await client.send(["text", b"bytes"])
        await client.send("still open")
        assert await server.recv() == "still open"
        # Here "a" went out: the message can't be finished, so the connection fails.
        with pytest.raises(TypeError, match="mixes"):
            await client.send(["a", "b", b"c"])
        with pytest.raises(ConnectionClosedError) as caught:
            await server.recv()
        assert caught.value.code == 1011
        with pytest.raises(ConnectionClosed):
            await client.send("more")


async def test_send_fails_the_connection_when_a_fragment_source_raises() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"
        raise OSError("disk on fire")

    async with ws_pair() as (server, client):
        with pytest.raises(OSError, match="disk on fire"):
            await client.send(broken())
        with pytest.raises(ConnectionClosedError) as caught:
            await server.recv()
        assert caught.value.code == 1011


async def test_send_refuses_bad_types_without_harming_the_connection() -> None:
    async with ws_pair() as (server, client):
        with pytest.raises(TypeError, match="mapping"):
            await client.send({"type": "hello"})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await client.send(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await client.send([1, 2])  # type: ignore[list-item]
        await client.send("still open")
        assert await server.recv() == "still open"


async def test_send_copies_a_buffer_the_caller_may_reuse() -> None:
    # send() returns while the transport still holds the unwritten payload, which Python 3.12+
    # keeps by reference: reusing the bytearray must not change what goes out.
    reused = bytearray(b"A" * 200_000)

    async def handler(ws: ServerConnection) -> None:
        _shrink(ws, socket.SO_SNDBUF)
        await ws.send(reused)
        view = memoryview(reused)
        await ws.send([view[:100_000], view[100_000:]])
        view.release()
        reused[:] = b"B" * len(reused)
        await ws.wait_closed()

    options = dict(compression=None, write_limit=1_000_000)
    async with (
        serve(handler, "127.0.0.1", 0, **options) as server,
        connect(f"ws://127.0.0.1:{server.port}/", compression=None) as client,
    ):
        assert await client.recv() == b"A" * 200_000
        assert await client.recv() == b"A" * 200_000


async def test_send_after_close_raises_connection_closed() -> None:
    async with ws_pair() as (server, client):
        await client.close()
        with pytest.raises(ConnectionClosedOK) as caught:
            await client.send("late")
        assert caught.value.code == 1000
        with pytest.raises(ConnectionClosedOK):
            await server.send(b"late")
        with pytest.raises(ConnectionClosedOK):
            await client.send(["late", "fragments"])


# --- pings -----------------------------------------------------------------------------------


async def test_ping_resolves_with_the_latency_when_the_pong_arrives() -> None:
    async with ws_pair() as (_server, client):
        latency = await client.ping()
        assert 0 <= latency < 1
        assert await client.ping("custom") >= 0
        assert await client.ping(b"") >= 0


async def test_ping_refuses_a_payload_already_waiting_for_its_pong() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0) as server:
        peer = await RawPeer.connected(server.port)
        ws = await hold.next()
        first = asyncio.create_task(ws.ping(b"same"))
        await asyncio.sleep(0)
        with pytest.raises(ValueError, match="already waiting"):
            await ws.ping(b"same")
        with pytest.raises(ValueError, match="125"):
            await ws.ping(b"x" * 126)
        frame = await peer.read_frame()
        assert (frame.opcode, frame.payload) == (PING, b"same")
        peer.send_frame(PONG, b"same")
        assert await first >= 0
        await peer.close()


async def test_cancelled_ping_frees_its_payload() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0) as server:
        peer = await RawPeer.connected(server.port)
        ws = await hold.next()
        waiting = asyncio.create_task(ws.ping(b"again"))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        retry = asyncio.create_task(ws.ping(b"again"))
        await asyncio.sleep(0)
        peer.send_frame(PONG, b"again")
        assert await retry >= 0
        await peer.close()


async def test_ping_raises_connection_closed_when_the_connection_closes_first() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0) as server:
        peer = await RawPeer.connected(server.port)
        ws = await hold.next()
        waiting = asyncio.create_task(ws.ping())
        await asyncio.sleep(0)  # one loop turn: the task sends its ping and waits for the pong
        assert not waiting.done()
        peer.writer.transport.abort()
        with pytest.raises(ConnectionClosedError):
            await waiting
        with pytest.raises(ConnectionClosedError):
            await ws.ping()
        await peer.close()


async def test_pong_sends_an_unsolicited_pong() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0) as server:
        peer = await RawPeer.connected(server.port)
        ws = await hold.next()
        await ws.pong("heartbeat")
        frame = await peer.read_frame()
        assert (frame.opcode, frame.payload) == (PONG, b"heartbeat")
        peer.send_close()
        await ws.wait_closed()
        with pytest.raises(ConnectionClosed):
            await ws.pong()
        await peer.close()


# --- closing ---------------------------------------------------------------------------------


async def test_close_sends_code_and_reason_and_both_ends_report_them() -> None:
    async with ws_pair() as (server, client):
        assert client.close_code is None
        await client.close(4000, "bye now")
        await server.wait_closed()
        assert (server.close_code, server.close_reason) == (4000, "bye now")
        assert client.close_code == 4000  # the server echoed it (RFC 6455 §5.5.1)
        assert client.state is State.CLOSED and server.state is State.CLOSED


async def test_close_is_idempotent() -> None:
    async with ws_pair() as (_server, client):
        await asyncio.gather(client.close(), client.close())
        await client.close(1001)
        assert client.close_code == 1000


async def test_close_refuses_an_invalid_code_without_closing() -> None:
    async with ws_pair() as (server, client):
        with pytest.raises(ValueError):
            await client.close(1005, "no status may not be sent")
        with pytest.raises(ValueError):
            await client.close(1000, "x" * 124)
        with pytest.raises(ValueError):
            client.fail(999)
        await client.send("still open")
        assert await server.recv() == "still open"


async def test_close_gives_up_after_close_timeout_when_the_peer_never_answers() -> None:
    hold = Holder()
    async with serve(hold, "127.0.0.1", 0, close_timeout=0.2) as server:
        peer = await RawPeer.connected(server.port)
        ws = await hold.next()
        started = time.monotonic()
        await ws.close()
        assert 0.15 < time.monotonic() - started < 2
        assert (await peer.read_close()).close_code == 1000
        assert ws.close_code == 1006  # no close frame came back
        await peer.close()


async def test_wait_closed_returns_once_the_peer_closed() -> None:
    async with ws_pair() as (server, client):
        closing = asyncio.create_task(server.wait_closed())
        await asyncio.sleep(0)
        assert not closing.done()
        await client.close()
        await closing


async def test_fail_closes_with_1008_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="fullduplex")
    async with ws_pair() as (server, client):
        server.fail(reason="rule broken")
        with pytest.raises(ConnectionClosedError) as caught:
            await client.recv()
        assert (caught.value.code, caught.value.reason) == (1008, "rule broken")
        await server.wait_closed()
    assert "connection failed: rule broken" in caplog.text


# --- backpressure ----------------------------------------------------------------------------


async def test_send_waits_while_the_write_buffer_is_above_the_limit() -> None:
    write_limit = 16 * 1024
    chunk = b"x" * 8192
    sent = 0
    blocked_send: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def flood(ws: ServerConnection) -> None:
        nonlocal sent
        _shrink(ws, socket.SO_SNDBUF)
        try:
            while True:
                send = asyncio.ensure_future(ws.send(chunk))
                if not blocked_send.done():
                    await asyncio.wait([send], timeout=0.2)
                    if not send.done() and _write_buffer_size(ws) > write_limit // 4:
                        blocked_send.set_result(None)
                await send
                sent += 1
        except ConnectionClosed:
            pass

    options = dict(write_limit=write_limit, compression=None, close_timeout=0.5)
    async with serve(flood, "127.0.0.1", 0, **options) as server:
        peer = await RawPeer.connected(server.port, rcvbuf=4096)
        await blocked_send
        (ws,) = server.connections
        assert ws.transport is not None
        # Bounded: at most the high-water mark plus the message that crossed it.
        assert ws.transport.get_write_buffer_size() <= write_limit + len(chunk) + 14
        stalled_at = sent
        # Nothing to wait for: no send may complete while the peer reads nothing.
        await asyncio.sleep(0.1)
        assert sent == stalled_at
        # Once the peer reads again, sending resumes.
        for _ in range(50):
            await peer.read_frame()
        assert sent > stalled_at
        peer.writer.transport.abort()
        await peer.close()


async def test_closing_is_bounded_when_the_peer_stopped_reading() -> None:
    # The peer sends its close frame and stops reading while the server's write buffer is
    # full: closing the transport would wait forever for the buffer to drain.
    send_blocked = asyncio.Event()
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def flood(ws: ServerConnection) -> None:
        _shrink(ws, socket.SO_SNDBUF)
        try:
            while True:
                send = asyncio.ensure_future(ws.send(b"y" * 8192))
                done, _ = await asyncio.wait([send], timeout=0.2)
                if not done and _write_buffer_size(ws) > 16 * 1024 // 4:
                    send_blocked.set()
                await send
        except ConnectionClosed as exc:
            outcome.set_result(exc)

    options = dict(write_limit=16 * 1024, compression=None, close_timeout=0.3)
    async with serve(flood, "127.0.0.1", 0, **options) as server:
        peer = await RawPeer.connected(server.port, rcvbuf=4096)
        await send_blocked.wait()
        (ws,) = server.connections
        started = time.monotonic()
        peer.send_close(1000)
        await ws.wait_closed()
        assert time.monotonic() - started < 2
        assert isinstance(await outcome, ConnectionClosed)
        await peer.close()


# --- event loops ---------------------------------------------------------------------------


def test_connection_runs_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def exchange() -> None:
        async with ws_pair(client_options=dict(write_limit=1024)) as (server, client):
            await client.send("over uvloop")
            assert await server.recv() == "over uvloop"
            await server.send(b"z" * 100_000)  # past the write limit: pauses, then drains
            assert await client.recv() == b"z" * 100_000
            assert await client.ping() >= 0

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(exchange(), 10))


# --- helpers ---------------------------------------------------------------------------------


def _shrink(ws: ServerConnection, option: int) -> None:
    """Shrink a kernel socket buffer, so that backpressure shows after kilobytes, not MB."""
    assert ws.transport is not None
    ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, option, 4096)


def _write_buffer_size(ws: ServerConnection) -> int:
    """Writing stays paused until the buffer drains to a quarter of write_limit."""
    assert ws.transport is not None
    return ws.transport.get_write_buffer_size()
