"""SockJS 0.3.3 on the wire: frames, their per-transport wrappings, and request payloads.

Sans-I/O: strings and bytes in, strings and bytes out; no asyncio, no sockets, no clock.

A SockJS server sends *frames*: ``o`` (open), ``h`` (heartbeat), ``a[...]`` (a JSON array of
messages) and ``c[code,"reason"]`` (close). Each transport wraps a frame its own way:

==============  ===============================================================
xhr, streaming  ``frame + "\\n"``
eventsource     ``"data: " + frame + "\\r\\n\\r\\n"``, ``%`` as ``%25``
htmlfile        ``<script>\\np("frame as a JS string");\\n</script>\\r\\n``
jsonp           ``/**/callback("frame as a JS string");\\r\\n``
websocket       the frame as one text message
==============  ===============================================================

A client sends no frames, only messages: a JSON array of strings in a POST body (``xhr_send``,
``jsonp_send``, the latter also as the ``d`` field of a form) or a JSON string or array per
WebSocket message.

Escaping, where other servers fail:

- Frames escape the characters browsers mangle or refuse (controls, the zero-width and
  bidirectional marks, U+2028/U+2029, U+FFF0-U+FFFF) and lone surrogates, which Python can hold
  after decoding a client's ``\\ud800`` but UTF-8 cannot carry; see `ESCAPED_BY_SERVER`.
- htmlfile and jsonp carry a frame inside a script, so ``<``, ``>`` and ``&`` are written as
  ``\\u003c``...: a message holding ``</script>`` cannot end the script element early.
- EventSource lines end at CR or LF; a frame is JSON with those characters escaped, so it is
  always one ``data:`` line, whatever the message holds (line breaks, NUL). sockjs-client
  runs ``decodeURI`` on each line, so ``%`` is written ``%25``.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Sequence
from http import HTTPStatus
from urllib.parse import parse_qs

from ...exceptions import FullDuplexError

__all__ = [
    "OPEN_FRAME",
    "HEARTBEAT_FRAME",
    "ESCAPED_BY_SERVER",
    "XHR_STREAMING_PRELUDE",
    "EVENTSOURCE_PRELUDE",
    "BadRequest",
    "PayloadExpected",
    "BrokenJSON",
    "CallbackRequired",
    "InvalidCallback",
    "message_frame",
    "close_frame",
    "xhr_chunk",
    "eventsource_chunk",
    "htmlfile_chunk",
    "htmlfile_prelude",
    "jsonp_body",
    "callback_from_query",
    "decode_xhr_send",
    "decode_jsonp_send",
    "decode_websocket_message",
    "iframe_page",
    "hixie76_challenge_response",
]

OPEN_FRAME = "o"
"""Sent once, first, on every new session."""

HEARTBEAT_FRAME = "h"
"""Sent when nothing else was for a heartbeat interval, so proxies keep the request open."""

# sockjs-protocol 0.3.3, "JSON Unicode Encoding": what the server must escape, plus the
# surrogates (a lone one cannot be encoded as UTF-8).
ESCAPED_BY_SERVER = re.compile(
    "[\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff\ud800-\udfff]"
)
"""The characters written as ``\\uXXXX`` in every frame."""

# Inside a <script> element, "</script>" ends it and "<!--" changes how it is parsed.
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")

XHR_STREAMING_PRELUDE = b"h" * 2048 + b"\n"
"""Sent first on xhr_streaming: browsers hand a response to script only after 2 KiB or so."""

EVENTSOURCE_PRELUDE = b"\r\n"
"""Sent first on eventsource (an old Opera waited for it)."""

# sockjs-protocol: a callback is a JavaScript name made of these characters only.
_CALLBACK = re.compile(r"[a-zA-Z0-9_.\-]+")

_HTMLFILE_HEAD = """<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.%s;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>
"""
# Internet Explorer renders an htmlfile response only after its first kilobyte.
_HTMLFILE_MIN_PRELUDE_BYTES = 1024

_IFRAME_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="%s"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""


class BadRequest(FullDuplexError):
    """A SockJS request the server refuses; ``str(error)`` is the body the protocol gives.

    The peer's fault. The suite and sockjs-client expect status 500 for all of them.
    """

    http_status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR


class PayloadExpected(BadRequest):
    """A send request carried no payload."""

    def __init__(self) -> None:
        super().__init__("Payload expected.")


class BrokenJSON(BadRequest):
    """A payload is not JSON, or not a string or an array of strings."""

    def __init__(self) -> None:
        super().__init__("Broken JSON encoding.")


class CallbackRequired(BadRequest):
    """An htmlfile or jsonp request has no ``c`` query parameter."""

    def __init__(self) -> None:
        super().__init__('"callback" parameter required')


class InvalidCallback(BadRequest):
    """An htmlfile or jsonp callback holds a character outside ``[a-zA-Z0-9_.-]``."""

    def __init__(self) -> None:
        super().__init__('invalid "callback" parameter')


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _json(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return ESCAPED_BY_SERVER.sub(_escape, text)


def message_frame(messages: Sequence[str]) -> str:
    """Return the ``a`` frame carrying ``messages``, in order."""
    return "a" + _json(list(messages))


def close_frame(code: int, reason: str) -> str:
    """Return the ``c`` frame that closes a session with ``code`` and ``reason``."""
    return "c" + _json([code, reason])


def _script_string(frame: str) -> str:
    return _SCRIPT_UNSAFE.sub(_escape, json.dumps(frame, ensure_ascii=False))


def xhr_chunk(frame: str) -> bytes:
    """Wrap a frame for xhr polling and xhr_streaming."""
    return (frame + "\n").encode()


def eventsource_chunk(frame: str) -> bytes:
    """Wrap a frame as one EventSource event (a frame never holds CR or LF).

    sockjs-client passes each event's data through ``decodeURI``, so ``%`` goes out as
    ``%25``: a message holding ``%41`` arrives as ``%41``, not ``A``, and ``%%`` does not make
    the client fail.
    """
    return ("data: " + frame.replace("%", "%25") + "\r\n\r\n").encode()


def htmlfile_chunk(frame: str) -> bytes:
    """Wrap a frame as a script element calling the htmlfile page's ``p``."""
    return ("<script>\np(" + _script_string(frame) + ");\n</script>\r\n").encode()


def htmlfile_prelude(callback: str) -> bytes:
    """Return the htmlfile page's head: it hands each later frame to ``parent.<callback>``.

    Args:
        callback: a name already checked by `callback_from_query`.
    """
    head = _HTMLFILE_HEAD % callback
    padding = " " * max(0, _HTMLFILE_MIN_PRELUDE_BYTES - len(head))
    return (head + padding + "\r\n\r\n").encode()


def jsonp_body(callback: str, frame: str) -> bytes:
    """Return a jsonp response: a script calling ``callback`` with the frame."""
    # "/**/" keeps the first bytes from being a Flash header (the Rosetta Flash attack).
    return ("/**/" + callback + "(" + _script_string(frame) + ");\r\n").encode()


def callback_from_query(query: str) -> str:
    """Return the ``c`` parameter of an htmlfile or jsonp request's query.

    Raises:
        CallbackRequired: there is none.
        InvalidCallback: it is not a plain JavaScript name.
    """
    values = parse_qs(query, keep_blank_values=True).get("c")
    if not values or not values[0]:
        raise CallbackRequired
    if _CALLBACK.fullmatch(values[0]) is None:
        raise InvalidCallback
    return values[0]


def _messages(payload: str | bytes) -> list[str]:
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        raise BrokenJSON from None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise BrokenJSON


def decode_xhr_send(body: bytes) -> list[str]:
    """Return the messages in an ``xhr_send`` body (a JSON array of strings).

    Raises:
        PayloadExpected: the body is empty.
        BrokenJSON: the body is not a JSON string or array of strings.
    """
    if not body:
        raise PayloadExpected
    return _messages(body)


def decode_jsonp_send(body: bytes, content_type: str | None) -> list[str]:
    """Return the messages in a ``jsonp_send`` body: the ``d`` field of a form, or raw JSON.

    Raises:
        PayloadExpected: no payload (an empty body or an empty or missing ``d``).
        BrokenJSON: the payload is not a JSON string or array of strings.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise BrokenJSON from None
        fields = parse_qs(text, keep_blank_values=True).get("d")
        body = fields[0].encode() if fields else b""
    return decode_xhr_send(body)


def decode_websocket_message(message: str) -> list[str]:
    """Return the messages in one WebSocket message of the ``websocket`` transport.

    An empty message carries none.

    Raises:
        BrokenJSON: the message is not a JSON string or array of strings.
    """
    return _messages(message) if message else []


def iframe_page(sockjs_url: str) -> bytes:
    """Return ``iframe.html``: a page that loads sockjs-client from ``sockjs_url``.

    Args:
        sockjs_url: where the page finds the client script; an absolute path or URL.
    """
    escaped = sockjs_url.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return (_IFRAME_PAGE % escaped).encode()


_KEY_DIGITS = re.compile(r"[^0-9]")


def hixie76_challenge_response(key1: str, key2: str, key3: bytes) -> bytes:
    """Return the 16 bytes that answer a hixie-76 (draft 76) WebSocket handshake.

    Each key's digits form a number that is divided by the key's count of spaces; the MD5 of
    both quotients (big-endian, 32 bits) and the 8 bytes that follow the request's headers
    (``key3``) proves the server read the handshake.

    Raises:
        ValueError: a key has no spaces, or a quotient is not a whole 32-bit number.
    """
    numbers = []
    for key in (key1, key2):
        spaces = key.count(" ")
        digits = _KEY_DIGITS.sub("", key)
        if spaces == 0 or not digits or int(digits) % spaces:
            raise ValueError("invalid Sec-WebSocket-Key1/Key2")
        numbers.append(int(digits) // spaces)
    if len(key3) != 8 or max(numbers) > 0xFFFFFFFF:
        raise ValueError("invalid hixie-76 key")
    return hashlib.md5(struct.pack(">II", *numbers) + key3).digest()
