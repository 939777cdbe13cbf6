"""The URL Standard's parser for special URLs, as `WebSocket` uses it.

The expected serializations are the URL Standard's; each was also checked against Chromium's
``new URL(...)`` (which implements the standard) when these tests were written.
"""

from __future__ import annotations

import pytest

from fullduplex.io.whatwg_url import URLParseError, parse_special_url


@pytest.mark.parametrize(
    ("given", "href"),
    [
        ("ws://h/a/./b/../c", "ws://h/a/c"),
        ("ws://[::ffff:1.2.3.4]/", "ws://[::ffff:102:304]/"),
        ("ws://h/%2e%2E/x/.%2e", "ws://h/"),
        ("ws://EXAMPLE.com./", "ws://example.com./"),
        ("ws://h\tx/", "ws://hx/"),
        (" ws://h/ ", "ws://h/"),
        ("WS://H/", "ws://h/"),
        ("ws://h?x", "ws://h/?x"),
        ("ws://@h/", "ws://h/"),
        ("ws://%41.com", "ws://a.com/"),
        ("ws://0/", "ws://0.0.0.0/"),
        ("ws://1.0x10/", "ws://1.0.0.16/"),
        ("ws://0x7f.1/", "ws://127.0.0.1/"),
        ("ws://4294967295/", "ws://255.255.255.255/"),
        ("ws://1.2.3.0x8/", "ws://1.2.3.8/"),
        ("ws://h:0080/", "ws://h/"),
        ("ws://h:/", "ws://h/"),
        ("wss://h:443/", "wss://h/"),
        ("ws://h:443/", "ws://h:443/"),
        ("ws://[0:0:0:0:0:0:0:1]:8080/", "ws://[::1]:8080/"),
        ("ws://[1:0:0:2:0:0:0:3]/", "ws://[1:0:0:2::3]/"),
        ("ws://[1:2:3:4:5:6:7:8]/", "ws://[1:2:3:4:5:6:7:8]/"),
        ("ws://[1:0:2:0:3:0:4:0]/", "ws://[1:0:2:0:3:0:4:0]/"),
        ("ws://h/a b?c d`{}<>\"'", "ws://h/a%20b?c%20d`{}%3C%3E%22%27"),
        ("ws://h/\\x", "ws://h//x"),
        ("ws:\\\\h\\p", "ws://h/p"),
        ("ws:h", "ws://h/"),
        ("ws:/h", "ws://h/"),
        ("ws:///h", "ws://h/"),
        ("ws://u:p:q@h/", "ws://u:p%3Aq@h/"),
        ("ws://a@b@h/", "ws://a%40b@h/"),
        ("ws://user:pa ss@h/", "ws://user:pa%20ss@h/"),
        ("https://h:443/", "https://h/"),
        ("http://h:443/", "http://h:443/"),
        ("ws://xn--tda.com/", "ws://xn--tda.com/"),
        ("ws://XN--TDA.com/", "ws://xn--tda.com/"),
        ("ws://ü.com/", "ws://xn--tda.com/"),
        ("ws://%e2%98%83/", "ws://xn--n3h/"),
        ("ws://\u00adh/", "ws://h/"),
        ("ws://h/..", "ws://h/"),
        ("ws://h/a/..", "ws://h/"),
        ("ws://h/a/.", "ws://h/a/"),
        ("ws://h/%41", "ws://h/%41"),
        ("wss://ex%41mple.com:443/%zz p?q=ü", "wss://example.com/%zz%20p?q=%C3%BC"),
        ("ws://h/é?é'", "ws://h/%C3%A9?%C3%A9%27"),
        ("ws://h/?", "ws://h/?"),
        ("ws://h/#", "ws://h/#"),
        ("ws://h/#frag ment`", "ws://h/#frag%20ment%60"),
        ("ws://h/\ud800", "ws://h/%EF%BF%BD"),
    ],
)
def test_parser_serializes_as_the_url_standard(given: str, href: str) -> None:
    assert parse_special_url(given).href == href


@pytest.mark.parametrize(
    "given",
    [
        "ws://1.2.3.4.5/",
        "ws://256.1/",
        "ws://u@/",
        "ws://a%2Fb/",
        "ws://09/",
        "ws://h:8a/",
        "ws://h:65536/",
        "ws://%zz/",
        "wss://",
        "ws://[::1%25eth0]/",
        "ws://[::1/",
        "ws://[::g]/",
        "ws://h|/",
        "ws://h^/",
        "ws://h%/",
        "ws://h\x7f/",
        "ws://a b/",
        "ws://0x100000000/",
        "ws://1.2.3.08/",
        "ws://foo.0x/",
        "ws://foo.09/",
        "ws://a.b.c.09/",
        "echo",  # relative: there is no base URL
        "/echo",
        "127.0.0.1:8000",
    ],
)
def test_parser_fails_where_the_url_standard_fails(given: str) -> None:
    # Chromium accepts "ws://a b/" (as "ws://a%20b/"); the standard forbids a space in a host.
    with pytest.raises(URLParseError):
        parse_special_url(given)


@pytest.mark.parametrize(
    "given", ["localhost:8000", "mailto:someone@example.org", "file:///tmp/x", "blob:x"]
)
def test_parser_refuses_schemes_that_are_not_special_or_file(given: str) -> None:
    with pytest.raises(URLParseError, match="special"):
        parse_special_url(given)


def test_record_exposes_origin_resource_name_and_fields() -> None:
    record = parse_special_url("wss://u:p@Example.com:8443/a/b?x=1#top")
    assert (record.scheme, record.username, record.password) == ("wss", "u", "p")
    assert (record.host, record.port, record.path) == ("example.com", 8443, ("a", "b"))
    assert (record.query, record.fragment) == ("x=1", "top")
    assert record.origin == "wss://example.com:8443"
    assert record.resource_name == "/a/b?x=1"
    assert parse_special_url("ws://h/p?").resource_name == "/p"
    assert parse_special_url("ws://[::1]/").origin == "ws://[::1]"
