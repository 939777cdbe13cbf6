"""The test suite's own WebSocket frame encoder, written from RFC 6455 §5.2 and independent of
`fullduplex.protocol.frames`: tests feed the library bytes it did not make itself, so a bug in
its serializer cannot hide the same bug in its parser."""

from __future__ import annotations

__all__ = ["encode_frame", "close_payload"]


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
) -> bytes:
    """One frame, as RFC 6455 §5.2 draws it; ``mask`` is None for an unmasked frame."""
    first = (fin << 7) | (rsv1 << 6) | (rsv2 << 5) | (rsv3 << 4) | opcode
    mask_bit = 0x80 if mask is not None else 0
    length = len(payload)
    # The shortest length encoding (§5.2): 7 bits, or 126 and 16 bits, or 127 and 64 bits.
    if length < 126:
        header = bytes([first, mask_bit | length])
    elif length < 1 << 16:
        header = bytes([first, mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([first, mask_bit | 127]) + length.to_bytes(8, "big")
    if mask is None:
        return header + payload
    # §5.3: octet i of the payload is XORed with octet i modulo 4 of the masking key.
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def close_payload(code: int, reason: str = "") -> bytes:
    """A close frame's payload (§5.5.1): the code in two bytes, then the UTF-8 reason."""
    return code.to_bytes(2, "big") + reason.encode()
