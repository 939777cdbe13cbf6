"""The permessage-deflate extension (RFC 7692): negotiation and per-message compression.

Theory of operation. The client offers parameters (`ClientPerMessageDeflate.offer`), the server
answers with the first offer it can honour (`ServerPerMessageDeflate.negotiate`), and the client
checks the answer (`ClientPerMessageDeflate.accept`). Both ends then hold a `PerMessageDeflate`
that sees it from its own side: "local" is what this end sends, "remote" what the peer sends.

On the wire a compressed message is one raw DEFLATE stream flushed with ``Z_SYNC_FLUSH``, its
first frame marked with RSV1 and the trailing ``00 00 ff ff`` of its last frame removed (§7.2.1).
With context takeover the LZ77 window carries from one message to the next; without it each
message starts from an empty window.

Small messages go out uncompressed (RSV1 clear, which §6 allows for any message): a message
shorter than ``compression_threshold`` bytes, sent in one frame, skips the compressor. Neither
window sees it, so the two ends stay in step with or without context takeover. A fragmented
message is always compressed: its first frame does not tell how long it will be.

Memory: zlib objects are created on first use and, without context takeover, dropped after each
message, so an idle connection holds none. The compressor uses ``memLevel`` 5 by default: zlib
needs ``(1 << (window_bits + 2)) + (1 << (memLevel + 9))`` bytes for deflate, so a 15-bit window
costs 144 KiB instead of the 256 KiB of the default ``memLevel`` 8, for a slightly worse ratio.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import NamedTuple

from ...exceptions import MessageTooBig, NegotiationError, ProtocolViolation
from ..frames import Frame, Opcode
from .base import ExtensionParameters

__all__ = [
    "ClientPerMessageDeflate",
    "PerMessageDeflate",
    "ServerPerMessageDeflate",
    "DEFAULT_COMPRESSION_THRESHOLD",
]

_NAME = "permessage-deflate"
_EMPTY_BLOCK = b"\x00\x00\xff\xff"
_MAX_WINDOW_BITS = 15
# RFC 7692 §7.1.2: window bits are "a decimal integer value without leading zeroes between 8 to
# 15", so the valid spellings are exactly these.
_WINDOW_BITS = {str(bits): bits for bits in range(8, _MAX_WINDOW_BITS + 1)}
# zlib (since 1.2.9) refuses an 8-bit window for raw deflate. A 9-bit compressor is safe for a
# negotiated 8: zlib never emits a distance beyond its window minus MIN_LOOKAHEAD (262 bytes),
# i.e. 250 bytes, which fits a 256-byte window. Inflate accepts 8 and uses the negotiated value.
_MIN_COMPRESSOR_WINDOW_BITS = 9
_COMPRESS_WINDOW_BITS = 12

DEFAULT_COMPRESSION_THRESHOLD = 1024
"""Messages shorter than this (in bytes) are sent uncompressed by default.

Node's ``ws`` uses the same 1 KiB threshold. Below it, deflate saves a few bytes at best: a
short message gains little from the window, the flush marker and block header eat into what
it saves, and one that does not repeat earlier text grows. Each compressed message also costs
a zlib call at both ends, which on small, frequent messages (chat lines, Socket.IO events,
heartbeats) costs more CPU than the bandwidth it saves is worth.
"""


class PerMessageDeflate:
    """A negotiated permessage-deflate extension, for one connection.

    Build it through `ClientPerMessageDeflate` or `ServerPerMessageDeflate`; the arguments are the
    negotiated parameters seen from this end.

    Args:
        remote_no_context_takeover: the peer starts each message with an empty window, so the
            decompressor is dropped after each message.
        local_no_context_takeover: this end must start each message with an empty window.
        remote_max_window_bits: the peer's LZ77 window, 8 to 15.
        local_max_window_bits: this end's LZ77 window, 8 to 15.
        compress_level: zlib level, 0 (store) to 9 (smallest), or -1 for zlib's default.
        memory_level: zlib ``memLevel``, 1 to 9; lower uses less memory per connection.
        compression_threshold: messages sent in one frame and shorter than this many bytes
            go out uncompressed; 0 compresses every message.

    Raises:
        ValueError: a setting is out of range.
    """

    __slots__ = (
        "_compressor",
        "_decompressor",
        "_is_decoding",
        "_is_encoding",
        "compress_level",
        "compression_threshold",
        "local_max_window_bits",
        "local_no_context_takeover",
        "memory_level",
        "remote_max_window_bits",
        "remote_no_context_takeover",
    )

    name = _NAME

    def __init__(
        self,
        *,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        compress_level: int = 6,
        memory_level: int = 5,
        compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
    ) -> None:
        _check_window_bits("remote_max_window_bits", remote_max_window_bits)
        _check_window_bits("local_max_window_bits", local_max_window_bits)
        _check_compression(compress_level, memory_level, compression_threshold)
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_level = compress_level
        self.memory_level = memory_level
        self.compression_threshold = compression_threshold
        # Created on first use and dropped when no longer needed: see the module docstring.
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._is_decoding = False  # whether the message being received is compressed
        self._is_encoding = False  # whether the message being sent is compressed

    def decode(self, frame: Frame, *, max_size: int) -> Frame:
        """Inflate a received data frame if its message is compressed.

        Args:
            frame: a data frame; a message is compressed when its first frame has RSV1 set.
            max_size: the largest inflated payload acceptable for this frame.

        Returns:
            The frame with RSV1 cleared and its payload inflated, or the frame unchanged when its
            message is not compressed.

        Raises:
            ProtocolViolation: RSV1 is set on a continuation frame, or the data is not valid
                DEFLATE; fail the connection.
            MessageTooBig: the payload, inflated or not, would exceed ``max_size``; inflation
                stops at that bound, so a decompression bomb never allocates more.
        """
        if frame.opcode == Opcode.CONTINUATION:
            # RFC 7692 §6.1: RSV1 is set on the first frame of a message only.
            if frame.rsv1:
                raise ProtocolViolation("RSV1 set on a continuation frame")
        else:
            self._is_decoding = frame.rsv1
        if not self._is_decoding:
            # The connection lets frames exceed the limit by deflate's worst-case overhead,
            # since it checks inflated sizes here: an uncompressed frame is checked here too.
            if len(frame.payload) > max_size:
                raise MessageTooBig(f"uncompressed message exceeds the limit of {max_size} bytes")
            return frame

        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-self.remote_max_window_bits)
        # RFC 7692 §7.2.2: append 00 00 ff ff to the end of the message, then inflate.
        tail = _EMPTY_BLOCK if frame.fin else b""
        try:
            payload = decompressor.decompress(frame.payload + tail, max_size + 1)
        except zlib.error as exc:
            raise ProtocolViolation(f"invalid compressed data: {exc}") from exc
        if len(payload) > max_size or decompressor.unconsumed_tail:
            raise MessageTooBig(f"decompressed message exceeds the limit of {max_size} bytes")
        # RFC 7692 §7.2.3.3: a sender may end a message with a BFINAL block, which ends the
        # stream; only the bytes appended above may follow it, and the next message starts a
        # new stream with an empty window.
        if decompressor.eof and decompressor.unused_data != tail:
            raise ProtocolViolation("data after the final DEFLATE block")
        if frame.fin and (self.remote_no_context_takeover or decompressor.eof):
            self._decompressor = None
        return frame._replace(payload=payload, rsv1=False)

    def encode(self, frame: Frame) -> Frame:
        """Deflate a data frame about to be sent, unless its message is below the threshold.

        A message sent in one frame and shorter than ``compression_threshold`` is left as it
        is. A fragmented message is compressed frame by frame: pass its frames in order, the
        first with its TEXT or BINARY opcode.

        Args:
            frame: a data frame.

        Returns:
            The frame with its payload deflated, RSV1 set on the first frame of the message;
            or the frame unchanged (RSV1 clear) when its message is sent uncompressed.
        """
        if frame.opcode != Opcode.CONTINUATION:
            self._is_encoding = not frame.fin or len(frame.payload) >= self.compression_threshold
        if not self._is_encoding:
            return frame
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = zlib.compressobj(
                self.compress_level,
                zlib.DEFLATED,
                -max(self.local_max_window_bits, _MIN_COMPRESSOR_WINDOW_BITS),
                self.memory_level,
            )
        payload = compressor.compress(frame.payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if frame.fin:
            # RFC 7692 §7.2.1: remove the empty stored block 00 00 ff ff the sync flush ended with.
            payload = payload.removesuffix(_EMPTY_BLOCK)
            if self.local_no_context_takeover:
                self._compressor = None
        # RFC 7692 §6: RSV1 marks the first frame of a compressed message.
        return frame._replace(payload=payload, rsv1=frame.opcode != Opcode.CONTINUATION)


class ClientPerMessageDeflate:
    """Offers permessage-deflate from a client and accepts the server's answer.

    The defaults offer ``permessage-deflate; client_max_window_bits``, as browsers do.

    Args:
        server_no_context_takeover: ask the server to start each message with an empty window.
        client_no_context_takeover: promise to start each message with an empty window.
        server_max_window_bits: ask the server for a window of at most this size, 8 to 15.
        client_max_window_bits: True to let the server choose this client's window, a number to
            also announce the largest window this client uses, None not to mention it.
        compress_level: zlib level, 0 to 9, or -1 for zlib's default.
        memory_level: zlib ``memLevel``, 1 to 9.
        compress_window_bits: the window this client compresses with when the negotiation
            allows a larger one; see `ServerPerMessageDeflate`.
        compression_threshold: messages shorter than this many bytes are sent uncompressed
            (see `DEFAULT_COMPRESSION_THRESHOLD`); 0 compresses every message.

    Raises:
        ValueError: a setting is out of range.
    """

    name = _NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | bool | None = True,
        compress_level: int = 6,
        memory_level: int = 5,
        compress_window_bits: int = _COMPRESS_WINDOW_BITS,
        compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is not None and client_max_window_bits is not True:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        _check_compression(compress_level, memory_level, compression_threshold)
        _check_window_bits("compress_window_bits", compress_window_bits)
        self.compress_window_bits = compress_window_bits
        self.compression_threshold = compression_threshold
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_level = compress_level
        self.memory_level = memory_level

    def offer(self) -> ExtensionParameters:
        """Return the parameters of this client's offer.

        Returns:
            The parameters to put after ``permessage-deflate`` in ``Sec-WebSocket-Extensions``.
        """
        parameters: ExtensionParameters = []
        if self.server_no_context_takeover:
            parameters.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            parameters.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            parameters.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            parameters.append(("client_max_window_bits", None))
        elif self.client_max_window_bits is not None:
            parameters.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return parameters

    def accept(self, parameters: ExtensionParameters) -> PerMessageDeflate:
        """Check the server's answer to `offer` and return the negotiated extension.

        Args:
            parameters: the parameters of ``permessage-deflate`` in the server's response.

        Returns:
            The extension, with "local" meaning this client.

        Raises:
            NegotiationError: the answer breaks RFC 7692 §7.1 or does not match the offer;
                fail the connection.
        """
        response = _parse_parameters(parameters, is_offer=False)
        # RFC 7692 §7.1.1.1: a server accepting server_no_context_takeover MUST include it.
        if self.server_no_context_takeover and not response.server_no_context_takeover:
            raise NegotiationError("server did not accept server_no_context_takeover")
        # RFC 7692 §7.1.2.1: a server accepting server_max_window_bits MUST answer with the same
        # or a smaller value.
        if self.server_max_window_bits is not None and (
            response.server_max_window_bits is None
            or response.server_max_window_bits > self.server_max_window_bits
        ):
            raise NegotiationError(
                f"server answered server_max_window_bits={response.server_max_window_bits} "
                f"to an offer of {self.server_max_window_bits}"
            )
        offered_client_bits = _offered_client_window_bits(self.client_max_window_bits)
        if response.client_max_window_bits is not None:
            # RFC 7692 §7.1.2.2: the response MUST NOT include client_max_window_bits unless the
            # offer did, and its value is the same as or smaller than the offer's.
            if offered_client_bits is None:
                raise NegotiationError("server answered client_max_window_bits, not offered")
            if response.client_max_window_bits > offered_client_bits:
                raise NegotiationError(
                    f"server answered client_max_window_bits={response.client_max_window_bits} "
                    f"to an offer of {offered_client_bits}"
                )
        return PerMessageDeflate(
            remote_no_context_takeover=response.server_no_context_takeover,
            # RFC 7692 §7.1.1.2: offering client_no_context_takeover is a promise to honour it.
            local_no_context_takeover=self.client_no_context_takeover
            or response.client_no_context_takeover,
            remote_max_window_bits=response.server_max_window_bits or _MAX_WINDOW_BITS,
            local_max_window_bits=min(
                response.client_max_window_bits or offered_client_bits or _MAX_WINDOW_BITS,
                self.compress_window_bits,
            ),
            compress_level=self.compress_level,
            memory_level=self.memory_level,
            compression_threshold=self.compression_threshold,
        )


class ServerPerMessageDeflate:
    """Chooses, on a server, the first permessage-deflate offer it can honour.

    Every setting only ever narrows what the client offered: the server answers with the
    smaller of its window and the client's, and with no context takeover when either side
    asks for it.

    Args:
        server_no_context_takeover: start each message sent with an empty window.
        client_no_context_takeover: require the client to start each message with an empty
            window, so its decompressor is freed between messages.
        server_max_window_bits: the largest window this server compresses with, 8 to 15.
        client_max_window_bits: the largest window the client may compress with, 8 to 15.
            Offers that do not include ``client_max_window_bits`` cannot be limited
            (§7.1.2.2) and are declined.
        compress_level: zlib level, 0 to 9, or -1 for zlib's default.
        memory_level: zlib ``memLevel``, 1 to 9.
        compress_window_bits: the window this server compresses with when the negotiation
            allows a larger one. A compressor may always use a smaller window than negotiated
            (any decoder reads its output), and a 12-bit window costs 16 KiB instead of the
            128 KiB of 15 bits, and about half the time, for a slightly worse ratio. It is
            not announced: some clients refuse an unrequested ``server_max_window_bits``.
        compression_threshold: messages shorter than this many bytes are sent uncompressed
            (see `DEFAULT_COMPRESSION_THRESHOLD`); 0 compresses every message.

    Raises:
        ValueError: a setting is out of range.
    """

    name = _NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        compress_level: int = 6,
        memory_level: int = 5,
        compress_window_bits: int = _COMPRESS_WINDOW_BITS,
        compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is not None:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        _check_compression(compress_level, memory_level, compression_threshold)
        _check_window_bits("compress_window_bits", compress_window_bits)
        self.compress_window_bits = compress_window_bits
        self.compression_threshold = compression_threshold
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_level = compress_level
        self.memory_level = memory_level

    def negotiate(
        self, offers: Sequence[ExtensionParameters]
    ) -> tuple[ExtensionParameters, PerMessageDeflate] | None:
        """Accept the first offer this server can honour.

        An offer with an unknown or duplicated parameter or an invalid value is declined, not
        an error: RFC 7692 §5 says the server MUST decline it, and a later offer may still do.

        Args:
            offers: the parameters of each ``permessage-deflate`` offer, in the client's order.

        Returns:
            The response parameters and the extension ("local" meaning this server), or None
            when every offer is declined: continue without compression.
        """
        for offer in offers:
            try:
                requested = _parse_parameters(offer, is_offer=True)
            except NegotiationError:
                continue
            if self.client_max_window_bits is not None and requested.client_max_window_bits is None:
                continue
            # RFC 7692 §7.1.1.1: a server accepting server_no_context_takeover MUST include it.
            server_no_context_takeover = (
                self.server_no_context_takeover or requested.server_no_context_takeover
            )
            # RFC 7692 §7.1.1.2: the server may always include client_no_context_takeover. It
            # echoes the client's own promise too, which lets it free the decompressor.
            client_no_context_takeover = (
                self.client_no_context_takeover or requested.client_no_context_takeover
            )
            # RFC 7692 §7.1.2.1: answer server_max_window_bits with the same or a smaller value;
            # the server may include it even if the offer did not.
            server_max_window_bits = _smallest(
                self.server_max_window_bits, requested.server_max_window_bits
            )
            # RFC 7692 §7.1.2.2: answer client_max_window_bits only if offered, with the same or
            # a smaller value; 15 is the default and goes unsaid.
            client_max_window_bits = _smallest(
                self.client_max_window_bits, requested.client_max_window_bits
            )
            response: ExtensionParameters = []
            if server_no_context_takeover:
                response.append(("server_no_context_takeover", None))
            if client_no_context_takeover:
                response.append(("client_no_context_takeover", None))
            if server_max_window_bits is not None:
                response.append(("server_max_window_bits", str(server_max_window_bits)))
            if client_max_window_bits is not None and client_max_window_bits < _MAX_WINDOW_BITS:
                response.append(("client_max_window_bits", str(client_max_window_bits)))
            extension = PerMessageDeflate(
                remote_no_context_takeover=client_no_context_takeover,
                local_no_context_takeover=server_no_context_takeover,
                remote_max_window_bits=client_max_window_bits or _MAX_WINDOW_BITS,
                local_max_window_bits=min(
                    server_max_window_bits or _MAX_WINDOW_BITS, self.compress_window_bits
                ),
                compress_level=self.compress_level,
                memory_level=self.memory_level,
                compression_threshold=self.compression_threshold,
            )
            return response, extension
        return None


class _Parameters(NamedTuple):
    """The parameters of one offer or response, checked; window bits None when absent."""

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int | None
    # In an offer, a bare client_max_window_bits reads as 15: "the server may choose".
    client_max_window_bits: int | None


def _parse_parameters(parameters: ExtensionParameters, *, is_offer: bool) -> _Parameters:
    """Check the parameters of an offer or a response against RFC 7692 §7.1.

    Raises:
        NegotiationError: a parameter is unknown, repeated or has an invalid value (§5).
    """
    found: dict[str, str | None] = {}
    for key, value in parameters:
        if key in found:
            raise NegotiationError(f"duplicate parameter {key}")
        found[key] = value
        if key in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise NegotiationError(f"{key} takes no value, got {value!r}")
        elif key in ("server_max_window_bits", "client_max_window_bits"):
            # RFC 7692 §7.1.2.2: only an offer may carry a bare client_max_window_bits.
            is_bare_allowed = is_offer and key == "client_max_window_bits"
            if value not in _WINDOW_BITS and not (value is None and is_bare_allowed):
                raise NegotiationError(f"{key} must be an integer from 8 to 15, got {value!r}")
        else:
            raise NegotiationError(f"unknown parameter {key!r}")

    def window_bits(key: str) -> int | None:
        if key not in found:
            return None
        value = found[key]
        return _MAX_WINDOW_BITS if value is None else _WINDOW_BITS[value]

    return _Parameters(
        server_no_context_takeover="server_no_context_takeover" in found,
        client_no_context_takeover="client_no_context_takeover" in found,
        server_max_window_bits=window_bits("server_max_window_bits"),
        client_max_window_bits=window_bits("client_max_window_bits"),
    )


def _offered_client_window_bits(setting: int | bool | None) -> int | None:
    """The client window an offer allows the server to narrow, None if not offered."""
    return _MAX_WINDOW_BITS if setting is True else setting


def _smallest(first: int | None, second: int | None) -> int | None:
    """The smaller of two optional window sizes, None when both are absent."""
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def _check_window_bits(name: str, bits: int) -> None:
    if isinstance(bits, bool) or not 8 <= bits <= _MAX_WINDOW_BITS:
        raise ValueError(f"{name} must be from 8 to 15, got {bits!r}")


def _check_compression(compress_level: int, memory_level: int, threshold: int) -> None:
    if not -1 <= compress_level <= 9:
        raise ValueError(f"compress_level must be from -1 to 9, got {compress_level}")
    if not 1 <= memory_level <= 9:
        raise ValueError(f"memory_level must be from 1 to 9, got {memory_level}")
    if threshold < 0:
        raise ValueError(f"compression_threshold must be 0 or more, got {threshold}")
