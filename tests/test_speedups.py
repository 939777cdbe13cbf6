"""The compiled apply_mask (fullduplex._speedups) against the pure-Python one it replaces."""

from __future__ import annotations

import os
import random
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullduplex.protocol import _mask
from fullduplex.protocol._mask import _apply_mask_python


@pytest.fixture(scope="module")
def speedups() -> ModuleType:
    try:
        from fullduplex import _speedups
    except ImportError:
        message = (
            "fullduplex._speedups is not built (no C compiler or no Python headers?); "
            "rebuild with: .venv/bin/pip install -e ."
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    return _speedups


def unaligned(data: bytes, offset: int) -> memoryview:
    """A memoryview of ``data`` that starts ``offset`` bytes into a larger buffer."""
    return memoryview(bytearray(offset) + data)[offset:]


def test_apply_mask_matches_pure_python_for_every_short_length_and_alignment(
    speedups: ModuleType,
) -> None:
    rng = random.Random(6455)
    for length in range(101):
        data = rng.randbytes(length)
        mask = rng.randbytes(4)
        expected = _apply_mask_python(data, mask)
        for offset in range(8):
            assert speedups.apply_mask(unaligned(data, offset), mask) == expected, (
                length,
                offset,
            )


def test_apply_mask_matches_pure_python_for_one_mebibyte(speedups: ModuleType) -> None:
    rng = random.Random(7692)
    data = rng.randbytes(2**20 + 3)
    mask = rng.randbytes(4)
    for payload in (data, bytearray(data), unaligned(data, 5)):
        assert speedups.apply_mask(payload, mask) == _apply_mask_python(payload, mask)


@given(
    data=st.binary(max_size=300), mask=st.binary(min_size=4, max_size=4), offset=st.integers(0, 7)
)
def test_apply_mask_matches_pure_python_for_any_payload(
    speedups: ModuleType, data: bytes, mask: bytes, offset: int
) -> None:
    assert speedups.apply_mask(unaligned(data, offset), mask) == _apply_mask_python(data, mask)


def test_apply_mask_twice_restores_the_payload(speedups: ModuleType) -> None:
    data = bytes(range(256)) * 5
    mask = b"\x37\xfa\x21\x3d"
    assert speedups.apply_mask(speedups.apply_mask(data, mask), mask) == data


def test_apply_mask_accepts_every_bytes_like_type(speedups: ModuleType) -> None:
    data = b"Hello, fullduplex!"
    mask = b"\x01\x02\x03\x04"
    expected = _apply_mask_python(data, mask)
    assert speedups.apply_mask(bytearray(data), bytearray(mask)) == expected
    assert speedups.apply_mask(memoryview(data), memoryview(mask)) == expected
    assert speedups.apply_mask(data=data, mask=mask) == expected


def test_apply_mask_copies_a_non_contiguous_buffer(speedups: ModuleType) -> None:
    data = bytes(range(200))
    mask = b"\xaa\xbb\xcc\xdd"
    strided = memoryview(data)[::3]
    assert speedups.apply_mask(strided, mask) == _apply_mask_python(strided, mask)


def test_apply_mask_returns_bytes_even_for_an_empty_payload(speedups: ModuleType) -> None:
    result = speedups.apply_mask(bytearray(), b"abcd")
    assert result == b""
    assert type(result) is bytes


def test_apply_mask_rejects_a_mask_that_is_not_four_bytes(speedups: ModuleType) -> None:
    for mask in (b"", b"abc", b"abcde"):
        with pytest.raises(ValueError, match="mask must be 4 bytes"):
            speedups.apply_mask(b"payload", mask)


def test_apply_mask_rejects_arguments_that_are_not_bytes_like(speedups: ModuleType) -> None:
    with pytest.raises(TypeError):
        speedups.apply_mask("text", b"abcd")
    with pytest.raises(TypeError):
        speedups.apply_mask(b"data", 1234)
    with pytest.raises(TypeError, match="missing required argument 'mask'"):
        speedups.apply_mask(b"data")
    with pytest.raises(TypeError, match="unexpected keyword argument 'key'"):
        speedups.apply_mask(b"data", key=b"abcd")
    with pytest.raises(TypeError, match="multiple values for argument 'data'"):
        speedups.apply_mask(b"data", b"abcd", data=b"data")
    with pytest.raises(TypeError, match="takes 2 positional arguments"):
        speedups.apply_mask(b"data", b"abcd", b"more")


def test_protocol_uses_the_compiled_mask_unless_told_not_to(speedups: ModuleType) -> None:
    if os.environ.get("FULLDUPLEX_NO_SPEEDUPS") == "1":
        assert _mask.apply_mask is _apply_mask_python
    else:
        assert _mask.apply_mask is speedups.apply_mask
