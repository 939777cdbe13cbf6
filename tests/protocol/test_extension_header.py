"""Tests for the Sec-WebSocket-Extensions header (RFC 6455 §9.1)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.exceptions import NegotiationError
from fullduplex.protocol.extensions.base import ExtensionParameters
from fullduplex.protocol.extensions.header import format_extension_header, parse_extension_header

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
parameters = st.lists(st.tuples(tokens, st.none() | tokens), max_size=4)
extensions = st.lists(st.tuples(tokens, parameters), min_size=1, max_size=4)


def test_parse_reads_browser_offer() -> None:
    assert parse_extension_header(["permessage-deflate; client_max_window_bits"]) == [
        ("permessage-deflate", [("client_max_window_bits", None)])
    ]


def test_parse_reads_several_extensions_across_header_lines() -> None:
    values = ["permessage-deflate; server_max_window_bits=10, x-foo", "x-bar;a=1;b"]
    assert parse_extension_header(values) == [
        ("permessage-deflate", [("server_max_window_bits", "10")]),
        ("x-foo", []),
        ("x-bar", [("a", "1"), ("b", None)]),
    ]


def test_parse_allows_whitespace_around_separators() -> None:
    value = " permessage-deflate \t;  client_max_window_bits = 10 ; server_no_context_takeover ,x "
    assert parse_extension_header([value]) == [
        (
            "permessage-deflate",
            [("client_max_window_bits", "10"), ("server_no_context_takeover", None)],
        ),
        ("x", []),
    ]


def test_parse_unquotes_quoted_values() -> None:
    assert parse_extension_header(['x; a="10"; b="a\\bc"']) == [("x", [("a", "10"), ("b", "abc")])]


def test_parse_keeps_extension_name_case() -> None:
    assert parse_extension_header(["PerMessage-Deflate"]) == [("PerMessage-Deflate", [])]


def test_parse_ignores_empty_list_elements() -> None:
    # RFC 7230 §7: a recipient MUST accept and ignore empty list elements.
    assert parse_extension_header([", a ,, b,"]) == [("a", []), ("b", [])]


def test_parse_returns_nothing_without_headers() -> None:
    assert parse_extension_header([]) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("a;", "parameter name"),
        ("a;;b", "parameter name"),
        ("a; =1", "parameter name"),
        ("a; b=", "parameter value"),
        ("a b", "expected ',' or ';'"),
        ("a; b=1 2", "expected ',' or ';'"),
        ("(a)", "extension name"),
        ('a; b="10', "quoted-string"),
        ('a; b="x y"', "not a token"),
        ('a; b=""', "not a token"),
        ('a; b="\x01"', "quoted-string"),
        ("a; b=c/d", "expected ',' or ';'"),
    ],
)
def test_parse_rejects_malformed_header(value: str, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        parse_extension_header([value])


def test_format_writes_parameters() -> None:
    offers: list[tuple[str, ExtensionParameters]] = [
        (
            "permessage-deflate",
            [("client_max_window_bits", None), ("server_max_window_bits", "10")],
        ),
        ("x", []),
    ]
    assert format_extension_header(offers) == (
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x"
    )


@pytest.mark.parametrize(
    "offer",
    [("bad name", []), ("x", [("a b", None)]), ("x", [("a", "1 2")]), ("x", [("a", "")])],
)
def test_format_refuses_non_token(offer: tuple[str, ExtensionParameters]) -> None:
    with pytest.raises(ValueError, match="not an HTTP token"):
        format_extension_header([offer])


@given(extensions)
def test_parse_inverts_format(values: list[tuple[str, ExtensionParameters]]) -> None:
    assert parse_extension_header([format_extension_header(values)]) == values


@given(st.text())
def test_garbage_only_raises_negotiation_error(value: str) -> None:
    with contextlib.suppress(NegotiationError):
        parse_extension_header([value])
