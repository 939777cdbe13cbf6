"""The WebSocket connection state machine shared by both roles (RFC 6455 §5-§7), sans-I/O.

Theory of operation
-------------------
The I/O layer feeds received bytes to `receive_data` (and the end of the stream to
`receive_eof`), then reads `events_received()` and writes `data_to_send()`. Application
sends (`send_text`, `send_close` ...) also only queue bytes. Nothing here blocks, sleeps or
touches a socket; time is the I/O layer's, asked for through `close_expected()`.

The public `State` (the WHATWG ``readyState``) moves only forward::

    CONNECTING --handshake ok--> OPEN --close sent or received--> CLOSING --EOF--> CLOSED
         \\--handshake failed / EOF--------------------------------------------------^

Inside, a `_Phase` says where the closing handshake (§7) stands, and the tables
`_SERVER_TRANSITIONS` and `_CLIENT_TRANSITIONS` (built by `_transitions`) list every move of
each role as ``phase --input--> phase``:

- OPEN --close sent--> CLOSE_SENT: wait for the peer's close frame (§7.1.2).
- OPEN --close received--> CLOSE_RECEIVED: the echo goes out at once (§5.5.1) ...
- ... and once a close frame went each way, the server ends the TCP connection (ENDING), the
  client waits for it to (AWAITING_EOF; §7.1.1).
- --failed--> FAILING: the peer broke the protocol, or the application gave up (§7.1.7): a close
  frame with the error's code is out, further data is dropped, the peer's close is awaited.
  A second failure, a close frame that cannot be parsed, or text that can never become valid,
  *gives up* on a clean close: ENDING.
- ENDING: the I/O layer writes `data_to_send()` and closes the transport
  (`should_close_transport`).
- --EOF--> CLOSED, from anywhere.

`close_sent`, `close_received` and `failure` keep what was sent, received and went wrong; only
`_enter` moves the phase, and it alone sets `state` and `should_close_transport`.
"""

from __future__ import annotations

import codecs
import enum
import os
from collections.abc import Callable, Sequence

from ..exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    FullDuplexError,
    InvalidPayload,
    InvalidState,
    MessageTooBig,
    PolicyViolation,
    ProtocolViolation,
)
from .events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    Event,
    PingReceived,
    PongReceived,
    TextReceived,
)
from .extensions.base import Extension
from .frames import (
    MAX_CONTROL_PAYLOAD,
    CloseCode,
    Frame,
    FrameParser,
    Opcode,
    bind_deliverer,
    parse_close_payload,
    serialize_close_payload,
    serialize_frame,
    serialize_message,
)

__all__ = [
    "State",
    "Connection",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_FRAGMENTS",
]

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
"""Largest message accepted by default (1 MiB), after decompression."""

DEFAULT_MAX_FRAGMENTS = 1 << 20
"""Largest number of frames one message may be split into by default."""

Buffer = bytes | bytearray | memoryview

# "No limit" as a number that still leaves room for arithmetic in C (zlib's max_length).
_NO_LIMIT = 2**62

# A binary message up to this size is copied behind its header into one bytes object (one
# buffer to write); a larger one is written from where it is, beside its header.
_COPY_BINARY_UP_TO = 16 * 1024


class State(enum.IntEnum):
    """Connection states; the values match the WHATWG ``readyState`` numbers."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class _Phase(enum.Enum):
    """Where the connection stands, the closing handshake included; `State` is its public view."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSE_SENT = "close sent"  # waiting for the peer's close frame
    FAILING = "failing"  # failed, close sent, waiting for the peer's close frame
    CLOSE_RECEIVED = "close received"  # the echo of the peer's close goes out next
    AWAITING_EOF = "awaiting EOF"  # client: both close frames crossed; the server ends TCP
    ENDING = "ending"  # the I/O layer closes the transport
    CLOSED = "closed"


class _Input(enum.Enum):
    """What moves a `_Phase`."""

    HANDSHAKE_SUCCEEDED = "handshake succeeded"
    ANSWERED_WITHOUT_UPGRADE = "answered without upgrade"  # a refusal, a page, a failure
    CLOSE_SENT = "close sent"
    CLOSE_RECEIVED = "close received"
    FAILED = "failed"
    GAVE_UP = "gave up"  # no clean close is possible any more
    EOF = "EOF"


def _transitions(*, is_client: bool) -> dict[_Phase, dict[_Input, _Phase]]:
    """Every move of one role's phases; the roles differ only once both close frames crossed."""
    both_closed = _Phase.AWAITING_EOF if is_client else _Phase.ENDING
    table = {
        _Phase.CONNECTING: {
            _Input.HANDSHAKE_SUCCEEDED: _Phase.OPEN,
            _Input.ANSWERED_WITHOUT_UPGRADE: _Phase.CLOSED,
            _Input.FAILED: _Phase.CLOSED,
        },
        _Phase.OPEN: {
            _Input.CLOSE_SENT: _Phase.CLOSE_SENT,
            _Input.CLOSE_RECEIVED: _Phase.CLOSE_RECEIVED,
            _Input.FAILED: _Phase.FAILING,
        },
        _Phase.CLOSE_SENT: {_Input.CLOSE_RECEIVED: both_closed, _Input.FAILED: _Phase.FAILING},
        _Phase.FAILING: {_Input.CLOSE_RECEIVED: both_closed, _Input.GAVE_UP: _Phase.ENDING},
        _Phase.CLOSE_RECEIVED: {_Input.CLOSE_SENT: both_closed},
        _Phase.AWAITING_EOF: {_Input.FAILED: _Phase.ENDING, _Input.GAVE_UP: _Phase.ENDING},
        _Phase.ENDING: {_Input.FAILED: _Phase.ENDING, _Input.GAVE_UP: _Phase.ENDING},
        _Phase.CLOSED: {_Input.FAILED: _Phase.CLOSED, _Input.GAVE_UP: _Phase.CLOSED},
    }
    for moves in table.values():
        moves[_Input.EOF] = _Phase.CLOSED
    return table


_CLIENT_TRANSITIONS = _transitions(is_client=True)
_SERVER_TRANSITIONS = _transitions(is_client=False)
_STATE_OF_PHASE = {
    _Phase.CONNECTING: State.CONNECTING,
    _Phase.OPEN: State.OPEN,
    _Phase.CLOSED: State.CLOSED,
} | {
    phase: State.CLOSING
    for phase in (
        _Phase.CLOSE_SENT,
        _Phase.FAILING,
        _Phase.CLOSE_RECEIVED,
        _Phase.AWAITING_EOF,
        _Phase.ENDING,
    )
}
_ENDS_TRANSPORT = frozenset({_Phase.ENDING, _Phase.CLOSED})

_UTF8_DECODER = codecs.getincrementaldecoder("utf-8")

# Enum members as plain module constants: on Python 3.11, reading `State.OPEN` costs about
# 200 ns, which adds up on paths taken for every message.
_CONNECTING, _OPEN, _CLOSING, _CLOSED = State
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = Opcode


class Connection:
    """The part of a WebSocket connection that both roles share: frames, messages, closing.

    Use `ServerProtocol` or `ClientProtocol`, which add each role's opening handshake.

    Args:
        is_client: True for the client role (masks frames it sends, refuses masked frames).
        max_message_size: largest message accepted, in bytes after decompression; a larger
            one fails the connection with 1009 before its excess is buffered. None: no limit.
        max_frame_size: largest frame payload accepted, in bytes. None: no limit.
        max_fragments: largest number of frames per message (1009 beyond).
    """

    __slots__ = (
        "is_client",
        "state",
        "max_message_size",
        "max_frame_size",
        "max_fragments",
        "extensions",
        "subprotocol",
        "close_sent",
        "close_received",
        "failure",
        "should_close_transport",
        "_phase",
        "_transitions",
        "_parser",
        "_events",
        "_output",
        "_message_opcode",
        "_message_parts",
        "_message_fragments",
        "_utf8_decoder",
        "_partial_decoder",
        "_partial_validated",
        "_sending_fragmented",
    )

    def __init__(
        self,
        *,
        is_client: bool,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    ) -> None:
        self.is_client = is_client
        self.state = _CONNECTING
        self.max_message_size = max_message_size if max_message_size is not None else _NO_LIMIT
        self.max_frame_size = max_frame_size if max_frame_size is not None else _NO_LIMIT
        self.max_fragments = max_fragments
        self.extensions: Sequence[Extension] = ()
        """The extensions negotiated in the handshake, in order."""
        self.subprotocol: str | None = None
        """The subprotocol negotiated in the handshake, or None."""
        self.close_sent: tuple[int, str] | None = None
        """The code and reason of the close frame this side sent, once sent."""
        self.close_received: tuple[int, str] | None = None
        """The code and reason of the peer's close frame, once received."""
        self.failure: FullDuplexError | None = None
        """Why the connection failed, if it did."""
        self.should_close_transport = False
        """True once the I/O layer should close the transport, after writing `data_to_send()`."""
        self._phase = _Phase.CONNECTING
        self._transitions = _CLIENT_TRANSITIONS if is_client else _SERVER_TRANSITIONS
        self._parser = FrameParser(expect_masked=not is_client)
        self._events: list[Event] = []
        self._output: list[Buffer] = []
        # The message being received: its opcode (None between messages), bytes, fragments.
        self._message_opcode: int | None = None
        self._message_parts = bytearray()
        self._message_fragments = 0
        self._utf8_decoder: codecs.IncrementalDecoder | None = None
        # Validates the head frame's text while it arrives; how many of its bytes it has seen.
        self._partial_decoder: codecs.IncrementalDecoder | None = None
        self._partial_validated = 0
        self._sending_fragmented = False

    # --- state ---------------------------------------------------------------------------

    def _enter(self, happened: _Input) -> None:
        """Move to the phase that ``happened`` leads to, per `_TRANSITIONS`."""
        phase = self._transitions[self._phase].get(happened)
        if phase is None:
            raise AssertionError(f"no move from {self._phase.value} on {happened.value}")
        self._phase = phase
        self.state = _STATE_OF_PHASE[phase]
        self.should_close_transport = phase in _ENDS_TRANSPORT

    @property
    def close_code(self) -> int | None:
        """The close code to report: the peer's, 1005 if its close had none, 1006 if it never
        sent one and the connection is closed, None while the connection is still open."""
        if self.close_received is not None:
            return self.close_received[0]
        if self.state is _CLOSED:
            return CloseCode.ABNORMAL_CLOSURE
        return None

    @property
    def close_reason(self) -> str:
        """The reason in the peer's close frame, or an empty string."""
        return self.close_received[1] if self.close_received is not None else ""

    @property
    def was_clean(self) -> bool:
        """Whether the closing handshake completed: a close frame went each way."""
        return self.close_sent is not None and self.close_received is not None

    def closed_error(self) -> ConnectionClosed:
        """Return the exception that reports this connection's closure to the application.

        Its code is the peer's close code when the peer sent a close frame; otherwise the code
        this side sent (1011 after a keepalive timeout, 1002 after a protocol violation...);
        otherwise 1006.
        """
        if self.close_received is not None:
            code, reason = self.close_received
        elif self.close_sent is not None:
            code, reason = self.close_sent
        else:
            code, reason = CloseCode.ABNORMAL_CLOSURE, ""
        is_normal = self.was_clean and code in (1000, 1001, 1005)
        error = ConnectionClosedOK if is_normal else ConnectionClosedError
        return error(code, reason, self.was_clean)

    def close_expected(self) -> bool:
        """Whether the I/O layer should start its close timer.

        True when this side waits for the peer: for its close frame after sending one, or, on
        the client, for the server to end the TCP connection after the closing handshake
        (RFC 6455 §7.1.1). When the timer fires, the I/O layer closes the transport itself.
        """
        return self.state is _CLOSING

    # --- I/O layer input -----------------------------------------------------------------

    def receive_data(self, data: Buffer) -> None:
        """Take bytes received from the network.

        Afterwards, read `events_received()` and write `data_to_send()`. The peer's protocol
        errors never raise here: they fail the connection and appear as `ConnectionFailed`.
        Receiving queues bytes to send (a pong, a close frame) only along with an event, and
        an OPEN connection leaves OPEN only along with one: after a call that produced none
        on an open connection, there is nothing to write and nothing to close.
        """
        if self.state is _CLOSED or self.should_close_transport:
            return
        if self.state is _CONNECTING:
            self._receive_handshake_data(data)
            return
        parser = self._parser
        if self._takes_plain_messages():
            # The fast pass, once per read; _parse_frames goes on from the first frame it left.
            budget = min(self.max_message_size, self.max_frame_size)
            if parser.feed_messages(data, budget, self._events, TextReceived, BinaryReceived):
                self._forget_partial_text()
            if not parser.buffered:
                return
        else:
            parser.feed(data)
        self._parse_frames()

    def receive_messages(self, data: Buffer) -> list[str | bytes]:
        """Take bytes received from the network, as `receive_data`, and return the leading
        whole messages bare: ``str`` for text, ``bytes`` for binary.

        The fast way for an I/O layer that needs no event objects: the messages in one plain
        frame each at the head of the stream (the usual read) come back in a list, in order;
        everything after them (control frames, fragments, errors, and messages behind those)
        becomes events as with `receive_data`. Handle the returned messages first, then read
        `events_received()`.
        """
        # State OPEN also means no close frame went either way and nothing failed.
        if (
            self.state is not _OPEN
            or self._message_opcode is not None
            or self.extensions
            or self._events
        ):
            self.receive_data(data)
            return []
        messages: list[str | bytes] = []
        budget = min(self.max_message_size, self.max_frame_size)
        is_left_over = self._parser.feed_bare_messages(data, budget, messages)
        if messages and self._partial_decoder is not None:
            self._forget_partial_text()
        if is_left_over:
            self._parse_frames()
        return messages

    def message_deliverer(
        self, callback: Callable[[str | bytes], object]
    ) -> Callable[[Buffer, int], int | tuple[int, Exception]] | None:
        """Return the fastest way to receive for an I/O layer that hands every message to
        ``callback``, or None while the connection is not in the state it needs.

        That state: OPEN, no extension negotiated, and nothing partly received (no frame and
        no fragmented message; no event waiting), so that a frame with FIN set and a TEXT or
        BINARY opcode at the head of the next bytes is a whole message. Ask again after each
        call to `receive_data` or `receive_messages`, which may change it.

        The function returned, ``deliver(buffer, nbytes)``, takes the leading whole messages
        in one plain frame each from ``buffer[:nbytes]`` and calls ``callback(message)`` for
        each, in order (``str`` for text, ``bytes`` for binary), with the same checks as
        `receive_messages` (masking, size limits, UTF-8), and stops before anything else: a
        control frame, a fragment, an incomplete or invalid frame, or once the connection is
        no longer OPEN (``callback`` may close or fail it). It returns the number of bytes
        taken, or ``(taken, exception)`` when ``callback`` raised, the bytes of that message
        included. Give the bytes after those taken to `receive_messages`.
        """
        if (
            self.state is not _OPEN
            or self.extensions
            or self._message_opcode is not None
            or self._events
            or self._parser.buffered
            or self._partial_decoder is not None
        ):
            return None
        # State OPEN implies that no frame was refused, so the parser skips no bytes either.
        return bind_deliverer(
            callback,
            self,
            _OPEN,
            0 if self.is_client else 0x80,
            min(self.max_message_size, self.max_frame_size),
        )

    def receive_eof(self) -> None:
        """Take the end of the stream: the peer closed its side of the TCP connection."""
        if self.state is _CLOSED:
            return
        if self.state is _CONNECTING:
            self._receive_handshake_eof()
            if self.state is _CLOSED:  # the handshake failed
                return
        self._enter(_Input.EOF)

    def events_received(self) -> list[Event]:
        """Return and forget the events produced since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[Buffer]:
        """Return and forget the bytes queued for the network, as buffers to write in order."""
        output, self._output = self._output, []
        return output

    # --- sending -------------------------------------------------------------------------

    def send_text(self, data: str | Buffer, *, fin: bool = True) -> None:
        """Queue a text message, or its first fragment when ``fin`` is False.

        Args:
            data: the text; bytes are taken as already UTF-8 encoded.

        Raises:
            InvalidState: the connection is not open, or a fragmented message is unfinished.
        """
        self._send_data(_TEXT, data.encode() if isinstance(data, str) else data, fin)

    def send_message(self, message: str | bytes) -> None:
        """Queue one whole message: text for ``str``, binary for ``bytes``.

        The one-call way to send an unfragmented message; a server's is framed in one bytes
        object (`serialize_message`).

        Raises:
            InvalidState: the connection is not open, or a fragmented message is unfinished.
            TypeError: ``message`` is neither exactly ``str`` nor ``bytes``.
        """
        frame = self._plain_frame(message)
        if frame is not None:
            self._output.append(frame)
        elif type(message) is str:
            self.send_text(message)
        elif type(message) is bytes:
            self.send_binary(message)
        else:
            raise TypeError(f"cannot send {type(message).__name__}; use str or bytes")

    def frame_message_if_idle(self, message: str | bytes) -> bytes | None:
        """Return the frame of one whole message for the I/O layer to write itself, or None
        when the message must take `send_message`.

        A frame is returned only when nothing is queued for the network (`data_to_send`
        would return nothing), so that writing it at once keeps the frames in order, and
        when `send_message` would frame it in one bytes object (`_plain_frame`). The frame
        is not queued: the caller writes it. This spares the ordinary send its round trip
        through ``data_to_send``.
        """
        if self._output:
            return None
        return self._plain_frame(message)

    def _plain_frame(self, message: str | bytes) -> bytes | None:
        """The frame of ``message`` in one bytes object (`serialize_message`), or None when
        it cannot be sent that way: the connection is not OPEN (OPEN also means that no
        close frame was sent), is a client's (which masks) or has an extension, a fragmented
        message is in progress, or ``message`` is neither ``str`` nor a ``bytes`` of at most
        ``_COPY_BINARY_UP_TO``. The one place that says when a message is framed plainly."""
        if (
            self.state is _OPEN  # and so no close frame was sent
            and not self.is_client
            and not self.extensions
            and not self._sending_fragmented
            and (
                type(message) is str
                or (type(message) is bytes and len(message) <= _COPY_BINARY_UP_TO)
            )
        ):
            return serialize_message(message)
        return None

    @property
    def sends_plain_frames(self) -> bool:
        """Whether this connection frames a message as `serialize_message` does: a server's
        (unmasked) without extensions, so that `send_serialized_message` may take a frame
        serialized once for many connections."""
        return not self.is_client and not self.extensions

    def send_serialized_message(self, frame: bytes) -> None:
        """Queue one whole message already framed by `serialize_message`.

        The way to send one message to many connections, framed once; only for a connection
        whose `sends_plain_frames` is True (else `send_message`).

        Raises:
            InvalidState: the connection is not open, a fragmented message is unfinished, or
                it does not send plain frames.
        """
        if (
            self.state is _OPEN  # and so no close frame was sent
            and not self._sending_fragmented
            and not self.is_client
            and not self.extensions
        ):
            self._output.append(frame)  # the usual case, checked first: once per recipient
        elif self.state is not _OPEN or self.close_sent is not None:
            raise InvalidState(f"cannot send a message: the connection is {self.state.name}")
        elif self._sending_fragmented:
            raise InvalidState("a fragmented message is in progress; finish it first")
        else:
            raise InvalidState("this connection masks or compresses its frames")

    def send_binary(self, data: Buffer, *, fin: bool = True) -> None:
        """Queue a binary message, or its first fragment when ``fin`` is False.

        Raises:
            InvalidState: the connection is not open, or a fragmented message is unfinished.
        """
        self._send_data(_BINARY, data, fin)

    def send_continuation(self, data: str | Buffer, *, fin: bool) -> None:
        """Queue the next fragment of the message started with ``fin=False``.

        Raises:
            InvalidState: no fragmented message is in progress, or the connection is not open.
        """
        if not self._sending_fragmented:
            raise InvalidState("no fragmented message is in progress")
        self._send_data(_CONTINUATION, data.encode() if isinstance(data, str) else data, fin)

    def _send_data(self, opcode: int, data: Buffer, fin: bool) -> None:
        if self.state is not _OPEN or self.close_sent is not None:
            raise InvalidState(f"cannot send a message: the connection is {self.state.name}")
        if (opcode == 0) is not self._sending_fragmented:
            raise InvalidState("a fragmented message is in progress; finish it first")
        self._sending_fragmented = not fin
        if self.extensions:
            frame = Frame(opcode, bytes(data), fin)
            for extension in self.extensions:
                frame = extension.encode(frame)
            self._send_frame(frame.opcode, frame.payload, frame.fin, frame.rsv1)
        elif self.is_client:
            self._send_frame(opcode, data, fin, False)
        else:
            self._output += serialize_frame(opcode, data, fin=fin)

    def send_ping(self, data: Buffer = b"") -> None:
        """Queue a ping carrying up to 125 bytes.

        Raises:
            ValueError: ``data`` exceeds 125 bytes.
            InvalidState: the connection is not open.
        """
        self._send_control(_PING, data)

    def send_pong(self, data: Buffer = b"") -> None:
        """Queue an unsolicited pong (a one-way heartbeat, RFC 6455 §5.5.3).

        Raises:
            ValueError: ``data`` exceeds 125 bytes.
            InvalidState: the connection is not open.
        """
        self._send_control(_PONG, data)

    def _send_control(self, opcode: int, data: Buffer) -> None:
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"control frame payload of {len(data)} bytes exceeds 125")
        if self.state is not _OPEN or self.close_sent is not None:
            raise InvalidState(f"cannot send a control frame: the connection is {self.state.name}")
        self._send_frame(opcode, data, True, False)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start (or answer) the closing handshake with ``code`` and ``reason``.

        Raises:
            ValueError: the code may not be sent or the reason exceeds 123 UTF-8 bytes.
            InvalidState: a close frame was already sent, or the handshake has not completed.
        """
        payload = serialize_close_payload(code, reason)
        if self._phase not in (_Phase.OPEN, _Phase.CLOSE_RECEIVED):
            raise InvalidState(f"cannot send a close frame: the connection is {self.state.name}")
        self._send_frame(_CLOSE, payload, True, False)
        self.close_sent = (code, reason)
        self._enter(_Input.CLOSE_SENT)

    def fail(self, error: FullDuplexError) -> None:
        """Fail the connection (RFC 6455 §7.1.7) because of ``error``.

        Queues a close frame with the error's ``close_code`` (1011 for errors without one)
        and emits `ConnectionFailed`. Further data messages from the peer are dropped.
        """
        if self.failure is not None:
            # A second error while waiting for the peer's close: give up on a clean close.
            self._enter(_Input.GAVE_UP)
            return
        self.failure = error
        self._events.append(ConnectionFailed(error))
        if self._phase is _Phase.OPEN:
            code = getattr(error, "close_code", CloseCode.INTERNAL_ERROR)
            reason = _short_reason(str(error))
            self._send_frame(_CLOSE, serialize_close_payload(code, reason), True, False)
            self.close_sent = (code, reason)
        self._enter(_Input.FAILED)

    def _send_frame(self, opcode: int, payload: Buffer, fin: bool, rsv1: bool) -> None:
        mask = os.urandom(4) if self.is_client else None
        self._output.extend(serialize_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask))

    # --- receiving -----------------------------------------------------------------------

    def _receive_handshake_data(self, data: Buffer) -> None:
        raise NotImplementedError  # each role implements its own handshake

    def _receive_handshake_eof(self) -> None:
        raise NotImplementedError  # each role implements its own handshake

    def _start_frames(self, leftover: Buffer) -> None:
        """Enter OPEN after the handshake; parse any frame bytes that came with it."""
        self._enter(_Input.HANDSHAKE_SUCCEEDED)
        if leftover:
            self._parser.feed(leftover)
            self._parse_frames()

    def _parse_frames(self) -> None:
        """Parse the buffered frames: one frame at a time, then the whole plain messages behind
        it in one go (`FrameParser.next_messages`), until the buffer holds no complete frame.

        Starts with `next_frame`: the caller ran the fast pass already, or had no reason to.
        """
        parser = self._parser
        events = self._events
        # The largest payload of a frame that is a whole message, without extensions.
        plain_budget = min(self.max_message_size, self.max_frame_size)
        # The largest payload the next frame of any kind may carry depends only on the bytes of
        # the message being received: computed again when they change.
        budget = 0
        budget_for = -1
        while not self.should_close_transport:
            if len(self._message_parts) != budget_for:
                budget_for = len(self._message_parts)
                budget = self.max_message_size - budget_for
                if self.extensions:
                    # A compressed frame may be slightly larger than what it inflates to
                    # (deflate's stored blocks); the extension enforces the message limit on
                    # inflated bytes.
                    budget += budget // 16 + 1024
                if self.max_frame_size < budget:
                    budget = self.max_frame_size
            try:
                frame = parser.next_frame(budget)
                if frame is None:
                    if parser.buffered and not self.extensions and self.failure is None:
                        self._check_partial_text()
                    return
                self._forget_partial_text()
                self._receive_frame(frame)
            except (ProtocolViolation, PolicyViolation) as exc:
                # Go on parsing after a failure: the peer's close frame may be right behind.
                self.fail(exc)
                if parser.refused_opcode == _CLOSE:
                    # The peer sent its (invalid) close frame: it expects no more, so don't wait.
                    self._enter(_Input.GAVE_UP)
                continue
            if self._takes_plain_messages() and parser.next_messages(
                plain_budget, events, TextReceived, BinaryReceived
            ):
                self._forget_partial_text()

    def _takes_plain_messages(self) -> bool:
        """Whether a frame with FIN set, no RSV bit and a TEXT or BINARY opcode is a whole
        message now, for `FrameParser.next_messages`: no extension rewrites frames, no
        fragmented message is in progress, and messages are still delivered."""
        return (
            self._message_opcode is None
            and not self.extensions
            and self.close_received is None
            and self.failure is None
        )

    def _forget_partial_text(self) -> None:
        """Stop checking the text frame at the head of the buffer: it was parsed whole."""
        if self._partial_decoder is not None:
            self._partial_decoder = None
            self._partial_validated = 0

    def _receive_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if frame.rsv2 or frame.rsv3 or (frame.rsv1 and not self.extensions):
            raise ProtocolViolation("reserved bits set without a negotiated extension")
        if opcode >= 0x8:
            if frame.rsv1:
                raise ProtocolViolation("RSV1 set on a control frame")
            self._receive_control(frame)
            return
        if opcode == _CONTINUATION:
            if self._message_opcode is None:
                raise ProtocolViolation("continuation frame without a message to continue")
        elif self._message_opcode is not None:
            raise ProtocolViolation("new message started before the previous one finished")
        else:
            self._message_opcode = opcode
        if self.extensions:
            budget = self.max_message_size - len(self._message_parts)
            for extension in reversed(self.extensions):
                frame = extension.decode(frame, max_size=budget)
        if self.close_received is not None or self.failure is not None:
            # RFC 6455 §5.5.1: after a close frame, data is ignored; after a failure, too.
            self._end_message()
            return
        self._receive_fragment(frame.payload, frame.fin)

    def _receive_fragment(self, payload: bytes, fin: bool) -> None:
        message_opcode = self._message_opcode
        if fin and not self._message_fragments:
            # The common case, a message in one frame: no copy into the message buffer.
            self._message_opcode = None
            if message_opcode == _TEXT:
                try:
                    text = payload.decode()
                except UnicodeDecodeError as exc:
                    raise InvalidPayload(f"invalid UTF-8 in text message: {exc.reason}") from exc
                self._events.append(TextReceived(text))
            else:
                self._events.append(BinaryReceived(payload))
            return
        self._message_fragments += 1
        if self._message_fragments > self.max_fragments:
            raise MessageTooBig(f"message split into more than {self.max_fragments} fragments")
        if len(self._message_parts) + len(payload) > self.max_message_size:
            raise MessageTooBig(f"message exceeds the limit of {self.max_message_size} bytes")
        self._message_parts += payload
        if message_opcode == _TEXT:
            # Validate every fragment as it arrives, so bad text fails fast (RFC 6455 §8.1).
            if self._utf8_decoder is None:
                self._utf8_decoder = _UTF8_DECODER()
            self._validate_utf8(payload, fin)
        if fin:
            data = bytes(self._message_parts)
            self._end_message()
            if message_opcode == _TEXT:
                self._events.append(TextReceived(data.decode()))
            else:
                self._events.append(BinaryReceived(data))

    def _validate_utf8(self, chunk: bytes, final: bool) -> None:
        assert self._utf8_decoder is not None
        _decode_strictly(self._utf8_decoder, chunk, final)

    def _check_partial_text(self) -> None:
        """Validate the received part of an incomplete text frame (fail fast on bad UTF-8)."""
        opcode = self._parser.head_opcode
        if opcode != _TEXT and not (opcode == _CONTINUATION and self._utf8_decoder is not None):
            return  # checked before peeking: peeking copies, and binary frames can be large
        head = self._parser.peek_payload(self._partial_validated)
        if head is None:
            return
        chunk = head[1]
        if self._partial_decoder is None:
            self._partial_decoder = _UTF8_DECODER()
            if self._utf8_decoder is not None:  # a continuation: go on from the message's state
                self._partial_decoder.setstate(self._utf8_decoder.getstate())
        try:
            _decode_strictly(self._partial_decoder, chunk, False)
        except InvalidPayload as exc:
            self.fail(exc)
            # The rest of this frame may never come, so no later close frame can be parsed.
            self._enter(_Input.GAVE_UP)
        self._partial_validated += len(chunk)

    def _end_message(self) -> None:
        self._message_opcode = None
        self._message_parts = bytearray()
        self._message_fragments = 0
        self._utf8_decoder = None

    def _receive_control(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode == _PING:
            if self.close_sent is None:
                # RFC 6455 §5.5.2: answer with a pong carrying the same data.
                self._send_frame(_PONG, frame.payload, True, False)
            self._events.append(PingReceived(frame.payload))
        elif opcode == _PONG:
            self._events.append(PongReceived(frame.payload))
        elif self.close_received is None:
            try:
                code, reason = parse_close_payload(frame.payload)
            except ProtocolViolation as exc:
                # The peer considers itself closed already: answer, then end the TCP connection.
                self.fail(exc)
                self._enter(_Input.GAVE_UP)
                return
            self.close_received = (code, reason)
            self._events.append(CloseReceived(code, reason))
            self._enter(_Input.CLOSE_RECEIVED)
            if self.close_sent is None:
                # RFC 6455 §5.5.1: echo the code; a fragmented message in progress is dropped.
                self.send_close(code)
        # A second close frame from the peer (RFC 6455 §5.5.1: it sends none after its first) is
        # ignored: the client reads on until the server ends the TCP connection.


def _decode_strictly(decoder: codecs.IncrementalDecoder, chunk: bytes, final: bool) -> None:
    """Feed ``chunk`` to a UTF-8 decoder; fail as soon as no further bytes can make it valid.

    Raises:
        InvalidPayload: the text is not valid UTF-8.
    """
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"invalid UTF-8 in text message: {exc.reason}") from exc
    pending = decoder.getstate()[0]
    # CPython holds b"\xed\xa0" as pending, yet no byte can complete it: it starts a surrogate.
    if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
        raise InvalidPayload("invalid UTF-8 in text message: encoded surrogate")


def _short_reason(text: str) -> str:
    """Cut ``text`` to fit a close frame's 123-byte reason without splitting a character."""
    encoded = text.encode()
    if len(encoded) <= MAX_CONTROL_PAYLOAD - 2:
        return text
    return encoded[: MAX_CONTROL_PAYLOAD - 2].decode(errors="ignore")
