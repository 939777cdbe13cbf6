"""The opening handshake's rules (RFC 6455 §4): building and checking requests and responses.

Pure functions: `ServerProtocol` and `ClientProtocol` call them with the parsed HTTP messages.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus

from ..exceptions import InvalidRequest, InvalidResponse, NegotiationError
from .extensions.base import ClientExtensionFactory, Extension, ServerExtensionFactory
from .extensions.header import format_extension_header, parse_extension_header
from .http11 import Headers, Request, Response

__all__ = [
    "WEBSOCKET_GUID",
    "SUPPORTED_VERSION",
    "SubprotocolSelector",
    "generate_key",
    "accept_key",
    "parse_token_list",
    "ServerNegotiation",
    "check_request",
    "negotiate",
    "build_accept_response",
    "build_error_response",
    "build_request",
    "check_response",
]

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455 §1.3: the GUID appended to the client's key to derive ``Sec-WebSocket-Accept``."""

SUPPORTED_VERSION = "13"
"""RFC 6455 §4.1: the only protocol version this library speaks."""

SubprotocolSelector = Callable[[Sequence[str]], str | None]
"""Chooses a subprotocol among the client's offers (in the client's order), or None for none."""

_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")


def generate_key() -> str:
    """Return a fresh ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (RFC 6455 §4.1)."""
    return base64.b64encode(os.urandom(16)).decode()


def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` value that answers ``key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def parse_token_list(values: Iterable[str], *, what: str) -> list[str]:
    """Split comma-separated header values into tokens (RFC 9110 §5.6.1), skipping empty items.

    Raises:
        ValueError: an item is not a token; the message names the header ``what``.
    """
    tokens = []
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if not item:
                continue
            if not _TOKEN.fullmatch(item):
                raise ValueError(f"invalid token {item[:40]!r} in {what}")
            tokens.append(item)
    return tokens


def _has_token(headers: Headers, name: str, token: str) -> bool:
    return any(
        item.strip(" \t").lower() == token
        for value in headers.get_all(name)
        for item in value.split(",")
    )


class ServerNegotiation:
    """What a server accepts in an upgrade request: origins, subprotocols, extensions.

    Args:
        origins: allowed ``Origin`` values; None allows any. Include None in the list to
            allow requests without an ``Origin`` header (non-browser clients).
        subprotocols: supported subprotocols, in the server's order of preference.
        select_subprotocol: a function choosing among the client's offers; overrides
            ``subprotocols``.
        extensions: extension factories, in the server's order of preference.
    """

    __slots__ = ("origins", "subprotocols", "select_subprotocol", "extensions")

    def __init__(
        self,
        *,
        origins: Sequence[str | None] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
    ) -> None:
        self.origins = origins
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.extensions = extensions


def check_request(request: Request, negotiation: ServerNegotiation) -> str:
    """Check an upgrade request against RFC 6455 §4.2.1 and the server's rules.

    Returns:
        The client's ``Sec-WebSocket-Key``.

    Raises:
        InvalidRequest: with the status to answer: 405 (not GET), 426 (no upgrade or
            unsupported version), 403 (origin not allowed), 400 (anything else malformed).
    """
    headers = request.headers
    if request.method != "GET":
        raise InvalidRequest(
            f"method {request.method} not allowed; a WebSocket handshake uses GET",
            HTTPStatus.METHOD_NOT_ALLOWED,
            (("Allow", "GET"),),
        )
    upgrade_needed = (("Upgrade", "websocket"), ("Connection", "Upgrade"))
    if not _has_token(headers, "Upgrade", "websocket"):
        raise InvalidRequest(
            "this is a WebSocket endpoint; the request lacks 'Upgrade: websocket'",
            HTTPStatus.UPGRADE_REQUIRED,
            upgrade_needed,
        )
    if not _has_token(headers, "Connection", "upgrade"):
        raise InvalidRequest(
            "the request lacks 'Connection: Upgrade'", HTTPStatus.UPGRADE_REQUIRED, upgrade_needed
        )
    if len(headers.get_all("Host")) != 1:
        raise InvalidRequest("the request needs exactly one Host header")
    versions = headers.get_all("Sec-WebSocket-Version")
    if versions != [SUPPORTED_VERSION]:
        # RFC 6455 §4.2.2: answer 426 and list the versions the server supports.
        shown = ", ".join(versions) or "none"
        raise InvalidRequest(
            f"unsupported Sec-WebSocket-Version ({shown}); this server supports 13",
            HTTPStatus.UPGRADE_REQUIRED,
            (("Sec-WebSocket-Version", SUPPORTED_VERSION),),
        )
    keys = headers.get_all("Sec-WebSocket-Key")
    if len(keys) != 1:
        raise InvalidRequest("the request needs exactly one Sec-WebSocket-Key header")
    try:
        raw_key = base64.b64decode(keys[0], validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII key (header values are latin-1)
        raw_key = b""
    if len(raw_key) != 16:
        raise InvalidRequest("Sec-WebSocket-Key is not 16 bytes in base64")
    if negotiation.origins is not None:
        origins = headers.get_all("Origin")
        if len(origins) > 1:
            raise InvalidRequest("the request has more than one Origin header")
        origin = origins[0] if origins else None
        if origin not in negotiation.origins:
            # Refusing unknown origins stops cross-site WebSocket hijacking (RFC 6455 §10.2).
            raise InvalidRequest(f"origin {origin!r} is not allowed", HTTPStatus.FORBIDDEN)
    return keys[0]


def negotiate(
    request: Request, negotiation: ServerNegotiation
) -> tuple[str | None, list[Extension], Headers]:
    """Choose the subprotocol and extensions for a valid request.

    Returns:
        The subprotocol (or None), the active extensions in order, and the response headers
        (``Sec-WebSocket-Protocol``, ``Sec-WebSocket-Extensions``) that announce them.

    Raises:
        InvalidRequest: a header is malformed, or the selector picked an unoffered subprotocol.
    """
    headers = Headers()
    try:
        offered = parse_token_list(
            request.headers.get_all("Sec-WebSocket-Protocol"), what="Sec-WebSocket-Protocol"
        )
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    subprotocol: str | None = None
    if offered:
        if negotiation.select_subprotocol is not None:
            subprotocol = negotiation.select_subprotocol(offered)
            if subprotocol is not None and subprotocol not in offered:
                raise InvalidRequest(f"selected subprotocol {subprotocol!r} was not offered")
        elif negotiation.subprotocols:
            subprotocol = next((s for s in negotiation.subprotocols if s in offered), None)
    if subprotocol is not None:
        headers.add("Sec-WebSocket-Protocol", subprotocol)

    extensions: list[Extension] = []
    if negotiation.extensions:
        try:
            offers = parse_extension_header(request.headers.get_all("Sec-WebSocket-Extensions"))
        except NegotiationError as exc:
            raise InvalidRequest(str(exc)) from exc
        accepted = []
        for factory in negotiation.extensions:
            matching = [params for name, params in offers if name.lower() == factory.name]
            if not matching:
                continue
            try:
                outcome = factory.negotiate(matching)
            except NegotiationError as exc:
                raise InvalidRequest(str(exc)) from exc
            if outcome is not None:
                params, extension = outcome
                accepted.append((factory.name, params))
                extensions.append(extension)
        if accepted:
            headers.add("Sec-WebSocket-Extensions", format_extension_header(accepted))
    return subprotocol, extensions, headers


def build_accept_response(
    key: str, negotiated: Headers, extra_headers: Iterable[tuple[str, str]]
) -> Response:
    """Return the 101 response that completes the server's side of the handshake."""
    headers = Headers(
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(key)),
        ]
    )
    for name, value in negotiated:
        headers.add(name, value)
    for name, value in extra_headers:
        headers.add(name, value)
    return Response(101, headers)


def build_error_response(error: InvalidRequest) -> Response:
    """Return the HTTP error response that explains why an upgrade request failed."""
    headers = Headers([(n, v) for n, v in error.headers if n != "Connection"])
    headers.add("Content-Type", "text/plain; charset=utf-8")
    # RFC 9110 §7.8: a 426 names the protocol in Upgrade, and then Connection lists "upgrade".
    headers.add("Connection", "Upgrade, close" if "Upgrade" in headers else "close")
    body = f"Failed to open a WebSocket connection: {error}.\n".encode()
    return Response(error.http_status, headers, body)


def build_request(
    host: str,
    path: str,
    key: str,
    *,
    origin: str | None = None,
    subprotocols: Sequence[str] = (),
    extensions: Sequence[ClientExtensionFactory] = (),
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """Return the client's upgrade request (RFC 6455 §4.1).

    Args:
        host: the ``Host`` header value, with the port when it is not the default.
        path: the request target (path and query).
    """
    headers = Headers(
        [
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", SUPPORTED_VERSION),
        ]
    )
    if origin is not None:
        headers.add("Origin", origin)
    if subprotocols:
        headers.add("Sec-WebSocket-Protocol", ", ".join(subprotocols))
    if extensions:
        offers = [(factory.name, factory.offer()) for factory in extensions]
        headers.add("Sec-WebSocket-Extensions", format_extension_header(offers))
    for name, value in extra_headers:
        headers.add(name, value)
    return Request(path, headers)


def check_response(
    response: Response,
    key: str,
    *,
    subprotocols: Sequence[str] = (),
    extensions: Sequence[ClientExtensionFactory] = (),
) -> tuple[str | None, list[Extension]]:
    """Check the server's 101 response against the request (RFC 6455 §4.1, steps 1-6).

    Returns:
        The subprotocol the server chose (or None) and the active extensions in order.

    Raises:
        InvalidResponse: the response does not complete the handshake.
        NegotiationError: the server chose something the client did not offer.
    """
    headers = response.headers
    if not _has_token(headers, "Upgrade", "websocket"):
        raise InvalidResponse("response lacks 'Upgrade: websocket'")
    if not _has_token(headers, "Connection", "upgrade"):
        raise InvalidResponse("response lacks 'Connection: Upgrade'")
    accepts = headers.get_all("Sec-WebSocket-Accept")
    if accepts != [accept_key(key)]:
        raise InvalidResponse("Sec-WebSocket-Accept does not match the key sent")

    chosen = headers.get_all("Sec-WebSocket-Protocol")
    subprotocol: str | None = None
    if chosen:
        if len(chosen) > 1 or chosen[0] not in subprotocols:
            raise NegotiationError(
                f"server chose subprotocol {', '.join(chosen)!r}, which was not offered"
            )
        subprotocol = chosen[0]

    active: list[Extension] = []
    answers = parse_extension_header(headers.get_all("Sec-WebSocket-Extensions"))
    remaining = list(extensions)
    for name, params in answers:
        factory = next((f for f in remaining if f.name == name.lower()), None)
        if factory is None:
            raise NegotiationError(f"server accepted extension {name!r}, which was not offered")
        remaining.remove(factory)
        active.append(factory.accept(params))
    return subprotocol, active
