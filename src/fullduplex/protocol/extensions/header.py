"""The ``Sec-WebSocket-Extensions`` header: parse and format (RFC 6455 §9.1).

The grammar, from RFC 6455 §9.1 with the list, token and quoted-string rules of RFC 7230::

    Sec-WebSocket-Extensions = 1#extension
    extension                = token *( OWS ";" OWS extension-param )
    extension-param          = token [ OWS "=" OWS ( token / quoted-string ) ]

A quoted value must still be a token once unquoted (RFC 6455 §9.1). Extension names are kept as
sent; they compare case-insensitively, so callers lower-case them before comparing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ...exceptions import NegotiationError
from .base import ExtensionParameters

__all__ = ["format_extension_header", "parse_extension_header"]

# RFC 7230 §3.2.6: token = 1*tchar.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# RFC 7230 §3.2.6: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE.
_QUOTED_STRING = re.compile(
    r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
)
_QUOTED_PAIR = re.compile(r"\\(.)")


def parse_extension_header(values: Iterable[str]) -> list[tuple[str, ExtensionParameters]]:
    """Parse every ``Sec-WebSocket-Extensions`` header of a message.

    Args:
        values: each occurrence of the header, in order; each may hold a comma-separated list.

    Returns:
        ``(name, parameters)`` for each extension, in order. Quoted values are unquoted; a
        parameter without ``=`` has the value None.

    Raises:
        NegotiationError: a value breaks the grammar; the handshake should fail with 400.
    """
    extensions: list[tuple[str, ExtensionParameters]] = []
    for header in values:
        extensions.extend(_parse_one(header))
    return extensions


def format_extension_header(extensions: Sequence[tuple[str, ExtensionParameters]]) -> str:
    """Return the ``Sec-WebSocket-Extensions`` value for ``extensions``.

    Args:
        extensions: ``(name, parameters)`` pairs, as `parse_extension_header` returns them.

    Returns:
        e.g. ``permessage-deflate; client_max_window_bits=10, x-custom``.

    Raises:
        ValueError: a name or value is not a token (RFC 6455 §9.1 allows nothing else).
    """
    elements = []
    for name, parameters in extensions:
        parts = [_check_token(name)]
        for key, value in parameters:
            _check_token(key)
            parts.append(key if value is None else f"{key}={_check_token(value)}")
        elements.append("; ".join(parts))
    return ", ".join(elements)


def _check_token(text: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise ValueError(f"{text!r} is not an HTTP token")
    return text


def _parse_one(header: str) -> list[tuple[str, ExtensionParameters]]:
    extensions: list[tuple[str, ExtensionParameters]] = []
    position = _skip_ows(header, 0)
    while position < len(header):
        if header[position] == ",":
            # RFC 7230 §7: a recipient MUST accept and ignore empty list elements.
            position = _skip_ows(header, position + 1)
            continue
        name, position = _read_token(header, position, "extension name")
        parameters: ExtensionParameters = []
        position = _skip_ows(header, position)
        while header.startswith(";", position):
            key, position = _read_token(header, _skip_ows(header, position + 1), "parameter name")
            value: str | None = None
            position = _skip_ows(header, position)
            if header.startswith("=", position):
                value, position = _read_value(header, _skip_ows(header, position + 1))
                position = _skip_ows(header, position)
            parameters.append((key, value))
        extensions.append((name, parameters))
        if position < len(header):
            if header[position] != ",":
                raise NegotiationError(f"expected ',' or ';' at offset {position} in {header!r}")
            position = _skip_ows(header, position + 1)
    if not extensions:
        # RFC 6455 §9.1 uses 1#extension: a header holds at least one extension.
        raise NegotiationError(f"empty Sec-WebSocket-Extensions header {header!r}")
    return extensions


def _skip_ows(header: str, position: int) -> int:
    # RFC 7230 §3.2.3: OWS = *( SP / HTAB ).
    while position < len(header) and header[position] in " \t":
        position += 1
    return position


def _read_token(header: str, position: int, what: str) -> tuple[str, int]:
    match = _TOKEN.match(header, position)
    if match is None:
        raise NegotiationError(f"expected {what} at offset {position} in {header!r}")
    return match.group(), match.end()


def _read_value(header: str, position: int) -> tuple[str, int]:
    if not header.startswith('"', position):
        return _read_token(header, position, "parameter value")
    match = _QUOTED_STRING.match(header, position)
    if match is None:
        raise NegotiationError(f"bad quoted-string at offset {position} in {header!r}")
    value = _QUOTED_PAIR.sub(r"\1", match.group(1))
    # RFC 6455 §9.1: the value after quoted-string unescaping MUST conform to 'token'.
    if not _TOKEN.fullmatch(value):
        raise NegotiationError(f"quoted value {value!r} is not a token in {header!r}")
    return value, match.end()
