"""The WHATWG URL Standard's parser, for the URLs a WebSocket accepts: absolute, special-scheme.

`WebSocket(url)` must parse its URL as a browser does (WebSockets Standard §3.1, step 1), which
is not how `urllib.parse` does it: ``ws://0x7f.1/`` is ``ws://127.0.0.1/``, ``ws:example.com``
is ``ws://example.com/``, a space in the path is percent-encoded, ``..`` segments are resolved,
a space in the host is an error. This module follows the URL Standard's basic URL parser (§4.4)
for special schemes (``ws``, ``wss``, ``http``, ``https``, ``ftp``; ``file`` is refused) with no
base URL, from the scheme state through the fragment state.

One departure: a host with non-ASCII characters goes through Python's IDNA 2003 codec, not the
Unicode ToASCII of UTS #46 that the standard names; the two disagree on a few characters
(``faß.de`` becomes ``fass.de``, not ``xn--fa-hia.de``). ASCII hosts, by far the usual ones,
are exact.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .dom import to_usv_string

__all__ = ["URLRecord", "URLParseError", "parse_special_url"]

SPECIAL_SCHEMES = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}
"""The special schemes other than ``file``, and their default ports (URL Standard §4.1)."""


class URLParseError(ValueError):
    """The URL parser returned failure."""


@dataclass(frozen=True)
class URLRecord:
    """A parsed URL, its fields as the URL Standard names them.

    ``host`` is serialized (a lowercase domain, dotted IPv4, or bracketed IPv6); ``port`` is
    None for the scheme's default; ``query`` and ``fragment`` are None when absent.
    """

    scheme: str
    username: str
    password: str
    host: str
    port: int | None
    path: tuple[str, ...]
    query: str | None
    fragment: str | None

    @property
    def href(self) -> str:
        """The URL serializer's output (§4.5), fragment included."""
        out = f"{self.scheme}://"
        if self.username or self.password:
            out += self.username + (f":{self.password}" if self.password else "") + "@"
        out += self.host
        if self.port is not None:
            out += f":{self.port}"
        out += "/" + "/".join(self.path)
        if self.query is not None:
            out += "?" + self.query
        if self.fragment is not None:
            out += "#" + self.fragment
        return out

    @property
    def origin(self) -> str:
        """The serialization of the URL's tuple origin (HTML Standard §7.1.1)."""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.host}{port}"

    @property
    def resource_name(self) -> str:
        """The path and query to request (WebSockets Standard §2.1, "resource name")."""
        name = "/" + "/".join(self.path)
        return name + "?" + self.query if self.query else name


# --- percent-encode sets (§1.3) -------------------------------------------------------------

_C0_CONTROL = frozenset(chr(c) for c in range(0x20))
_FRAGMENT_SET = frozenset(' "<>`')
_QUERY_SET = frozenset(' "#<>')
_SPECIAL_QUERY_SET = _QUERY_SET | {"'"}
_PATH_SET = _QUERY_SET | frozenset("?`{}")
_USERINFO_SET = _PATH_SET | frozenset("/:;=@[\\]^|")


def _percent_encode(text: str, encode_set: frozenset[str]) -> str:
    out = []
    for char in text:
        if char in _C0_CONTROL or char > "~" or char in encode_set:
            out.append("".join(f"%{byte:02X}" for byte in char.encode()))
        else:
            out.append(char)
    return "".join(out)


def _percent_decode(text: str) -> bytes:
    """Percent-decode the UTF-8 encoding of ``text``; invalid escapes stay as they are."""
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda match: bytes([int(match[1], 16)]), text.encode())


# --- hosts (§3.5) ---------------------------------------------------------------------------

_FORBIDDEN_HOST = frozenset("\x00\t\n\r #/:<>?@[\\]^|")
_FORBIDDEN_DOMAIN = _FORBIDDEN_HOST | _C0_CONTROL | {"%", "\x7f"}


def _parse_host(text: str) -> str:
    if text.startswith("["):
        if not text.endswith("]"):
            raise URLParseError("unclosed IPv6 address")
        return "[" + _parse_ipv6(text[1:-1]) + "]"
    domain = _percent_decode(text).decode("utf-8", "replace")
    ascii_domain = _domain_to_ascii(domain)
    if any(char in _FORBIDDEN_DOMAIN for char in ascii_domain):
        raise URLParseError(f"forbidden code point in host {ascii_domain!r}")
    if _ends_in_a_number(ascii_domain):
        return _parse_ipv4(ascii_domain)
    return ascii_domain


def _domain_to_ascii(domain: str) -> str:
    if domain.isascii():
        return domain.lower()
    try:
        # See the module docstring: IDNA 2003 stands in for UTS #46 here.
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise URLParseError(f"host {domain!r} cannot be converted to ASCII") from exc


def _ends_in_a_number(domain: str) -> bool:
    parts = domain.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    if last and all("0" <= char <= "9" for char in last):
        return True
    try:
        _parse_ipv4_number(last)
    except URLParseError:
        return False
    return True


def _parse_ipv4_number(text: str) -> int:
    if not text:
        raise URLParseError("empty IPv4 part")
    radix = 10
    if text[:2] in ("0x", "0X"):
        text, radix = text[2:], 16
    elif len(text) >= 2 and text[0] == "0":
        text, radix = text[1:], 8
    if not text:
        return 0
    digits = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}[radix]
    if not all(char in digits for char in text):
        raise URLParseError(f"invalid IPv4 number {text!r}")
    return int(text, radix)


def _parse_ipv4(text: str) -> str:
    parts = text.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise URLParseError("an IPv4 address has at most four parts")
    numbers = [_parse_ipv4_number(part) for part in parts]
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise URLParseError(f"IPv4 address {text!r} out of range")
    address = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        address += number * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(address))


def _parse_ipv6(text: str) -> str:
    try:
        pieces = ipaddress.IPv6Address(text).packed
    except ValueError as exc:
        raise URLParseError(f"invalid IPv6 address {text!r}") from exc
    if "%" in text:  # a zone identifier, which URLs cannot carry
        raise URLParseError(f"invalid IPv6 address {text!r}")
    words = [int.from_bytes(pieces[i : i + 2], "big") for i in range(0, 16, 2)]
    # §3.7: compress the first longest run of two or more zero pieces.
    best_start, best_length, start = -1, 1, None
    for index, word in enumerate([*words, 1]):
        if word == 0 and start is None:
            start = index
        elif word != 0 and start is not None:
            if index - start > best_length:
                best_start, best_length = start, index - start
            start = None
    hexes = [f"{word:x}" for word in words]
    if best_start < 0:
        return ":".join(hexes)
    head = ":".join(hexes[:best_start])
    tail = ":".join(hexes[best_start + best_length :])
    return f"{head}::{tail}"


# --- the parser (§4.4) ----------------------------------------------------------------------

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_SINGLE_DOT = {".", "%2e"}
_DOUBLE_DOT = {"..", ".%2e", "%2e.", "%2e%2e"}


def parse_special_url(url: str) -> URLRecord:
    """Parse an absolute URL with a special scheme (``ws:``, ``https:``...).

    Raises:
        URLParseError: the URL Standard's parser would return failure, or the URL is relative,
            or its scheme is not special (this parser knows no other).
    """
    url = to_usv_string(url).strip("".join(map(chr, range(0x21))))
    url = url.replace("\t", "").replace("\n", "").replace("\r", "")
    match = _SCHEME.match(url)
    if match is None:
        raise URLParseError(f"{url!r} is not an absolute URL")
    scheme = match[1].lower()
    if scheme not in SPECIAL_SCHEMES:
        raise URLParseError(f"scheme {scheme!r} is not a special scheme")
    rest = url[match.end() :]

    fragment: str | None = None
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
        fragment = _percent_encode(fragment, _FRAGMENT_SET)
    query: str | None = None
    if "?" in rest:
        rest, query = rest.split("?", 1)
        query = _percent_encode(query, _SPECIAL_QUERY_SET)

    # Special authority (ignore) slashes state: any run of / and \ leads to the authority.
    rest = rest.lstrip("/\\")
    end = len(rest)
    for index, char in enumerate(rest):
        if char in "/\\":
            end = index
            break
    authority, path_text = rest[:end], rest[end:]

    username = password = ""
    if "@" in authority:
        userinfo, authority = authority.rsplit("@", 1)
        if not authority:
            raise URLParseError("credentials without a host")
        user, _, secret = userinfo.partition(":")
        username = _percent_encode(user, _USERINFO_SET)
        password = _percent_encode(secret, _USERINFO_SET)

    host_text, port_text = _split_port(authority)
    if not host_text:
        raise URLParseError("a special URL needs a host")
    host = _parse_host(host_text)
    port: int | None = None
    if port_text:
        if not port_text.isascii() or not port_text.isdigit():
            raise URLParseError(f"invalid port {port_text!r}")
        port = int(port_text)
        if port > 65535:
            raise URLParseError(f"port {port} out of range")
        if port == SPECIAL_SCHEMES[scheme]:
            port = None

    return URLRecord(
        scheme, username, password, host, port, _parse_path(path_text), query, fragment
    )


def _split_port(authority: str) -> tuple[str, str]:
    """Split at the first ``:`` outside brackets (the host state's rule)."""
    inside_brackets = False
    for index, char in enumerate(authority):
        if char == "[":
            inside_brackets = True
        elif char == "]":
            inside_brackets = False
        elif char == ":" and not inside_brackets:
            return authority[:index], authority[index + 1 :]
    return authority, ""


def _parse_path(text: str) -> tuple[str, ...]:
    """The path state for a special URL: ``\\`` is ``/``; dot segments are resolved."""
    segments = re.split(r"[/\\]", text)[1:] if text else [""]
    path: list[str] = []
    for index, segment in enumerate(segments):
        is_last = index == len(segments) - 1
        lowered = segment.lower()
        if lowered in _DOUBLE_DOT:
            if path:
                path.pop()
            if is_last:
                path.append("")
        elif lowered in _SINGLE_DOT:
            if is_last:
                path.append("")
        else:
            path.append(_percent_encode(segment, _PATH_SET))
    return tuple(path)
