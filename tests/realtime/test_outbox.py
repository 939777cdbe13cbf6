"""The slow-consumer policy: volatile dropped when behind, overflow closes, nothing lost."""

from __future__ import annotations

import asyncio

from fullduplex import ConnectionClosedError
from fullduplex.realtime import Outbox

from .support import MemorySession


async def test_messages_go_out_in_order() -> None:
    session = MemorySession()
    outbox = Outbox(session, lambda: None)
    writer = asyncio.create_task(outbox.run())
    assert outbox.put(["a", b"b"])
    assert outbox.put(["c"])
    assert [await session.client_recv() for _ in range(3)] == ["a", b"b", "c"]
    outbox.close()
    await writer


async def test_volatile_messages_are_dropped_when_the_writer_is_behind() -> None:
    session = MemorySession()
    session.writable.clear()  # the peer stopped reading
    outbox = Outbox(session, lambda: None, volatile_backlog=2)
    writer = asyncio.create_task(outbox.run())
    assert outbox.put(["1"])
    assert outbox.put(["2"])
    await asyncio.sleep(0)
    assert outbox.put(["3"])
    assert not outbox.put(["v"], volatile=True)
    assert outbox.dropped_volatile == 1
    session.writable.set()
    assert [await session.client_recv() for _ in range(3)] == ["1", "2", "3"]
    assert outbox.put(["v"], volatile=True)
    assert await session.client_recv() == "v"
    outbox.close()
    await writer


async def test_a_reliable_message_that_does_not_fit_closes_the_connection() -> None:
    session = MemorySession()
    session.writable.clear()
    overflows: list[bool] = []
    outbox = Outbox(session, lambda: overflows.append(True), max_messages=3)
    writer = asyncio.create_task(outbox.run())
    for n in range(3):
        assert outbox.put([str(n)])
    assert not outbox.put(["too many"])
    assert not outbox.put(["after"])
    assert overflows == [True]
    assert outbox.is_overflowed
    await session.close(1008, "slow consumer")
    await writer


async def test_the_byte_bound_counts_too() -> None:
    session = MemorySession()
    session.writable.clear()
    overflows: list[bool] = []
    outbox = Outbox(session, lambda: overflows.append(True), max_bytes=10)
    assert outbox.put(["x" * 6])
    assert not outbox.put([b"y" * 6])
    assert overflows == [True]


async def test_attachments_are_queued_all_or_none() -> None:
    session = MemorySession()
    session.writable.clear()
    outbox = Outbox(session, lambda: None, max_messages=3)
    assert outbox.put(["1"])
    assert not outbox.put(["451-[...]", b"a", b"b"], volatile=True)
    assert len(outbox) == 1


async def test_nothing_is_queued_after_close() -> None:
    outbox = Outbox(MemorySession(), lambda: None)
    outbox.close()
    assert not outbox.put(["late"])
    await outbox.run()


async def test_inline_send_writes_at_once_when_idle_and_queues_behind_others() -> None:
    session = MemorySession()
    outbox = Outbox(session, lambda: None)
    writer = asyncio.create_task(outbox.run())
    assert await outbox.send(["now"])
    assert session.client_pending() == ["now"]
    session.writable.clear()
    assert outbox.put(["queued"])
    await asyncio.sleep(0)  # the writer is blocked in send("queued")
    inline = asyncio.create_task(outbox.send(["after"]))
    await asyncio.sleep(0)
    assert inline.done()  # queued behind the writer, not written out of order
    session.writable.set()
    assert [await session.client_recv() for _ in range(2)] == ["queued", "after"]
    outbox.close()
    await writer


async def test_writer_waits_for_an_inline_send_in_progress() -> None:
    session = MemorySession()
    session.writable.clear()
    outbox = Outbox(session, lambda: None)
    writer = asyncio.create_task(outbox.run())
    inline = asyncio.create_task(outbox.send(["first", "second"]))
    await asyncio.sleep(0)
    assert outbox.put(["third"])
    session.writable.set()
    await inline
    assert [await session.client_recv() for _ in range(3)] == ["first", "second", "third"]
    outbox.close()
    await writer


class NowaitSession(MemorySession):
    """A session that can also send without waiting while its peer reads."""

    def try_send_nowait(self, message: str | bytes) -> bool:
        if self._close_code is not None:
            raise ConnectionClosedError(self._close_code, self._close_reason, False)
        if not self.writable.is_set():
            return False
        self.sent.put_nowait(message)
        return True


async def test_put_on_an_idle_outbox_sends_at_once_without_the_writer() -> None:
    session = NowaitSession()
    outbox = Outbox(session, lambda: None)  # no writer task runs
    assert outbox.put(["a"])
    assert session.sent.get_nowait() == "a"


async def test_put_queues_in_order_once_the_session_cannot_send_at_once() -> None:
    session = NowaitSession()
    session.writable.clear()
    outbox = Outbox(session, lambda: None)
    writer = asyncio.create_task(outbox.run())
    assert outbox.put(["1"])
    session.writable.set()
    assert outbox.put(["2"])  # behind "1": queued, not sent ahead of it
    assert [await session.client_recv() for _ in range(2)] == ["1", "2"]
    outbox.close()
    await writer


async def test_put_to_a_closed_session_closes_the_outbox() -> None:
    session = NowaitSession()
    outbox = Outbox(session, lambda: None)
    writer = asyncio.create_task(outbox.run())
    await session.close(1001, "going away")
    assert not outbox.put(["late"])
    assert outbox.is_closed
    await writer


async def test_try_write_sends_at_once_only_when_nothing_is_ahead() -> None:
    session = NowaitSession()
    outbox = Outbox(session, lambda: None)
    assert outbox.try_write(["ack"])
    assert session.sent.get_nowait() == "ack"
    session.writable.clear()
    assert not outbox.try_write(["slow"])  # the session would wait: the caller sends it
    session.writable.set()
    assert outbox.put(["a", "b"])  # two messages together are queued, not written at once
    assert not outbox.try_write(["behind"])
    assert not outbox.try_write(["x", "y"])


async def test_try_write_to_a_closed_session_closes_the_outbox() -> None:
    session = NowaitSession()
    outbox = Outbox(session, lambda: None)
    await session.close(1001, "going away")
    assert outbox.try_write(["late"])  # nothing left to wait for
    assert outbox.is_closed
