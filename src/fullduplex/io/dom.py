"""The DOM pieces the WHATWG `WebSocket` stands on: events, `EventTarget`, `DOMException`, `Blob`.

Only what a WebSocket needs is here, spelled as the DOM Standard spells it (``addEventListener``,
``currentTarget``...), so that code ported from a browser reads the same. Where JavaScript passes
a dictionary (``{once: true}``, ``new CloseEvent("close", {code: 1000})``), Python passes keyword
arguments. A WebSocket has no parent in any tree, so events never capture or bubble: dispatch runs
the target's own listeners, capturing ones first, as the DOM Standard's "at target" phase does.

Listeners may be plain functions or coroutine functions. Dispatch is synchronous, as in a
browser: a listener's return value is not waited for. A coroutine (any awaitable) returned by a
listener runs as a task of the target's event loop, like the promise of a JavaScript async
function; its exception, like a plain listener's, is reported to the ``fullduplex`` logger and
does not stop the other listeners.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, Protocol, overload

from ..exceptions import InvalidState

__all__ = [
    "DOMException",
    "DOMSyntaxError",
    "InvalidStateError",
    "InvalidAccessError",
    "Event",
    "MessageEvent",
    "CloseEvent",
    "EventTarget",
    "Blob",
]

logger = logging.getLogger("fullduplex")


def to_usv_string(text: str) -> str:
    """Convert ``text`` as Web IDL converts a JavaScript string to a ``USVString``.

    A Python string may hold surrogate code points, as a JavaScript string may: a high one
    followed by a low one is one character, a lone one becomes U+FFFD.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


# --- DOMException --------------------------------------------------------------------------


class DOMException(Exception):
    """The web platform's exception (Web IDL §2.8): ``name`` says which one it is.

    The subclasses below are the ones `WebSocket` raises; catch them by class, or catch
    `DOMException` and look at ``name`` as JavaScript code does.

    Args:
        message: a description for humans.
        name: the error name from the Web IDL table (``"SyntaxError"``...).
    """

    # Web IDL's table of legacy code values, for the names this module uses.
    _LEGACY_CODES: ClassVar[dict[str, int]] = {
        "InvalidStateError": 11,
        "SyntaxError": 12,
        "InvalidAccessError": 15,
    }

    def __init__(self, message: str = "", name: str = "Error") -> None:
        super().__init__(message)
        self.name = name
        self.message = message

    @property
    def code(self) -> int:
        """The legacy numeric code (``SYNTAX_ERR`` is 12...), 0 for names without one."""
        return self._LEGACY_CODES.get(self.name, 0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {self.name!r})"


class DOMSyntaxError(DOMException, ValueError):
    """``SyntaxError``: a bad URL, subprotocol list, or close reason.

    Named ``DOMSyntaxError`` so as not to shadow Python's own `SyntaxError`; also a `ValueError`.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message, "SyntaxError")


class InvalidStateError(DOMException, InvalidState):
    """``InvalidStateError``: the object's state forbids the call (``send`` while connecting).

    Also a `fullduplex.InvalidState`, the library's own error for the same mistake.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message, "InvalidStateError")


class InvalidAccessError(DOMException, ValueError):
    """``InvalidAccessError``: a close code the application may not use; also a `ValueError`."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message, "InvalidAccessError")


# --- Events --------------------------------------------------------------------------------


class Event:
    """A DOM event (DOM Standard §2.2).

    Args:
        type: the event type (``"open"``, ``"error"``...).
        bubbles, cancelable, composed: as the ``EventInit`` dictionary's members.
    """

    NONE: ClassVar[int] = 0
    CAPTURING_PHASE: ClassVar[int] = 1
    AT_TARGET: ClassVar[int] = 2
    BUBBLING_PHASE: ClassVar[int] = 3

    def __init__(
        self, type: str, *, bubbles: bool = False, cancelable: bool = False, composed: bool = False
    ) -> None:
        self._type = type
        self._bubbles = bubbles
        self._cancelable = cancelable
        self._composed = composed
        self._target: EventTarget | None = None
        self._current_target: EventTarget | None = None
        self._phase = Event.NONE
        self._canceled = False
        self._stop_immediate = False
        self._dispatching = False
        self._trusted = False
        # DOM: milliseconds; here since the Unix epoch, as the legacy DOMTimeStamp was.
        self._time_stamp = time.time() * 1000

    @property
    def type(self) -> str:
        return self._type

    @property
    def target(self) -> EventTarget | None:
        return self._target

    @property
    def currentTarget(self) -> EventTarget | None:
        return self._current_target

    @property
    def eventPhase(self) -> int:
        return self._phase

    @property
    def bubbles(self) -> bool:
        return self._bubbles

    @property
    def cancelable(self) -> bool:
        return self._cancelable

    @property
    def composed(self) -> bool:
        return self._composed

    @property
    def defaultPrevented(self) -> bool:
        return self._canceled

    @property
    def isTrusted(self) -> bool:
        """True for events the WebSocket fires itself, False for `dispatchEvent`'s."""
        return self._trusted

    @property
    def timeStamp(self) -> float:
        """When the event was created, in milliseconds since the Unix epoch."""
        return self._time_stamp

    def preventDefault(self) -> None:
        if self._cancelable:
            self._canceled = True

    def stopPropagation(self) -> None:
        """Nothing to stop: a WebSocket's events never propagate."""

    def stopImmediatePropagation(self) -> None:
        """Skip the listeners not yet called for this dispatch."""
        self._stop_immediate = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} type={self._type!r}>"


class MessageEvent(Event):
    """The ``message`` event (HTML Standard §9.2): ``data`` and the sender's ``origin``.

    Args:
        data: ``str`` for a text message; for a binary one, `Blob` or ``bytes`` as the
            WebSocket's ``binaryType`` says.
        origin: the serialized origin of the WebSocket's URL (``"ws://example.com:8000"``).
        lastEventId, source, ports: as in the standard; a WebSocket leaves them empty.
    """

    def __init__(
        self,
        type: str,
        *,
        data: Any = None,
        origin: str = "",
        lastEventId: str = "",
        source: object = None,
        ports: Iterable[object] = (),
        bubbles: bool = False,
        cancelable: bool = False,
        composed: bool = False,
    ) -> None:
        super().__init__(type, bubbles=bubbles, cancelable=cancelable, composed=composed)
        self._data = data
        self._origin = origin
        self._last_event_id = lastEventId
        self._source = source
        self._ports = tuple(ports)

    @property
    def data(self) -> Any:
        return self._data

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def lastEventId(self) -> str:
        return self._last_event_id

    @property
    def source(self) -> object:
        return self._source

    @property
    def ports(self) -> tuple[object, ...]:
        return self._ports


class CloseEvent(Event):
    """The ``close`` event (WebSockets Standard §5): how the connection ended.

    Args:
        wasClean: whether the closing handshake completed.
        code: the close code the server sent; 1005 if its close frame had none, 1006 if
            the connection ended without one.
        reason: the reason the server sent, or an empty string.
    """

    def __init__(
        self,
        type: str,
        *,
        wasClean: bool = False,
        code: int = 0,
        reason: str = "",
        bubbles: bool = False,
        cancelable: bool = False,
        composed: bool = False,
    ) -> None:
        super().__init__(type, bubbles=bubbles, cancelable=cancelable, composed=composed)
        self._was_clean = wasClean
        self._code = code
        self._reason = reason

    @property
    def wasClean(self) -> bool:
        return self._was_clean

    @property
    def code(self) -> int:
        return self._code

    @property
    def reason(self) -> str:
        return self._reason

    def __repr__(self) -> str:
        return (
            f"<CloseEvent type={self._type!r} code={self._code} reason={self._reason!r}"
            f" wasClean={self._was_clean}>"
        )


# --- EventTarget ---------------------------------------------------------------------------


class EventListener(Protocol):
    """An object listener: its ``handleEvent`` method is called (DOM Standard §2.7)."""

    def handleEvent(self, event: Event, /) -> object: ...


Listener = Callable[[Any], object] | EventListener


class _Entry:
    """One registered listener (DOM Standard's "event listener" struct)."""

    __slots__ = ("callback", "capture", "once", "removed")

    def __init__(self, callback: Listener, capture: bool, once: bool) -> None:
        self.callback = callback
        self.capture = capture
        self.once = once
        self.removed = False


class EventTarget:
    """Something events are dispatched to: ``addEventListener``, ``dispatchEvent``...

    The ``on<type>`` attributes (``onopen``...) are `EventHandler` descriptors on subclasses.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[_Entry]] = {}
        self._handler_values: dict[str, Callable[[Any], object]] = {}
        self._handler_entries: dict[str, _Entry] = {}
        # asyncio keeps only weak references to tasks: these are the listeners' still running.
        self._listener_tasks: set[asyncio.Future[Any]] = set()

    def addEventListener(
        self,
        type: str,
        callback: Listener | None,
        *,
        capture: bool = False,
        once: bool = False,
    ) -> None:
        """Call ``callback(event)`` for each event of ``type``; the same callback (with the
        same ``capture``) is registered once. ``once=True`` removes it after its first call.

        ``callback`` may be a function, a coroutine function, or an object with a
        ``handleEvent`` method; None does nothing, as in the standard.
        """
        if callback is None:
            return
        entries = self._listeners.setdefault(type, [])
        for entry in entries:
            if entry.callback == callback and entry.capture == capture:
                return
        entries.append(_Entry(callback, capture, once))

    def removeEventListener(
        self, type: str, callback: Listener | None, *, capture: bool = False
    ) -> None:
        """Remove the listener registered with this ``callback`` and ``capture``, if any."""
        for entry in self._listeners.get(type, ()):
            if entry.callback == callback and entry.capture == capture:
                self._remove(type, entry)
                return

    def dispatchEvent(self, event: Event) -> bool:
        """Dispatch an event the application made; return False if a listener canceled it.

        Raises:
            InvalidStateError: ``event`` is being dispatched already.
        """
        if event._dispatching:
            raise InvalidStateError("the event is already being dispatched")
        event._trusted = False
        return self._dispatch(event)

    def _fire(self, event: Event) -> None:
        """Fire an event of the target's own making (``isTrusted`` is True)."""
        event._trusted = True
        self._dispatch(event)

    def _dispatch(self, event: Event) -> bool:
        event._dispatching = True
        event._target = event._current_target = self
        event._phase = Event.AT_TARGET
        try:
            entries = tuple(self._listeners.get(event._type, ()))
            # DOM Standard: at the target, capturing listeners run before the others.
            for capture in (True, False):
                for entry in entries:
                    if event._stop_immediate:
                        break
                    if entry.capture is capture and not entry.removed:
                        if entry.once:
                            self._remove(event._type, entry)
                        self._invoke(entry.callback, event)
        finally:
            event._dispatching = False
            event._current_target = None
            event._phase = Event.NONE
            event._stop_immediate = False
        return not event._canceled

    def _invoke(self, callback: Listener, event: Event) -> None:
        try:
            result = callback(event) if callable(callback) else callback.handleEvent(event)
            if inspect.isawaitable(result):
                self._run_awaitable(result, event)
        except Exception:
            logger.exception("an %r listener raised an exception", event.type)

    def _run_awaitable(self, awaitable: Awaitable[object], event: Event) -> None:
        """Run what a coroutine listener returned as a task, without waiting for it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            logger.error("an %r listener returned a coroutine, but no event loop runs", event.type)
            return
        self._track(asyncio.ensure_future(awaitable, loop=loop), event.type)

    def _track(self, task: asyncio.Future[Any], event_type: str) -> None:
        tasks = self._listener_tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(_make_reporter(event_type))

    def _remove(self, type: str, entry: _Entry) -> None:
        entry.removed = True
        entries = self._listeners.get(type)
        if entries is not None and entry in entries:
            entries.remove(entry)


def _make_reporter(event_type: str) -> Callable[[asyncio.Future[Any]], None]:
    def report(task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "an %r listener raised an exception", event_type, exc_info=task.exception()
            )

    return report


class EventHandler:
    """An ``on<type>`` attribute (HTML Standard §8.1.8): one listener that can be replaced.

    The handler joins the listeners when first set, at the end; replacing it keeps its place;
    setting None removes it. A value that is not callable is taken as None, as Web IDL's
    ``[LegacyTreatNonCallableAsNull]`` says.
    """

    def __init__(self, type: str) -> None:
        self.type = type

    def __set_name__(self, owner: type, name: str) -> None:
        self.__doc__ = f"The ``{self.type}`` event handler, or None."

    @overload
    def __get__(self, target: None, owner: type | None = None) -> EventHandler: ...

    @overload
    def __get__(
        self, target: EventTarget, owner: type | None = None
    ) -> Callable[[Any], object] | None: ...

    def __get__(
        self, target: EventTarget | None, owner: type | None = None
    ) -> EventHandler | Callable[[Any], object] | None:
        if target is None:
            return self
        return target._handler_values.get(self.type)

    def __set__(self, target: EventTarget, value: object) -> None:
        type = self.type
        if not callable(value):
            target._handler_values.pop(type, None)
            entry = target._handler_entries.pop(type, None)
            if entry is not None:
                target._remove(type, entry)
            return
        target._handler_values[type] = value
        if type not in target._handler_entries:
            entry = _Entry(_HandlerCaller(target, type), False, False)
            target._handler_entries[type] = entry
            target._listeners.setdefault(type, []).append(entry)


class _HandlerCaller:
    """The listener an event handler attribute registers: calls the attribute's value."""

    __slots__ = ("target", "type")

    def __init__(self, target: EventTarget, type: str) -> None:
        self.target = target
        self.type = type

    def __call__(self, event: Event) -> object:
        handler = self.target._handler_values.get(self.type)
        return None if handler is None else handler(event)


# --- Blob ----------------------------------------------------------------------------------


class Blob:
    """Immutable binary data (File API §3), what a ``message`` event carries for binary data
    while ``binaryType`` is ``"blob"`` (the default).

    ``bytes(blob)`` gives its content at once; the File API's promise-returning methods are
    coroutines here (``await blob.text()``).

    Args:
        blobParts: ``bytes``-like objects, strings (UTF-8 encoded) or other blobs, joined.
        type: a MIME type, lowercased; empty if unknown (a WebSocket's blobs have none).
    """

    __slots__ = ("_data", "_type")

    def __init__(
        self,
        blobParts: Iterable[str | builtins.bytes | bytearray | memoryview | Blob] = (),
        *,
        type: str = "",
    ) -> None:
        parts: list[builtins.bytes] = []
        for part in blobParts:
            if isinstance(part, str):
                parts.append(to_usv_string(part).encode())
            elif isinstance(part, Blob):
                parts.append(part._data)
            else:
                parts.append(builtins.bytes(part))
        self._data: builtins.bytes = b"".join(parts)
        # File API: a type with a character outside U+0020-U+007E becomes the empty string.
        self._type = type.lower() if all(" " <= c <= "~" for c in type) else ""

    @classmethod
    def _of(cls, data: builtins.bytes) -> Blob:
        blob = cls.__new__(cls)
        blob._data = data
        blob._type = ""
        return blob

    @property
    def size(self) -> int:
        """The length in bytes."""
        return len(self._data)

    @property
    def type(self) -> str:
        return self._type

    def __bytes__(self) -> builtins.bytes:
        return self._data

    async def bytes(self) -> builtins.bytes:
        """The content."""
        return self._data

    async def arrayBuffer(self) -> builtins.bytes:
        """The content; ``bytes`` stands for ArrayBuffer, as with ``binaryType``."""
        return self._data

    async def text(self) -> str:
        """The content decoded as UTF-8, invalid bytes replaced with U+FFFD."""
        return self._data.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Blob size={len(self._data)} type={self._type!r}>"
