"""fullduplex: the WebSocket protocol, and what real-time web applications need, for Python.

The sans-I/O protocol lives in `fullduplex.protocol`; the asyncio server and client are
re-exported here: `serve`, `connect`.
"""

from __future__ import annotations

from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    FullDuplexError,
    HeadersTooLarge,
    InvalidHandshake,
    InvalidPayload,
    InvalidRequest,
    InvalidResponse,
    InvalidState,
    InvalidStatus,
    MessageTooBig,
    NegotiationError,
    PolicyViolation,
    ProtocolViolation,
)
from .io.asyncio import (
    ClientConnection,
    Data,
    Handler,
    Message,
    RequestHook,
    Server,
    ServerConnection,
    WebSocketConnection,
    WebSocketURI,
    connect,
    parse_uri,
    serve,
)
from .protocol import CloseCode, Headers, Request, Response, State

__all__ = [
    # asyncio server and client
    "serve",
    "connect",
    "Server",
    "ServerConnection",
    "ClientConnection",
    "WebSocketConnection",
    "Handler",
    "RequestHook",
    "Message",
    "Data",
    "WebSocketURI",
    "parse_uri",
    # protocol types applications meet
    "CloseCode",
    "Headers",
    "Request",
    "Response",
    "State",
    # exceptions
    "FullDuplexError",
    "InvalidHandshake",
    "InvalidRequest",
    "HeadersTooLarge",
    "InvalidResponse",
    "InvalidStatus",
    "NegotiationError",
    "ProtocolViolation",
    "InvalidPayload",
    "MessageTooBig",
    "PolicyViolation",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidState",
]
