"""`EngineIOSession`: one Engine.IO v4 session, over long-polling, WebSocket, or one then the other.

Theory of operation
-------------------
A session has a sid, an *outbox* of packets for the client, an *inbox* of messages for the
application, and a heartbeat. The endpoint (`endpoint.py`) routes each HTTP request and
WebSocket connection that names the sid to the session's ``_serve_*`` methods.

- **Polling.** A GET ("poll") takes every packet in the outbox as one payload. When the
  outbox is empty the poll is held until a packet arrives, the upgrade needs it ended with a
  NOOP, or the session ends. A POST carries a payload of packets from the client, answered
  ``ok``. A second poll while one is held is a protocol error: the held poll gets CLOSE and the
  session ends (so does a second concurrent POST).
- **WebSocket.** One packet per WebSocket message: `send` writes to it directly, and a writer
  task runs only while packets wait in the outbox (PINGs, the upgrade's backlog, the close).
- **Upgrade.** A WebSocket naming a polling session's sid starts an upgrade: the client sends
  PING ``probe`` and gets PONG ``probe`` on it; ``NOOP_DELAY_S`` later every poll is answered
  at once (with NOOP when nothing is queued), so the client's last poll returns. The client's
  UPGRADE packet switches the session: packets queued meanwhile go out on the WebSocket, a
  poll still held and later polls get 400, and `transport` becomes ``"websocket"``. A second
  WebSocket for the session is closed at once.
- **Heartbeat.** ``ping_interval_ms`` after the handshake (and after each PONG) the server
  queues a PING; without a PONG within ``ping_timeout_ms`` the session ends. Both are timer
  handles, not tasks, so an idle session costs no task.
- **Consumer.** The application reads with ``async for`` (`recv`), or gives a callback to
  `consume`: while that callback is idle, each MESSAGE goes to it inside the read that brought
  it (the WebSocket's reader task, or the POST), with no hand-over to another task; while an
  awaitable it returned runs in `consume`'s task, messages wait in the inbox as for `recv`, and
  PONGs and CLOSE are still read.
- **Bounds.** `send` waits while ``max_queue_messages`` packets are queued; the transport
  waits (the POST is not answered, the WebSocket is not read) while as many messages wait for
  `recv`. Payloads above ``max_payload_bytes`` end the session.

How a session ends (``close_code`` / ``close_reason``, the reasons are engine.io's):

=====================================================  ====  =====================
cause                                                  code  reason
=====================================================  ====  =====================
the client's CLOSE packet                              1000  ``transport close``
the WebSocket closed cleanly without one               1000  ``transport close``
the WebSocket dropped                                  1006  ``transport close``
no PONG within ``ping_timeout_ms``                     1011  ``ping timeout``
an invalid packet                                      1002  ``parse error``
a payload above ``max_payload_bytes``                  1009  ``transport error``
a second concurrent poll or POST                       1008  ``transport error``
`close` from the application                           code  reason, else ``forced close``
=====================================================  ====  =====================

Every timer and task of a session is gone once it has ended.
"""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ...exceptions import (
    BodyTooLarge,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HTTPDisconnect,
)
from ...io.asyncio.native_exchange import NativeExchange
from ...protocol.http11 import Request
from ..base import HTTPExchange, Session
from .codec import (
    InvalidPacket,
    Packet,
    PacketType,
    ServerError,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
)

__all__ = ["EngineIOSession", "SessionOptions"]

POLLING = "polling"
WEBSOCKET = "websocket"

Fields = tuple[tuple[str, str], ...]
"""Response header fields: a tuple, so that the server caches the head made of them."""

TEXT_HEADERS: Fields = (("Content-Type", "text/plain; charset=UTF-8"),)

# The close codes a WebSocket close frame may carry (RFC 6455 §7.4); a session's other codes
# (1006: nothing was sent) close the WebSocket with 1000.
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})

# How long after the probe a poll is ended with NOOP (engine.io checks every 100 ms).
NOOP_DELAY_S = 0.05

_JSON_HEADERS: Fields = (("Content-Type", "application/json"),)

_PING = Packet(PacketType.PING)
_CLOSE = Packet(PacketType.CLOSE)
_NOOP = Packet(PacketType.NOOP)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """The settings every session of one endpoint shares (see `EngineIOEndpoint`)."""

    ping_interval_ms: int = 25_000
    ping_timeout_ms: int = 20_000
    max_payload_bytes: int = 1_000_000
    upgrade_timeout_ms: int = 10_000
    max_queue_messages: int = 1024


class _State(enum.Enum):
    OPEN = "open"
    # The application called close(): the outbox still goes out, then CLOSE.
    CLOSING = "closing"
    CLOSED = "closed"


# The members as module constants: ``_State.OPEN`` costs about 0.3 µs on Python 3.11 (the
# enum metaclass's attribute lookup), a global 0.02 µs, and the state is read for every message.
_OPEN = _State.OPEN
_CLOSING = _State.CLOSING
_CLOSED = _State.CLOSED
_MESSAGE = PacketType.MESSAGE


class EngineIOSession(Session):
    """One Engine.IO v4 session; messages are Engine.IO MESSAGE packets, ``str`` or ``bytes``.

    Created by `EngineIOEndpoint` at the handshake and given to its handler. Besides the
    `Session` interface it has `sid`, and `transport` changes from ``"polling"`` to
    ``"websocket"`` when the client upgrades.
    """

    __slots__ = (
        "_sid",
        "_request",
        "_remote_address",
        "_options",
        "_on_end",
        "_loop",
        "_transport",
        "_state",
        "_close_code",
        "_close_reason",
        "_ending_code",
        "_ending_reason",
        "_outbox",
        "_outbox_space",
        "_inbox",
        "_inbox_ready",
        "_inbox_space",
        "_consumer",
        "_is_consumer_idle",
        "_consumer_pending",
        "_pending_poll",
        "_last_packet",
        "_is_posting",
        "_upgrade_ws",
        "_is_probed",
        "_noop_timer",
        "_upgrade_timer",
        "_websocket",
        "_writer",
        "_ping_timer",
        "_pong_deadline",
        "_linger_timer",
        "_closing_tasks",
        "_ended",
    )

    def __init__(
        self,
        sid: str,
        request: Request,
        remote_address: Any,
        transport: str,
        options: SessionOptions,
        on_end: Callable[[EngineIOSession], None],
    ) -> None:
        self._sid = sid
        self._request = request
        self._remote_address = remote_address
        self._options = options
        self._on_end = on_end
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._state = _OPEN
        self._close_code: int | None = None
        self._close_reason = ""
        self._ending_code = 1000
        self._ending_reason = ""
        # Lists, not deques: an empty deque costs 600 bytes more, and both stay short
        # (``max_queue_messages``), so taking from the front is a small move.
        self._outbox: list[Packet] = []
        self._outbox_space = _Signal()
        self._inbox: list[str | bytes] = []
        self._inbox_ready = _Signal()
        self._inbox_space = _Signal()
        self._consumer: Callable[[str | bytes], Awaitable[None] | None] | None = None
        # True while `consume` waits for a message: the reader may call the consumer itself.
        self._is_consumer_idle = False
        # What the consumer returned for a message given inline, for `consume` to await.
        self._consumer_pending: Awaitable[None] | None = None
        # Resolved True to wake the held poll, False when its client went away.
        self._pending_poll: asyncio.Future[bool] | None = None
        self._last_packet = _CLOSE
        self._is_posting = False
        self._upgrade_ws: Session | None = None
        self._is_probed = False
        self._noop_timer: asyncio.TimerHandle | None = None
        self._upgrade_timer: asyncio.TimerHandle | None = None
        self._websocket: Session | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_deadline: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._closing_tasks: set[asyncio.Task[None]] = set()
        self._ended = _Signal()

    # --- the Session interface ---

    @property
    def sid(self) -> str:
        """The session id: random, unguessable, sent by the client with every request."""
        return self._sid

    @property
    def transport(self) -> str:
        """``"polling"`` or ``"websocket"``; ``"polling"`` becomes ``"websocket"`` on upgrade."""
        return self._transport

    @property
    def request(self) -> Request:
        """The handshake request (its query has ``EIO``, ``transport`` and the client's own)."""
        return self._request

    @property
    def remote_address(self) -> Any:
        """The address of the peer that made the handshake request, or None."""
        return self._remote_address

    @property
    def close_code(self) -> int | None:
        """The close code once the session has ended (see the module's table), else None."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        """Why the session ended (``transport close``, ``ping timeout``...); empty while open."""
        return self._close_reason

    @property
    def is_closed(self) -> bool:
        """Whether the session has ended: `send` raises, `recv` drains then raises."""
        return self._state is _CLOSED

    async def recv(self) -> str | bytes:
        """Return the next message from the client: ``str`` (text) or ``bytes`` (binary).

        Raises:
            ConnectionClosed: the session has ended and every message was received.
            RuntimeError: `consume` takes the messages.
        """
        if self._consumer is not None:
            raise RuntimeError("consume() takes this session's messages")
        while not self._inbox:
            if self._state is _CLOSED:
                raise self._closed_error()
            await self._inbox_ready.wait(self._loop)
        message = self._inbox.pop(0)
        self._inbox_space.notify()
        return message

    async def consume(self, consumer: Callable[[str | bytes], Awaitable[None] | None]) -> None:
        """Give every message to ``consumer`` until the session ends (see `Session.consume`).

        Messages already received go first. Then, while ``consumer`` has nothing pending, it is
        called inside the read that brought each message, with no task switch.

        Raises:
            RuntimeError: the session is being consumed already, or read with `recv`.
        """
        if self._consumer is not None:
            raise RuntimeError("consume() takes this session's messages already")
        self._consumer = consumer
        inbox = self._inbox
        while True:
            pending, self._consumer_pending = self._consumer_pending, None
            if pending is not None:
                await pending
            elif inbox:
                message = inbox.pop(0)
                self._inbox_space.notify()
                self._consumer_pending = consumer(message)
            elif self._state is _CLOSED:
                return
            else:
                self._is_consumer_idle = True
                try:
                    await self._inbox_ready.wait(self._loop)
                finally:
                    self._is_consumer_idle = False

    async def send(self, message: str | bytes) -> None:
        """Queue one message for the client; waits while ``max_queue_messages`` are queued.

        Raises:
            ConnectionClosed: the session has ended or is closing.
            TypeError: ``message`` is neither ``str`` nor ``bytes``.
        """
        if not isinstance(message, str | bytes):
            raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
        websocket = self._websocket
        if websocket is not None and not self._outbox and self._state is _OPEN:
            # Nothing queued ahead: straight to the WebSocket, which writes it before any later
            # send and waits while the client reads slowly. No hop through the writer task.
            try:
                await websocket.send(f"4{message}" if isinstance(message, str) else message)
            except ConnectionClosed:
                raise self._closed_error() from None
            return
        while True:
            if self._state is not _OPEN:
                raise self._closed_error()
            if len(self._outbox) < self._options.max_queue_messages:
                break
            await self._outbox_space.wait(self._loop)
        self._queue(Packet(_MESSAGE, message))

    def try_send_nowait(self, message: str | bytes) -> bool:
        """Send ``message`` if that needs no waiting: on the WebSocket now when nothing is
        queued ahead and the client keeps up, else into the queue while it has room (for the
        next poll, or the writer); otherwise return False: use `send`.

        Raises:
            ConnectionClosed: the WebSocket has closed.
            TypeError: ``message`` is neither ``str`` nor ``bytes``.
        """
        if self._state is not _OPEN:
            return False  # `send` raises the reason
        websocket = self._websocket
        if websocket is not None and not self._outbox:
            try:
                return websocket.try_send_nowait("4" + message if type(message) is str else message)
            except ConnectionClosed:
                raise self._closed_error() from None
        if len(self._outbox) >= self._options.max_queue_messages:
            return False
        if not isinstance(message, str | bytes):
            raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
        self._queue(Packet(_MESSAGE, message))
        return True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send what is queued, then CLOSE, and wait until the session has ended.

        Over polling the client's next poll gets the rest and CLOSE; a client that does not poll
        within ``ping_interval_ms + ping_timeout_ms`` loses it.
        """
        if self._state is _OPEN:
            self._state = _CLOSING
            self._ending_code = code
            self._ending_reason = reason or "forced close"
            # No more heartbeat: the closing is bounded on its own (the linger timer, or the
            # WebSocket's close), and it ends with the application's code, not a timeout.
            self._cancel_heartbeat()
            self._wake_senders()
            if self._websocket is not None:
                self._start_writer(self._websocket)
            elif self._pending_poll is not None:
                self._end(code, self._ending_reason)
            else:
                linger_s = (self._options.ping_interval_ms + self._options.ping_timeout_ms) / 1000
                self._linger_timer = self._loop.call_later(
                    linger_s, self._end, code, self._ending_reason
                )
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Return once the session has ended, however it ended."""
        while self._state is not _CLOSED:
            await self._ended.wait(self._loop)

    # --- the endpoint's side ---

    def _has_timed_out(self) -> bool:
        """End the session if its PONG is overdue; return whether it has ended.

        The endpoint asks before serving a request: on a busy loop the deadline's timer may
        not have run yet when the next request is read, and that request must see the
        session gone (400), as it would have on an idle loop.
        """
        deadline = self._pong_deadline
        if deadline is not None and deadline.when() <= self._loop.time():
            self._end(1011, "ping timeout")
        return self._state is _CLOSED

    def _start(self) -> None:
        """Arm the heartbeat; called once the OPEN packet is on its way."""
        self._schedule_ping()

    async def _serve_poll(self, exchange: HTTPExchange, headers: Fields) -> None:
        """Answer one GET: queued packets now, or hold it until there are some."""
        answer = self._overlapping_poll(headers) or self._poll_answer(headers)
        while answer is None:
            poll: asyncio.Future[bool] = self._loop.create_future()
            self._pending_poll = poll
            # The client leaving settles the poll with False: it ends without an answer.
            forget = exchange.call_on_disconnect(functools.partial(_settle, poll, False))
            try:
                is_woken = await poll
            finally:
                forget()
                self._pending_poll = None
            if not is_woken:
                return
            answer = self._poll_answer(headers)
        await exchange.respond(*answer)

    def _serve_poll_nowait(self, exchange: NativeExchange, headers: Fields) -> None:
        """`_serve_poll` with no coroutine: a held poll is answered from the callback of the
        future that wakes it."""
        answer = self._overlapping_poll(headers) or self._poll_answer(headers)
        if answer is not None:
            exchange.respond_nowait(*answer)
            return
        poll: asyncio.Future[bool] = self._loop.create_future()
        self._pending_poll = poll
        forget = exchange.call_on_disconnect(functools.partial(_settle, poll, False))
        poll.add_done_callback(functools.partial(self._poll_settled, exchange, headers, forget))

    def _poll_settled(
        self,
        exchange: NativeExchange,
        headers: Fields,
        forget: Callable[[], object],
        poll: asyncio.Future[bool],
    ) -> None:
        forget()
        self._pending_poll = None
        if poll.result():
            answer = self._poll_answer(headers)
            if answer is None:
                self._serve_poll_nowait(exchange, headers)
            else:
                exchange.respond_nowait(*answer)

    def _overlapping_poll(self, headers: Fields) -> _Answer | None:
        """engine.io-protocol: overlapping polls are an error; the held one gets CLOSE."""
        if self._pending_poll is None:
            return None
        self._end(1008, "transport error")
        return _refusal(headers, ServerError.BAD_REQUEST)

    def _poll_answer(self, headers: Fields) -> _Answer | None:
        """What a poll gets now, or None while it waits for packets.

        Taken when the poll runs, not when it was woken: the WebSocket's probe and UPGRADE
        may have been read meanwhile (a held poll then gets 400, like any poll after the
        upgrade), or the session may have ended.
        """
        if self._transport == WEBSOCKET:
            return _refusal(headers, ServerError.BAD_REQUEST)
        if self._state is _CLOSED:
            body = self._take_payload(self._last_packet)
        elif self._state is _CLOSING:
            body = self._take_payload(_CLOSE)
            self._end(self._ending_code, self._ending_reason)
        elif self._is_poll_answerable():
            body = self._take_payload(None)
        else:
            return None
        return _Answer(200, TEXT_HEADERS + headers, body)

    async def _serve_post(self, exchange: HTTPExchange, headers: Fields) -> None:
        """Take one POST's payload and answer ``ok`` once the inbox has taken every message."""
        if self._is_posting:
            await exchange.respond(*self._overlapping_post(headers))
            return
        self._is_posting = True
        try:
            try:
                body = await exchange.read_body(self._options.max_payload_bytes)
            except BodyTooLarge:
                await exchange.respond(*self._too_large(headers))
                return
            except HTTPDisconnect:
                return
            packets = self._posted_packets(body, headers)
            if isinstance(packets, _Answer):
                await exchange.respond(*packets)
                return
            for packet in packets:
                if self._state is _CLOSED:
                    break
                if not self._receive_nowait(packet):
                    await self._receive(packet)
        finally:
            self._is_posting = False
        await exchange.respond(200, TEXT_HEADERS + headers, b"ok")

    def _serve_post_nowait(self, exchange: NativeExchange, headers: Fields) -> bool:
        """`_serve_post` with no coroutine, if the whole body is here and the inbox has room
        for every message in it; else False, having changed nothing."""
        if self._is_posting:
            exchange.respond_nowait(*self._overlapping_post(headers))
            return True
        try:
            body = exchange.body_nowait(self._options.max_payload_bytes)
        except BodyTooLarge:
            exchange.respond_nowait(*self._too_large(headers))
            return True
        if body is None:
            return False
        packets = self._posted_packets(body, headers)
        if isinstance(packets, _Answer):
            exchange.respond_nowait(*packets)
            return True
        if len(self._inbox) + len(packets) > self._options.max_queue_messages:
            return False
        for packet in packets:
            if self._state is _CLOSED:
                break
            self._receive_nowait(packet)  # room was checked: it takes each packet
        exchange.respond_nowait(200, TEXT_HEADERS + headers, b"ok")
        return True

    def _overlapping_post(self, headers: Fields) -> _Answer:
        """A second concurrent POST is an error, as a second poll is."""
        self._end(1008, "transport error")
        return _refusal(headers, ServerError.BAD_REQUEST)

    def _too_large(self, headers: Fields) -> _Answer:
        self._end(1009, "transport error")
        return _Answer(413, TEXT_HEADERS + headers, b"payload too large")

    def _posted_packets(self, body: bytes, headers: Fields) -> list[Packet] | _Answer:
        """The packets of a POST's payload, or the answer to an invalid one (which ends the
        session)."""
        try:
            return decode_payload(body)
        except InvalidPacket:
            self._end(1002, "parse error")
            return _refusal(headers, ServerError.BAD_REQUEST)

    async def _serve_websocket(self, websocket: Session) -> None:
        """Run a session that opened over WebSocket (the OPEN packet is sent already)."""
        self._attach_websocket(websocket)
        await self._read_websocket(websocket)

    async def _serve_upgrade(self, websocket: Session) -> None:
        """Run the upgrade of this polling session to ``websocket``, then read from it."""
        if self._state is not _OPEN or self._transport != POLLING or self._upgrade_ws:
            # Only one upgrade, and only from polling (engine.io refuses a second WebSocket).
            await websocket.close(1008, "upgrade refused")
            return
        self._upgrade_ws = websocket
        self._upgrade_timer = self._loop.call_later(
            self._options.upgrade_timeout_ms / 1000, self._abandon_upgrade, websocket
        )
        try:
            while True:
                packet = decode_packet(await websocket.recv())
                if packet.type is PacketType.PING and packet.data == "probe":
                    await websocket.send(encode_packet(Packet(PacketType.PONG, "probe")))
                    # The NOOP that ends the client's last poll waits a moment: a client whose
                    # frames arrive late (compressed off the event loop, as Node's ws does)
                    # may have sent UPGRADE already, and its poll must then get 400.
                    self._noop_timer = self._loop.call_later(NOOP_DELAY_S, self._allow_noop)
                elif packet.type is PacketType.UPGRADE and self._state is _OPEN:
                    self._finish_upgrade(websocket)
                    break
                else:
                    # Anything else before UPGRADE ends the attempt; the session stays on polling.
                    break
        except (ConnectionClosed, InvalidPacket):
            pass
        finally:
            if self._upgrade_ws is websocket:
                self._cancel_upgrade()
        if self._websocket is websocket:
            await self._read_websocket(websocket)
        else:
            await websocket.close(1000, "upgrade abandoned")

    # --- inside ---

    def _closed_error(self) -> ConnectionClosed:
        code = self._close_code if self._close_code is not None else self._ending_code
        reason = self._close_reason or self._ending_reason
        if code == 1000:
            return ConnectionClosedOK(code, reason, was_clean=True)
        return ConnectionClosedError(code, reason, was_clean=False)

    def _queue(self, packet: Packet) -> None:
        self._outbox.append(packet)
        if self._websocket is not None:
            self._start_writer(self._websocket)
        else:
            self._wake_poll()

    def _is_poll_answerable(self) -> bool:
        return bool(self._outbox) or self._is_probed or self._state is not _OPEN

    def _take_payload(self, last: Packet | None) -> bytes:
        packets: Iterable[Packet] = self._outbox
        if last is not None:
            packets = [*self._outbox, last]
        elif not self._outbox:
            # engine.io-protocol, "Upgrade": a NOOP ends the poll the upgrade is waiting for.
            packets = (_NOOP,)
        body = encode_payload(packets)
        self._outbox.clear()
        self._outbox_space.notify()
        return body

    def _wake_poll(self) -> None:
        poll = self._pending_poll
        if poll is not None and self._is_poll_answerable():
            _settle(poll, True)

    def _wake_senders(self) -> None:
        self._outbox_space.notify()
        self._inbox_ready.notify()
        self._inbox_space.notify()

    async def _receive(self, packet: Packet) -> None:
        kind = packet.type
        if kind is _MESSAGE:
            if self._is_consumer_idle:
                self._consume_inline(packet.data)
                return
            while len(self._inbox) >= self._options.max_queue_messages:
                if self._state is _CLOSED:
                    return
                await self._inbox_space.wait(self._loop)
            self._inbox.append(packet.data)
            self._inbox_ready.notify()
        else:
            self._receive_control(packet)

    def _receive_nowait(self, packet: Packet) -> bool:
        """`_receive` when it need not wait (the inbox has room): no coroutine; else False."""
        if packet.type is not _MESSAGE:
            self._receive_control(packet)
        elif self._is_consumer_idle:
            self._consume_inline(packet.data)
        elif len(self._inbox) < self._options.max_queue_messages:
            self._inbox.append(packet.data)
            self._inbox_ready.notify()
        else:
            return False
        return True

    def _receive_control(self, packet: Packet) -> None:
        kind = packet.type
        if kind is PacketType.PONG:
            self._on_pong()
        elif kind is PacketType.CLOSE:
            self._end(1000, "transport close", last=_NOOP)
        elif kind in (PacketType.OPEN, PacketType.UPGRADE):
            # Only the server opens, and UPGRADE belongs to the new WebSocket's probe phase.
            self._end(1002, "parse error")
        # A NOOP, or a PING a v4 client has no reason to send, changes nothing.

    def _consume_inline(self, message: str | bytes) -> None:
        consumer = self._consumer
        assert consumer is not None
        # Not idle while it runs: a message it causes to be read waits in the inbox.
        self._is_consumer_idle = False
        try:
            pending = consumer(message)
        except Exception as exc:
            pending = _reraise(exc)
        if pending is None:
            self._is_consumer_idle = True
        else:
            # `consume`'s task finishes it; later messages wait in the inbox meanwhile.
            self._consumer_pending = pending
            self._inbox_ready.notify()

    async def _read_websocket(self, websocket: Session) -> None:
        # Through `consume`: over fullduplex's WebSocket, a packet is handled inside the read
        # that brought it, and a MESSAGE goes on to an idle consumer there too.
        try:
            await websocket.consume(self._on_websocket_message)
        except ConnectionClosed as closed:
            self._websocket_closed(closed.was_clean)
        else:
            self._websocket_closed(was_clean=True)
        writer = self._writer
        if writer is not None:
            await writer

    def _on_websocket_message(self, message: str | bytes) -> Awaitable[None] | None:
        if self._state is _CLOSED:
            return None  # what follows the end is not read
        if len(message) > self._options.max_payload_bytes:
            self._end(1009, "transport error")
            return None
        # A MESSAGE, the usual packet, is taken apart here without a `Packet`.
        if type(message) is str:
            if message[:1] != "4":
                try:
                    self._receive_control(decode_packet(message))
                except InvalidPacket:
                    self._end(1002, "parse error")
                return None
            data: str | bytes = message[1:]
        else:
            data = message  # a binary frame is a MESSAGE with no prefix
        if self._is_consumer_idle:
            self._consume_inline(data)
        elif len(self._inbox) < self._options.max_queue_messages:
            self._inbox.append(data)
            self._inbox_ready.notify()
        else:
            # Waits for room; the WebSocket is not read meanwhile.
            return self._receive(Packet(_MESSAGE, data))
        return None

    def _attach_websocket(self, websocket: Session) -> None:
        self._websocket = websocket
        self._transport = WEBSOCKET
        if self._outbox:
            self._start_writer(websocket)

    def _start_writer(self, websocket: Session) -> None:
        # The writer runs only while there is something to write (what `send` could not put on
        # the WebSocket itself: PINGs, packets queued during the upgrade, the closing): an
        # idle session holds no task.
        if self._writer is None and self._state is not _CLOSED:
            self._writer = self._loop.create_task(self._write_websocket(websocket))

    async def _write_websocket(self, websocket: Session) -> None:
        try:
            while self._outbox:
                packet = self._outbox.pop(0)
                self._outbox_space.notify()
                await websocket.send(encode_packet(packet))
            if self._state is _CLOSING:
                await websocket.close(_sendable(self._ending_code), self._ending_reason)
                self._end(self._ending_code, self._ending_reason)
        except ConnectionClosed as closed:
            self._websocket_closed(closed.was_clean)
        finally:
            self._writer = None

    def _websocket_closed(self, was_clean: bool) -> None:
        if self._state is _CLOSING:
            # The application's close is what closed it.
            self._end(self._ending_code, self._ending_reason)
        else:
            # engine.io-client closes a WebSocket without a CLOSE packet: clean is normal.
            self._end(1000 if was_clean else 1006, "transport close")

    def _finish_upgrade(self, websocket: Session) -> None:
        self._cancel_upgrade()
        self._attach_websocket(websocket)
        # A client holds no poll by now (it waits for its last one before UPGRADE); one that
        # does gets 400, as every poll after the upgrade.
        if self._pending_poll is not None:
            _settle(self._pending_poll, True)

    def _allow_noop(self) -> None:
        self._noop_timer = None
        self._is_probed = True
        self._wake_poll()

    def _cancel_upgrade(self) -> None:
        for timer in (self._upgrade_timer, self._noop_timer):
            if timer is not None:
                timer.cancel()
        self._upgrade_timer = self._noop_timer = None
        self._upgrade_ws = None
        self._is_probed = False

    def _abandon_upgrade(self, websocket: Session) -> None:
        self._upgrade_timer = None
        self._close_websocket(websocket, 1000, "upgrade timeout")

    def _close_websocket(self, websocket: Session, code: int, reason: str) -> None:
        task = self._loop.create_task(websocket.close(_sendable(code), reason))
        self._closing_tasks.add(task)
        task.add_done_callback(self._closing_tasks.discard)

    def _schedule_ping(self) -> None:
        self._ping_timer = self._loop.call_later(
            self._options.ping_interval_ms / 1000, self._send_ping
        )

    def _send_ping(self) -> None:
        assert self._ping_timer is not None
        # The deadline counts from when the PING was due, not from when a busy loop got to
        # it: a client that stops answering is gone ping_interval + ping_timeout after its
        # last PONG, as the handshake advertised (and as the suites measure).
        due = self._ping_timer.when()
        self._ping_timer = None
        self._queue(_PING)
        self._pong_deadline = self._loop.call_at(
            due + self._options.ping_timeout_ms / 1000, self._end, 1011, "ping timeout"
        )

    def _cancel_heartbeat(self) -> None:
        for timer in (self._ping_timer, self._pong_deadline):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_deadline = None

    def _on_pong(self) -> None:
        # A PONG nobody asked for does not move the next PING earlier.
        if self._pong_deadline is not None:
            self._pong_deadline.cancel()
            self._pong_deadline = None
            self._schedule_ping()

    def _end(self, code: int, reason: str, last: Packet = _CLOSE) -> None:
        """End the session now: answer a held poll with the outbox and ``last``, drop the rest."""
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        self._close_code = code
        self._close_reason = reason
        self._cancel_heartbeat()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        self._last_packet = last
        if self._pending_poll is not None:
            # The held poll takes the outbox and ``last`` when it runs.
            _settle(self._pending_poll, True)
        else:
            self._outbox.clear()
        upgrade_ws = self._upgrade_ws
        self._cancel_upgrade()
        if upgrade_ws is not None:
            self._close_websocket(upgrade_ws, 1000, reason)
        if self._websocket is not None and self._websocket.close_code is None:
            self._close_websocket(self._websocket, code, reason)
        self._wake_senders()
        self._ended.notify()
        self._on_end(self)


class _Signal:
    """Wakes the coroutines waiting in `wait`: an `asyncio.Event` without its state.

    Waiters check their condition, then wait, in a loop. A session has five of these and most
    never have a waiter, so none holds a deque (an Event's costs about 700 bytes).
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] | None = None

    async def wait(self, loop: asyncio.AbstractEventLoop) -> None:
        """Return at the next `notify`."""
        waiter = loop.create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)

    def notify(self) -> None:
        """Wake every waiter."""
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)


async def _reraise(exc: Exception) -> None:
    """Raise, in `consume`'s task, what the consumer raised inside a read."""
    raise exc


def _settle(poll: asyncio.Future[bool], is_woken: bool) -> None:
    """Wake a held poll (or tell it its client left) unless that happened already."""
    if not poll.done():
        poll.set_result(is_woken)


def _sendable(code: int) -> int:
    """Return ``code`` if a close frame may carry it, else 1000."""
    if code in _SENDABLE_CLOSE_CODES or 3000 <= code <= 4999:
        return code
    return 1000


class _Answer(NamedTuple):
    """An HTTP response for an exchange's ``respond`` or ``respond_nowait``."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes = b""


def _refusal(headers: Fields, error: ServerError) -> _Answer:
    """``error``'s status and JSON body."""
    return _Answer(error.http_status, _JSON_HEADERS + headers, error.body)
