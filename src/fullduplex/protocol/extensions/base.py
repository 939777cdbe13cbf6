"""The interface every WebSocket extension implements (RFC 6455 §9).

Negotiation happens once, in the opening handshake, through a factory; the negotiated
`Extension` then transforms every data frame on its way in (`decode`) and out (`encode`).
Control frames never go through extensions.

Parameters are the ``name=value`` pairs of one ``Sec-WebSocket-Extensions`` offer or answer,
value None for a bare ``name``, in the order they appeared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..frames import Frame

__all__ = [
    "ExtensionParameters",
    "Extension",
    "ClientExtensionFactory",
    "ServerExtensionFactory",
]

ExtensionParameters = list[tuple[str, str | None]]


class Extension(Protocol):
    """A negotiated extension, active for the life of one connection."""

    name: str
    """The extension's registered name, e.g. ``permessage-deflate``."""

    def decode(self, frame: Frame, *, max_size: int) -> Frame:
        """Undo the extension on a received data frame.

        Args:
            max_size: the largest decoded payload acceptable for this frame.

        Raises:
            ProtocolViolation: the frame is invalid for this extension.
            MessageTooBig: the decoded payload would exceed ``max_size``; it is never
                produced beyond that bound (decompression bombs stop here).
        """
        ...

    def encode(self, frame: Frame) -> Frame:
        """Apply the extension to a data frame about to be sent."""
        ...


class ClientExtensionFactory(Protocol):
    """Offers an extension in a client's request and accepts the server's answer."""

    name: str

    def offer(self) -> ExtensionParameters:
        """Return the parameters to offer in ``Sec-WebSocket-Extensions``."""
        ...

    def accept(self, parameters: ExtensionParameters) -> Extension:
        """Return the extension for the server's answer.

        Raises:
            NegotiationError: the answer is not acceptable; the client fails the connection.
        """
        ...


class ServerExtensionFactory(Protocol):
    """Chooses, on the server, among a client's offers of one extension."""

    name: str

    def negotiate(
        self, offers: Sequence[ExtensionParameters]
    ) -> tuple[ExtensionParameters, Extension] | None:
        """Pick the first acceptable offer.

        Args:
            offers: the client's offers for this extension's name, in preference order.

        Returns:
            The parameters for the response header and the extension, or None to decline.

        Raises:
            NegotiationError: an offer is malformed (the server answers 400).
        """
        ...
