"""The SockJS wire format: frames, their wrappings per transport, and client payloads."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.transports.sockjs import codec


def test_message_frame_escapes_what_browsers_mangle() -> None:
    frame = codec.message_frame(["\u2028\u200c\ufff0\x00\n", "\ud800"])
    assert frame == 'a["\\u2028\\u200c\\ufff0\\u0000\\n","\\ud800"]'
    frame.encode()  # a lone surrogate went out as an escape: the frame is valid UTF-8


def test_message_frame_keeps_other_characters_verbatim() -> None:
    assert codec.message_frame(["é😀%41</script>"]) == 'a["é😀%41</script>"]'


def test_close_frame() -> None:
    assert codec.close_frame(3000, "Go away!") == 'c[3000,"Go away!"]'


@given(st.lists(st.text()))
def test_message_frame_decodes_to_the_messages(messages: list[str]) -> None:
    frame = codec.message_frame(messages)
    assert frame[0] == "a"
    assert json.loads(frame[1:]) == messages
    assert codec.ESCAPED_BY_SERVER.search(frame) is None
    assert "\r" not in frame and "\n" not in frame  # one EventSource line, always


@given(st.lists(st.text()))
def test_script_wrappings_cannot_end_the_script_element(messages: list[str]) -> None:
    frame = codec.message_frame([*messages, "</script><!--"])
    for chunk in (codec.htmlfile_chunk(frame), codec.jsonp_body("cb", frame)):
        text = chunk.decode()
        script = re.search(r"\((\".*\")\);", text, re.S)
        assert script is not None
        assert "<" not in script.group(1) and ">" not in script.group(1)
        assert json.loads(script.group(1)) == frame


def test_transport_wrappings_match_the_protocol() -> None:
    assert codec.xhr_chunk("o") == b"o\n"
    assert codec.eventsource_chunk('a["x"]') == b'data: a["x"]\r\n\r\n'
    assert codec.eventsource_chunk('a["%41"]') == b'data: a["%2541"]\r\n\r\n'
    assert codec.htmlfile_chunk('a["x"]') == b'<script>\np("a[\\"x\\"]");\n</script>\r\n'
    assert codec.jsonp_body("x", "o") == b'/**/x("o");\r\n'


def test_htmlfile_prelude_names_the_callback_and_fills_a_kilobyte() -> None:
    prelude = codec.htmlfile_prelude("callback")
    assert b"var c = parent.callback;" in prelude
    assert len(prelude) > 1024 and prelude.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", codec.CallbackRequired),
        ("c=", codec.CallbackRequired),
        ("c=%20", codec.InvalidCallback),
        ("c=abc(", codec.InvalidCallback),
        ("c=abc%28", codec.InvalidCallback),
    ],
)
def test_server_refuses_missing_or_unsafe_callbacks(query: str, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        codec.callback_from_query(query)
    assert raised.value.http_status == 500  # type: ignore[attr-defined]


def test_callback_is_percent_decoded() -> None:
    assert codec.callback_from_query("c=%63allback&t=1") == "callback"


def test_xhr_send_payloads() -> None:
    assert codec.decode_xhr_send(b'["a","b"]') == ["a", "b"]
    assert codec.decode_xhr_send(b"[]") == []
    assert codec.decode_xhr_send(b'"a"') == ["a"]
    with pytest.raises(codec.PayloadExpected, match=r"Payload expected\."):
        codec.decode_xhr_send(b"")
    for broken in (b'["x', b"[1]", b"{}", b"\xff", b"[" * 100_000):
        with pytest.raises(codec.BrokenJSON, match=r"Broken JSON encoding\."):
            codec.decode_xhr_send(broken)


def test_jsonp_send_takes_the_d_field_of_a_form_or_the_raw_body() -> None:
    form = "application/x-www-form-urlencoded"
    assert codec.decode_jsonp_send(b"d=%5B%22x%22%5D", form) == ["x"]
    assert codec.decode_jsonp_send(b'["%61bc"]', "text/plain") == ["%61bc"]
    for empty in (b"", b"d=", b"p=p"):
        with pytest.raises(codec.PayloadExpected):
            codec.decode_jsonp_send(empty, form)
    with pytest.raises(codec.BrokenJSON):
        codec.decode_jsonp_send(b"d=%5B%22x", form)


def test_websocket_messages() -> None:
    assert codec.decode_websocket_message("") == []
    assert codec.decode_websocket_message("[]") == []
    assert codec.decode_websocket_message('"a"') == ["a"]
    assert codec.decode_websocket_message('["a","b"]') == ["a", "b"]
    with pytest.raises(codec.BrokenJSON):
        codec.decode_websocket_message('["a')


@given(st.text())
def test_garbage_payloads_only_raise_bad_request(text: str) -> None:
    with contextlib.suppress(codec.BadRequest):
        codec.decode_xhr_send(text.encode("utf-8", "surrogatepass"))


def test_iframe_page_loads_the_client_from_the_given_url() -> None:
    page = codec.iframe_page("/echo/sockjs.min.js").decode()
    assert '<script src="/echo/sockjs.min.js"></script>' in page
    assert "SockJS.bootstrap_iframe();" in page


def test_hixie76_answer_matches_the_protocol_suite() -> None:
    answer = codec.hixie76_challenge_response(
        "4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00", b"aaaaaaaa"
    )
    assert answer == b"\xca4\x00\xd8\xa5\x08G\x97,\xd5qZ\xba\xbfC{"
    with pytest.raises(ValueError):
        codec.hixie76_challenge_response("123", "1 2", b"aaaaaaaa")


def test_codec_does_no_io() -> None:
    source = Path(codec.__file__).read_text()
    assert "import asyncio" not in source and "import socket" not in source
    assert "import time" not in source
