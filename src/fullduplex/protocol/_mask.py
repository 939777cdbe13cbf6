"""Masking and unmasking of payloads (RFC 6455 §5.3), with a compiled version when built."""

from __future__ import annotations

import os

__all__ = ["apply_mask"]


def _apply_mask_python(data: bytes | bytearray | memoryview, mask: bytes | bytearray) -> bytes:
    """Return ``data`` XORed with the repeating 4-byte ``mask``."""
    length = len(data)
    if not length:
        return b""
    # One big-integer XOR runs in C and beats a per-byte loop by two orders of magnitude.
    key = (bytes(mask) * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")


if os.environ.get("FULLDUPLEX_NO_SPEEDUPS") == "1":  # the test suite's pure-Python pass
    apply_mask = _apply_mask_python
else:
    try:
        from .._speedups import apply_mask
    except ImportError:  # no compiled extension: the pure-Python path is complete on its own
        apply_mask = _apply_mask_python
