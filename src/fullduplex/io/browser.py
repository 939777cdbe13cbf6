"""`WebSocket`: the browser's WebSocket interface (WHATWG WebSockets Standard), in Python.

::

    ws = WebSocket("ws://127.0.0.1:8000/chat", ["chat.v2"])
    ws.onopen = lambda event: ws.send("hello")
    ws.onmessage = lambda event: print(event.data)

Theory of operation
-------------------
The object has two halves, as a browser's WebSocket has a script side and a network side.

The *network half* runs on an asyncio event loop and drives fullduplex's asyncio client, which
makes every protocol decision: `_run` opens the connection with `connect`, reads its messages
and waits for its end; `_write` sends, in order, what `send` and `close` queued. The network
half never changes ``readyState`` nor fires an event: like the standard's network side, it
*queues a task* that does (`_open_task`, `_message_task`, `_closing_task`, `_closed_task`).

Inside a running event loop, the network half runs on that loop and a queued task runs at once,
in the network half's own callback: that callback is the loop's task. Outside one (a plain
script), the network half runs on a background loop thread that the object owns, and tasks wait
in a queue until the script calls `WebSocket.run_until_closed`, which runs them in the script's
thread, as a browser runs tasks between scripts. Handlers set right after the constructor thus
never miss an event, and the script's own state is only ever touched by its own thread.

The standard's checks that are not RFC 6455's live here: the URL (`whatwg_url`), the subprotocol
list, the close code range, a response without the subprotocol asked for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import re
import ssl as ssl_module
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..exceptions import ConnectionClosed
from ..protocol.connection import State
from .asyncio.client import ClientConnection, connect
from .dom import (
    Blob,
    CloseEvent,
    DOMSyntaxError,
    Event,
    EventHandler,
    EventTarget,
    InvalidAccessError,
    InvalidStateError,
    MessageEvent,
    to_usv_string,
)
from .sync.loop import LoopThread
from .whatwg_url import URLParseError, URLRecord, parse_special_url

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer  # bytes-like: bytes, bytearray, memoryview, array...

__all__ = ["WebSocket"]

logger = logging.getLogger("fullduplex")

DEFAULT_MAX_SIZE = 64 * 1024 * 1024
"""Largest message a `WebSocket` accepts by default (64 MiB): a larger one fails the connection.

The standard sets no limit; browsers stop at their memory's. A Python process usually serves
more than one page, so it gets a bound it can afford, against decompression bombs too.
"""

# RFC 6455 §4.1 (via RFC 2616 §2.2): a subprotocol is a token.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")

# Strong references to the WebSockets between construction and their close event: a browser
# keeps a WebSocket with listeners alive while it is open, whatever the page references.
_ACTIVE: set[WebSocket] = set()


class _Close(NamedTuple):
    """The closing handshake's start, queued behind the messages already sent."""

    code: int
    reason: str


_Task = Callable[..., None]


class WebSocket(EventTarget):
    """A WebSocket client with the browser's interface (WHATWG WebSockets Standard §3).

    Connecting starts at once. Inside a running asyncio event loop, events are dispatched by
    that loop; elsewhere, call `run_until_closed` to dispatch them (see the module docstring).

    Args:
        url: a ``ws://`` or ``wss://`` URL; ``http://`` and ``https://`` are taken as
            ``ws://`` and ``wss://``.
        protocols: a subprotocol or a list of them to offer; the server's choice is
            ``protocol``.
        ssl: (Python only) the `ssl.SSLContext` for ``wss://``; the system's default trust
            store when None, as a browser's.
        max_size: (Python only) the largest message accepted, in bytes; None for no limit.
            A larger message fails the connection (``error``, then ``close`` with 1006).

    Raises:
        DOMSyntaxError: the URL does not parse, has a fragment or another scheme; or a
            subprotocol is not a token or is given twice (case-insensitively).
        TypeError: ``protocols`` holds something other than strings.
        ValueError: ``ssl`` was given for a ``ws://`` URL.
    """

    CONNECTING: Final = 0
    OPEN: Final = 1
    CLOSING: Final = 2
    CLOSED: Final = 3

    onopen = EventHandler("open")
    onmessage = EventHandler("message")
    onerror = EventHandler("error")
    onclose = EventHandler("close")

    def __init__(
        self,
        url: str,
        protocols: str | Sequence[str] | None = None,
        *,
        ssl: ssl_module.SSLContext | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
    ) -> None:
        super().__init__()
        record = _parse_websocket_url(url)
        self._protocols = _check_protocols(protocols)
        self._url = record.href
        self._origin = record.origin
        self._ready_state = WebSocket.CONNECTING
        self._protocol = ""
        self._extensions = ""
        self._binary_type = "blob"
        self._buffered_amount = 0
        self._close_dispatched = False
        # Guards what both halves touch: readyState and bufferedAmount.
        self._lock = threading.Lock()

        # The network half's state, only touched on its loop.
        self._opener = connect(
            self._url,
            subprotocols=self._protocols,
            ssl=ssl,
            max_size=max_size,
            # `send` waits until the OS took every byte: then `_write` knows what left.
            write_limit=1,
        )
        self._connection: ClientConnection | None = None
        self._opening: asyncio.Future[ClientConnection] | None = None
        self._failing = False
        self._outgoing: deque[tuple[str | bytes, int] | _Close] = deque()
        self._writer_wakeup: asyncio.Future[None] | None = None

        self._tasks: queue.SimpleQueue[tuple[_Task, tuple[Any, ...]]] | None
        self._loop_thread: LoopThread | None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop_thread = LoopThread(f"fullduplex WebSocket {self._url}")
            self._loop = self._loop_thread.loop
            self._loop_ident = self._loop_thread.ident
            self._tasks = queue.SimpleQueue()
            self._loop_thread.submit(self._run())
        else:
            self._loop_thread = None
            self._loop_ident = threading.get_ident()
            self._tasks = None
            self._loop.create_task(self._run())
        _ACTIVE.add(self)

    # --- attributes ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL, as the URL parser serialized it (``ws://example.com/``)."""
        return self._url

    @property
    def readyState(self) -> int:
        """CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3)."""
        return self._ready_state

    @property
    def bufferedAmount(self) -> int:
        """Bytes of application data that `send` queued and the OS has not taken yet.

        It keeps growing when `send` is called after `close`: that data is never sent.
        """
        return self._buffered_amount

    @property
    def extensions(self) -> str:
        """The server's ``Sec-WebSocket-Extensions`` header, once open; else empty."""
        return self._extensions

    @property
    def protocol(self) -> str:
        """The subprotocol the server chose, once open; else empty."""
        return self._protocol

    @property
    def binaryType(self) -> str:
        """How ``message`` events carry binary data: ``"blob"`` (the default) as a `Blob`,
        ``"arraybuffer"`` as ``bytes``. Setting another value is ignored, as in the standard."""
        return self._binary_type

    @binaryType.setter
    def binaryType(self, value: str) -> None:
        if value in ("blob", "arraybuffer"):
            self._binary_type = value

    # --- methods ---------------------------------------------------------------------------

    def send(self, data: str | ReadableBuffer | Blob) -> None:
        """Queue a message: ``str`` as text, `Blob` or any bytes-like object as binary.

        Returns at once; ``bufferedAmount`` counts the bytes until the OS takes them. After
        `close`, the data is only counted, not sent, as the standard says.

        Raises:
            InvalidStateError: the connection is not open yet.
            TypeError: ``data`` is neither text nor bytes-like (JavaScript would send
                ``String(data)``; Python asks for an explicit conversion).
        """
        payload: str | bytes
        if isinstance(data, str):
            payload = to_usv_string(data)
            size = len(payload.encode())
        elif isinstance(data, Blob):
            payload = bytes(data)
            size = len(payload)
        else:
            try:
                # Copied now: the application may reuse its buffer, as in JavaScript.
                payload = data if type(data) is bytes else memoryview(data).tobytes()
            except TypeError:
                raise TypeError(
                    f"cannot send {type(data).__name__}; send str, bytes-like or Blob"
                ) from None
            size = len(payload)
        with self._lock:
            state = self._ready_state
            if state == WebSocket.CONNECTING:
                raise InvalidStateError("cannot send before the connection is open")
            self._buffered_amount += size
        if state == WebSocket.OPEN:
            self._call_in_loop(self._queue_outgoing, (payload, size))

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start closing: ``readyState`` becomes CLOSING; the ``close`` event follows.

        Messages already sent go out first. Without a code, the close frame carries none and
        the server usually answers with none: the close event then reports 1005. Closing a
        connection still opening fails it (``error``, then ``close`` with 1006).

        Args:
            code: 1000, or 3000-4999 (codes registered for applications); None for none.
            reason: at most 123 bytes of UTF-8; it needs a ``code``.

        Raises:
            InvalidAccessError: the code is outside those ranges, or a reason has no code.
            DOMSyntaxError: the reason exceeds 123 bytes in UTF-8.
            TypeError: ``code`` is not an ``int`` or ``reason`` not a ``str``.
        """
        if code is not None:
            if isinstance(code, bool) or not isinstance(code, int):
                raise TypeError(f"close code must be an int, not {type(code).__name__}")
            if code != 1000 and not 3000 <= code <= 4999:
                raise InvalidAccessError(f"close code {code} is neither 1000 nor in 3000-4999")
        text = ""
        if reason is not None:
            if not isinstance(reason, str):
                raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
            text = to_usv_string(reason)
            if text and code is None:
                # A close frame's reason follows its code (RFC 6455 §5.5.1); Chromium throws
                # InvalidAccessError for close(undefined, reason) too.
                raise InvalidAccessError("a close reason needs a close code")
            if len(text.encode()) > 123:
                raise DOMSyntaxError("the close reason exceeds 123 bytes in UTF-8")
        with self._lock:
            state = self._ready_state
            if state == WebSocket.CLOSING or state == WebSocket.CLOSED:
                return
            self._ready_state = WebSocket.CLOSING
        if state == WebSocket.CONNECTING:
            self._call_in_loop(self._fail_opening)
        else:
            # 1005 stands for "no code": the close frame then has no payload.
            self._call_in_loop(self._queue_outgoing, _Close(code or 1005, text))

    def run_until_closed(self, timeout: float | None = None) -> bool:
        """(Python only) Dispatch this WebSocket's events in the calling thread until its
        ``close`` event has been dispatched, or ``timeout`` seconds have passed.

        This is how a script outside an event loop receives events: events wait until it
        calls this method, as a browser's wait until the running script returns. Call it
        from one thread at a time; calling it again after a timeout goes on where it stopped.

        Returns:
            True once the ``close`` event has been dispatched, False on timeout.

        Raises:
            RuntimeError: the WebSocket was created inside a running event loop, which
                dispatches its events itself: there, await a future that ``onclose`` resolves.
        """
        tasks = self._tasks
        if tasks is None:
            raise RuntimeError(
                "this WebSocket was created in a running event loop, which dispatches its "
                "events; to wait for the end, await a future that onclose resolves"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._close_dispatched:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            try:
                task, args = tasks.get(timeout=remaining)
            except queue.Empty:
                return False
            task(*args)
        return True

    def __repr__(self) -> str:
        states = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")
        return f"<WebSocket url={self._url!r} readyState={states[self._ready_state]}>"

    # --- the tasks the network half queues: they run in the script's thread ----------------

    def _queue_task(self, task: _Task, *args: Any) -> None:
        if self._tasks is None:
            task(*args)
        else:
            self._tasks.put((task, args))

    def _open_task(self, protocol: str, extensions: str) -> None:
        with self._lock:
            if self._ready_state != WebSocket.CONNECTING:
                return  # `close` failed the connection before this task ran
            self._ready_state = WebSocket.OPEN
            self._protocol = protocol
            self._extensions = extensions
        self._fire(Event("open"))

    def _message_task(self, message: str | bytes) -> None:
        # WebSockets Standard §6: a message received after `close` is not delivered.
        if self._ready_state != WebSocket.OPEN:
            return
        data: str | bytes | Blob = message
        if isinstance(message, bytes) and self._binary_type == "blob":
            data = Blob._of(message)
        self._fire(MessageEvent("message", data=data, origin=self._origin))

    def _closing_task(self) -> None:
        with self._lock:
            if self._ready_state == WebSocket.OPEN:
                self._ready_state = WebSocket.CLOSING

    def _closed_task(self, failed: bool, code: int, reason: str, was_clean: bool) -> None:
        with self._lock:
            self._ready_state = WebSocket.CLOSED
        # WebSockets Standard §6: "error" if the connection was failed, then "close".
        if failed:
            self._fire(Event("error"))
        self._fire(CloseEvent("close", wasClean=was_clean, code=code, reason=reason))
        self._close_dispatched = True
        _ACTIVE.discard(self)
        if self._loop_thread is not None:
            self._loop_thread.submit(self._wind_down())

    # --- the network half: runs on the loop -----------------------------------------------

    def _call_in_loop(self, callback: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._loop_ident:
            callback(*args)
        else:
            self._loop.call_soon_threadsafe(callback, *args)

    async def _open(self) -> ClientConnection:
        return await self._opener

    async def _run(self) -> None:
        self._runner = asyncio.current_task()  # the loop itself only holds a weak reference
        connection: ClientConnection | None = None
        writer: asyncio.Task[None] | None = None
        try:
            if not self._failing:  # else `close` came first
                opening = self._opening = asyncio.ensure_future(self._open())
                try:
                    connection = await opening
                except asyncio.CancelledError:
                    if not self._failing:
                        raise
                except Exception as exc:
                    logger.info("WebSocket connection to %s failed: %s", self._url, exc)
            if connection is None:
                self._queue_task(self._closed_task, True, 1006, "", False)
                return
            self._connection = connection
            if self._protocols and connection.subprotocol is None:
                # WebSockets Standard §2 ("establish a WebSocket connection"): fail when
                # subprotocols were asked for and the response names none.
                logger.info("WebSocket server at %s chose no subprotocol", self._url)
                self._fail_opening()
            else:
                writer = self._loop.create_task(self._write(connection))
                headers = connection.response.headers
                extensions = ", ".join(headers.get_all("Sec-WebSocket-Extensions"))
                self._queue_task(self._open_task, connection.subprotocol or "", extensions)
                await self._read(connection)
            await connection.wait_closed()
            protocol = connection.protocol
            if self._failing or protocol.failure is not None:
                if protocol.failure is not None:
                    logger.info("WebSocket to %s failed: %s", self._url, protocol.failure)
                self._queue_task(self._closed_task, True, 1006, "", False)
            else:
                code = int(protocol.close_code or 1006)  # a number, not a CloseCode
                self._queue_task(
                    self._closed_task, False, code, protocol.close_reason, protocol.was_clean
                )
        except asyncio.CancelledError:
            # The event loop is shutting down with the connection open: drop it quietly.
            if connection is not None and connection.transport is not None:
                connection.transport.abort()
            _ACTIVE.discard(self)
            raise
        finally:
            if writer is not None:
                writer.cancel()

    async def _read(self, connection: ClientConnection) -> None:
        try:
            while True:
                self._queue_task(self._message_task, await connection.recv())
        except ConnectionClosed:
            pass
        if connection.state is State.CLOSING:
            # The closing handshake started (from either side) and the TCP connection is open.
            self._queue_task(self._closing_task)

    async def _write(self, connection: ClientConnection) -> None:
        outgoing = self._outgoing
        while True:
            while not outgoing:
                self._writer_wakeup = self._loop.create_future()
                await self._writer_wakeup
            item = outgoing.popleft()
            if isinstance(item, _Close):
                await connection.close(item.code, item.reason)
                return
            payload, size = item
            try:
                await connection.send(payload)
            except ConnectionClosed:
                return  # unsent data stays in bufferedAmount, as the standard says
            with self._lock:
                self._buffered_amount -= size

    def _queue_outgoing(self, item: tuple[str | bytes, int] | _Close) -> None:
        self._outgoing.append(item)
        waiter = self._writer_wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail_opening(self) -> None:
        """Fail the connection before it opened: from `close`, or for a missing subprotocol."""
        self._failing = True
        if self._opening is not None:
            self._opening.cancel()
        connection = self._connection
        if connection is not None and connection.transport is not None:
            connection.transport.abort()

    def _run_awaitable(self, awaitable: Any, event: Event) -> None:
        if threading.get_ident() == self._loop_ident:
            super()._run_awaitable(awaitable, event)
        else:
            # A plain script dispatched the event: its coroutine listeners run on our loop.
            self._loop.call_soon_threadsafe(super()._run_awaitable, awaitable, event)

    async def _wind_down(self) -> None:
        """Stop the background loop once the listeners' coroutines are done."""
        while self._listener_tasks:
            await asyncio.wait(set(self._listener_tasks))
        self._loop.stop()


def _parse_websocket_url(url: str) -> URLRecord:
    """WebSockets Standard §3.1, constructor steps 1-5: parse, map the scheme, no fragment."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    try:
        record = parse_special_url(url)
    except URLParseError as exc:
        raise DOMSyntaxError(f"{url!r} is not a valid WebSocket URL: {exc}") from None
    scheme = {"http": "ws", "https": "wss"}.get(record.scheme, record.scheme)
    if scheme not in ("ws", "wss"):
        raise DOMSyntaxError(f"{url!r} is not a WebSocket URL: the scheme must be ws or wss")
    if record.fragment is not None:
        raise DOMSyntaxError(f"{url!r} has a fragment, which WebSocket URLs may not have")
    return dataclasses.replace(record, scheme=scheme)


def _check_protocols(protocols: str | Sequence[str] | None) -> tuple[str, ...]:
    """WebSockets Standard §3.1, constructor steps 6-7."""
    if protocols is None:
        return ()
    items = [protocols] if isinstance(protocols, str) else list(protocols)
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"a subprotocol must be a str, not {type(item).__name__}")
        if not _TOKEN.fullmatch(item):
            raise DOMSyntaxError(f"subprotocol {item!r} is not a token (RFC 6455 §4.1)")
        # web-platform-tests' Create-protocols-repeated-case-insensitive: "echo", "eCho" clash.
        if item.lower() in seen:
            raise DOMSyntaxError(f"subprotocol {item!r} is given twice")
        seen.add(item.lower())
    return tuple(items)
