"""The choice between the compiled extension and pure Python (fullduplex.protocol._compiled).

These tests need no built extension in the pure-Python pass: they check that
``FULLDUPLEX_NO_SPEEDUPS=1`` gives the pure functions, and that the pure functions keep the
contract the compiled ones share (tests/protocol/test_speedups.py compares the two).
"""

from __future__ import annotations

import os
import random

import pytest

from fullduplex.protocol import _compiled
from fullduplex.protocol._compiled import _apply_mask_python, _unmask_payload_python

IS_PURE = os.environ.get("FULLDUPLEX_NO_SPEEDUPS") == "1"


@pytest.mark.skipif(not IS_PURE, reason="the pure-Python pass (FULLDUPLEX_NO_SPEEDUPS=1)")
def test_protocol_runs_pure_python_when_told_not_to_use_the_extension() -> None:
    assert _compiled.apply_mask is _apply_mask_python
    assert _compiled.unmask_payload is _unmask_payload_python
    assert _compiled.parse_messages is None
    assert _compiled.PlainReads is None


@pytest.mark.skipif(IS_PURE, reason="the compiled pass")
def test_protocol_uses_the_compiled_extension_by_default() -> None:
    try:
        from fullduplex.protocol import _speedups
    except ImportError:
        message = (
            "fullduplex.protocol._speedups is not built; rebuild with: "
            "FULLDUPLEX_BUILD_SPEEDUPS=require .venv/bin/pip install -e ."
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    assert _compiled.apply_mask is _speedups.apply_mask
    assert _compiled.unmask_payload is _speedups.unmask_payload
    assert _compiled.parse_messages is _speedups.parse_messages
    assert _compiled.PlainReads is _speedups.PlainReads


def test_pure_apply_mask_is_its_own_inverse() -> None:
    data = random.Random(5).randbytes(1000)
    mask = b"\x01\x80\xfe\x7f"
    assert _apply_mask_python(_apply_mask_python(data, mask), mask) == data
    assert _apply_mask_python(b"", mask) == b""


def test_pure_unmask_payload_starts_anywhere_in_the_masked_payload() -> None:
    key = b"\x0f\xf0\xaa\x55"
    payload = bytes(range(64))
    buffer = bytearray(b"hd" + key + _apply_mask_python(payload, key))
    for start in range(6, len(buffer) + 1):
        assert _unmask_payload_python(buffer, 2, start, len(buffer)) == payload[start - 6 :]
