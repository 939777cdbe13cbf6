"""`fullduplex.realtime.jsontext`: the same JSON text and values as the standard library's
compact, non-ASCII, NaN-refusing settings, whether orjson is installed or not."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.realtime import jsontext

_std_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_dumps_writes_what_json_reads_back_as_the_standard_library_does(value: Any) -> None:
    text = jsontext.dumps(value)
    assert json.loads(text) == json.loads(_std_dumps(value))


@given(json_values)
def test_loads_reads_the_standard_librarys_text(value: Any) -> None:
    text = _std_dumps(value)
    assert jsontext.loads(text) == json.loads(text)


def test_dumps_is_compact_and_keeps_non_ascii_text() -> None:
    assert jsontext.dumps(["é", 1, None, {"k": True}]) == '["é",1,null,{"k":true}]'


class Real(float):
    """A float subclass, as numpy's float64 is."""


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf, Real("nan")])
@pytest.mark.parametrize("wrap", [lambda x: ["m", {"x": x}], lambda x: ("m", None, (x,)), float])
def test_dumps_refuses_nan_and_infinities(number: float, wrap: Any) -> None:
    with pytest.raises(ValueError):
        jsontext.dumps(wrap(number))


def test_dumps_refuses_bytes_with_type_error() -> None:
    with pytest.raises(TypeError):
        jsontext.dumps(["m", b"\x00"])


def test_dumps_writes_integer_keys_and_big_integers_as_the_standard_library() -> None:
    value = {1: 2**80, "s": [2**64]}
    assert jsontext.dumps(value) == _std_dumps(value)


def test_dumps_refuses_a_dataclass_as_the_standard_library() -> None:
    from dataclasses import dataclass

    @dataclass
    class Point:
        x: int

    with pytest.raises(TypeError):
        jsontext.dumps([Point(1)])


@pytest.mark.parametrize(
    "text",
    [
        "[NaN]",
        "[Infinity]",
        "[18446744073709551616]",
        '{"a":[1.5,-9223372036854775809]}',
        '["\\ud800"]',
        "[" * 900 + "]" * 900,
    ],
)
def test_loads_reads_what_only_the_standard_library_reads(text: str) -> None:
    expected = json.loads(text)
    result = jsontext.loads(text)
    assert repr(result) == repr(expected)


@pytest.mark.parametrize("text", ["", "[1,", "[1] x", "{'a': 1}"])
def test_loads_refuses_what_is_not_json_with_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        jsontext.loads(text)


def test_uses_orjson_when_installed() -> None:
    try:
        import orjson  # noqa: F401
    except ImportError:
        assert not jsontext.HAS_ORJSON
    else:
        assert jsontext.HAS_ORJSON
        assert jsontext.loads(jsontext.dumps([str(uuid.uuid4())]))


def test_without_orjson_the_standard_library_does_everything() -> None:
    # A fresh interpreter in which importing orjson fails, as without the speed extra.
    script = (
        "import sys; sys.modules['orjson'] = None\n"
        "from fullduplex.realtime import jsontext\n"
        "assert not jsontext.HAS_ORJSON\n"
        "assert jsontext.dumps(['é', 1, None]) == '[\"é\",1,null]'\n"
        "assert jsontext.loads('[18446744073709551616]') == [18446744073709551616]\n"
        "try:\n"
        "    jsontext.dumps([float('nan')])\n"
        "except ValueError:\n"
        "    print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr
