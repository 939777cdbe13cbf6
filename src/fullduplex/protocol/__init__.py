"""The sans-I/O WebSocket protocol: bytes in, events out, no sockets, no asyncio, no clocks."""

from __future__ import annotations

from .client import ClientProtocol
from .connection import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, Connection, State
from .events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    Event,
    HandshakeCompleted,
    PingReceived,
    PongReceived,
    RequestReceived,
    TextReceived,
)
from .frames import CloseCode, Frame, FrameParser, Opcode
from .handshake import ServerNegotiation, SubprotocolSelector
from .http11 import Headers, Request, Response
from .server import ServerProtocol

__all__ = [
    "ClientProtocol",
    "ServerProtocol",
    "Connection",
    "State",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_FRAGMENTS",
    "Event",
    "RequestReceived",
    "HandshakeCompleted",
    "TextReceived",
    "BinaryReceived",
    "PingReceived",
    "PongReceived",
    "CloseReceived",
    "ConnectionFailed",
    "CloseCode",
    "Frame",
    "FrameParser",
    "Opcode",
    "ServerNegotiation",
    "SubprotocolSelector",
    "Headers",
    "Request",
    "Response",
]
