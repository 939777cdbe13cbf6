"""The callback API's fast read: a server whose messages go to a callback hands the whole
messages at the head of each read to it from one call (`Connection.message_deliverer`), and
writes the replies `send_nowait` framed at the read's end. Everything else in the same bytes
(control frames, fragments, errors, the peer's close) takes the general path, in order.

The peer writes each test's frames in one call, so that they usually arrive in one read; the
outcome must be the same however the kernel splits them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from fullduplex import ServerConnection, connect, serve
from fullduplex.io.asyncio.plumbing import _PlainReads
from fullduplex.protocol import _compiled

from ..conftest import TestCA
from ..wire import close_payload
from .peers import BINARY, CLOSE, CONTINUATION, MASK, PING, PONG, TEXT, RawPeer, encode_frame


def masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    return encode_frame(opcode, payload, fin=fin, mask=MASK)


async def callback_echo(ws: ServerConnection) -> None:
    ws.on_message(ws.send_nowait)
    await ws.wait_closed()


@asynccontextmanager
async def served_peer(
    handler: Callable[[ServerConnection], Awaitable[None]] = callback_echo,
    max_size: int | None = 2**20,
) -> AsyncIterator[tuple[RawPeer, ServerConnection]]:
    """A raw peer connected to ``handler``, once its callback is set."""
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=max_size) as server:
        peer = await RawPeer.connected(server.port)
        connection = next(iter(server.connections))
        # The handler set its callback once it ran: a message round trip shows it did.
        peer.write(masked(TEXT, b"ready"))
        assert (await peer.read_frame()).payload == b"ready"
        try:
            yield peer, connection
        finally:
            await peer.close()


async def test_the_server_reads_plain_messages_on_the_fast_path() -> None:
    async with served_peer() as (peer, connection):
        assert connection._deliver is not None
        peer.write(b"".join(masked(TEXT, b"%d" % n) for n in range(100)))
        for n in range(100):
            assert (await peer.read_frame()).payload == b"%d" % n


async def test_a_ping_between_messages_is_answered_in_order() -> None:
    async with served_peer() as (peer, _):
        peer.write(masked(TEXT, b"one") + masked(PING, b"p") + masked(BINARY, b"two"))
        frames = [await peer.read_frame() for _ in range(3)]
        assert [(frame.opcode, frame.payload) for frame in frames] == [
            (TEXT, b"one"),
            (PONG, b"p"),
            (BINARY, b"two"),
        ]


async def test_a_fragmented_message_between_plain_ones_is_assembled() -> None:
    async with served_peer() as (peer, connection):
        peer.write(
            masked(TEXT, b"a")
            + masked(TEXT, b"b", fin=False)
            + masked(CONTINUATION, b"c")
            + masked(TEXT, b"d")
        )
        assert [(await peer.read_frame()).payload for _ in range(3)] == [b"a", b"bc", b"d"]
        # Half a frame, then the rest: the general path holds it, then the fast one resumes.
        frame = masked(TEXT, b"split")
        peer.write(frame[:5])
        await asyncio.sleep(0)
        peer.write(frame[5:] + masked(TEXT, b"after"))
        assert [(await peer.read_frame()).payload for _ in range(2)] == [b"split", b"after"]
        peer.write(masked(TEXT, b"again"))
        assert (await peer.read_frame()).payload == b"again"
        assert connection._deliver is not None


async def test_a_callback_that_raises_fails_the_connection_after_the_earlier_replies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="fullduplex")

    async def picky(ws: ServerConnection) -> None:
        def answer(message: str | bytes) -> None:
            if message == "bad":
                raise ValueError("no")
            ws.send_nowait(message)

        ws.on_message(answer)
        await ws.wait_closed()

    async with served_peer(picky) as (peer, _):
        peer.write(masked(TEXT, b"ok") + masked(TEXT, b"bad") + masked(TEXT, b"lost"))
        assert (await peer.read_frame()).payload == b"ok"
        close = await peer.read_frame()
        assert (close.opcode, close.close_code) == (CLOSE, 1011)
    assert "message callback failed" in caplog.text


async def test_a_callback_that_fails_the_connection_sends_its_replies_first() -> None:
    async def strict(ws: ServerConnection) -> None:
        def answer(message: str | bytes) -> None:
            ws.send_nowait(message)
            if message == "last":
                ws.fail(4000, "enough")

        ws.on_message(answer)
        await ws.wait_closed()

    async with served_peer(strict) as (peer, _):
        peer.write(masked(TEXT, b"one") + masked(TEXT, b"last") + masked(TEXT, b"ignored"))
        frames = [await peer.read_frame() for _ in range(3)]
        assert [frame.payload for frame in frames[:2]] == [b"one", b"last"]
        assert (frames[2].opcode, frames[2].close_code) == (CLOSE, 4000)


async def test_invalid_utf8_after_a_message_fails_with_1007() -> None:
    async with served_peer() as (peer, _):
        peer.write(masked(TEXT, b"fine") + masked(TEXT, b"\xff\xfe"))
        assert (await peer.read_frame()).payload == b"fine"
        assert (await peer.read_close()).close_code == 1007


async def test_a_message_over_max_size_after_a_message_fails_with_1009() -> None:
    async with served_peer(max_size=16) as (peer, _):
        peer.write(masked(TEXT, b"small") + masked(BINARY, b"x" * 17))
        assert (await peer.read_frame()).payload == b"small"
        assert (await peer.read_close()).close_code == 1009


async def test_the_peers_close_after_messages_is_answered_after_their_replies() -> None:
    async with served_peer() as (peer, connection):
        peer.write(masked(TEXT, b"bye") + masked(CLOSE, close_payload(1000)))
        assert (await peer.read_frame()).payload == b"bye"
        assert (await peer.read_frame()).close_code == 1000
        await connection.wait_closed()
        assert connection.close_code == 1000


async def test_large_replies_keep_their_place_among_framed_ones() -> None:
    big = b"x" * 100_000

    async def mixed(ws: ServerConnection) -> None:
        def answer(message: str | bytes) -> None:
            ws.send_nowait(message)
            ws.send_nowait(big)
            ws.send_nowait("after")

        ws.on_message(answer)
        await ws.wait_closed()

    async with serve(mixed, "127.0.0.1", 0, compression=None) as server:
        peer = await RawPeer.connected(server.port)
        peer.write(masked(TEXT, b"one") + masked(TEXT, b"two"))
        payloads = [(await peer.read_frame()).payload for _ in range(6)]
        assert payloads == [b"one", big, b"after", b"two", big, b"after"]
        await peer.close()


async def test_a_message_split_across_reads_is_delivered_whole() -> None:
    async with served_peer() as (peer, _):
        frames = masked(TEXT, b"first") + masked(TEXT, b"second")
        peer.write(frames[:-3])  # "second" is partly received: the general path keeps it
        assert (await peer.read_frame()).payload == b"first"
        peer.write(frames[-3:])
        assert (await peer.read_frame()).payload == b"second"


async def test_the_server_reads_through_the_compiled_protocol_when_it_is_built() -> None:
    # The pure-Python pass (FULLDUPLEX_NO_SPEEDUPS=1) checks `_PlainReads` the same way.
    expected = _compiled.PlainReads if _compiled.PlainReads is not None else _PlainReads
    async with served_peer() as (peer, connection):
        assert connection.transport is not None
        assert type(connection.transport.get_protocol()) is expected
        peer.write(masked(TEXT, b"one") + masked(BINARY, b"two"))
        assert (await peer.read_frame()).payload == b"one"
        assert (await peer.read_frame()).payload == b"two"


def test_the_fast_read_runs_on_uvloop() -> None:
    # uvloop picks a transport's way of reading from its protocol's type, and switches on
    # `set_protocol`, as `on_message` does: both ways, flow control and the close, there.
    uvloop = pytest.importorskip("uvloop")

    async def exchange() -> None:
        async with served_peer() as (peer, connection):
            assert connection.transport is not None
            assert not isinstance(connection.transport.get_protocol(), asyncio.BufferedProtocol)
            peer.write(masked(TEXT, b"one") + masked(PING, b"p") + masked(TEXT, b"two"))
            replies = [await peer.read_frame() for _ in range(3)]
            assert [(f.opcode, f.payload) for f in replies] == [
                (TEXT, b"one"),
                (PONG, b"p"),
                (TEXT, b"two"),
            ]
            connection.pause_reading()
            assert not connection.transport.is_reading()
            peer.write(masked(TEXT, b"held"))
            connection.resume_reading()
            assert (await peer.read_frame()).payload == b"held"
            peer.write(masked(CLOSE, close_payload(1000)))
            assert (await peer.read_frame()).close_code == 1000
            await connection.wait_closed()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(exchange(), 10))


async def test_a_peer_that_reads_no_replies_stops_being_read_until_it_does() -> None:
    big = b"x" * 65536

    async def amplify(ws: ServerConnection) -> None:
        ws.on_message(lambda message: ws.send_nowait(big))
        await ws.wait_closed()

    options = dict(compression=None, write_limit=16 * 1024)
    async with serve(amplify, "127.0.0.1", 0, **options) as server:
        peer = await RawPeer.connected(server.port, rcvbuf=4096)
        connection = next(iter(server.connections))
        assert connection.transport is not None
        peer.write(masked(TEXT, b"go"))
        assert (await peer.read_frame()).payload == big  # the callback is set
        while connection.transport.is_reading():  # bounded by the test's timeout
            peer.write(masked(TEXT, b"more"))
            await asyncio.sleep(0.01)
        assert not connection.can_send_now()  # the transport paused writing, hence reading
        while not connection.transport.is_reading():
            assert (await peer.read_frame()).payload == big
        peer.writer.transport.abort()


async def test_the_callback_api_answers_over_tls(tls: TestCA) -> None:
    # TLS transports take the switch to a plain protocol (`on_message`) too.
    async with (
        serve(callback_echo, "127.0.0.1", 0, ssl=tls.server_context) as server,
        connect(f"wss://127.0.0.1:{server.port}/", ssl=tls.client_context) as ws,
    ):
        for text in ("one", "two"):
            await ws.send(text)
            assert await ws.recv() == text
