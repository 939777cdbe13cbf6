"""fullduplex: the WebSocket protocol, and what real-time web applications need, for Python.

The sans-I/O protocol lives in `fullduplex.protocol`; the asyncio server and client are
re-exported here: `serve`, `connect`; so are the browser's interface, `WebSocket`, the
blocking client, `fullduplex.sync`, and the `Router` that puts WebSocket routes, transports
such as SockJS, HTTP routes and static files on one `serve` port.
"""

from __future__ import annotations

from . import sync
from .exceptions import (
    BodyTooLarge,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    FullDuplexError,
    HeadersTooLarge,
    HTTPDisconnect,
    HTTPError,
    InvalidHandshake,
    InvalidPayload,
    InvalidRedirect,
    InvalidRequest,
    InvalidResponse,
    InvalidState,
    InvalidStatus,
    MessageTooBig,
    NegotiationError,
    PolicyViolation,
    ProtocolViolation,
    ProxyError,
)
from .io.asyncio import (
    Backoff,
    ClientConnection,
    Data,
    Handler,
    Message,
    MessageCallback,
    Options,
    RequestHook,
    Server,
    ServerConnection,
    WebSocketConnection,
    WebSocketURI,
    broadcast,
    connect,
    parse_uri,
    run,
    serve,
)
from .io.browser import WebSocket
from .io.dom import (
    Blob,
    CloseEvent,
    DOMException,
    DOMSyntaxError,
    Event,
    EventTarget,
    InvalidAccessError,
    InvalidStateError,
    MessageEvent,
)
from .protocol import CloseCode, Headers, Request, Response, State
from .transports import Endpoint, HTTPExchange, Router, Session, SockJSEndpoint

__all__ = [
    # asyncio server and client
    "run",
    "serve",
    "connect",
    "broadcast",
    "Server",
    "ServerConnection",
    "ClientConnection",
    "WebSocketConnection",
    "Handler",
    "RequestHook",
    "Message",
    "Data",
    "MessageCallback",
    "Options",
    "WebSocketURI",
    "parse_uri",
    "Backoff",
    # one port for WebSocket, polling transports, HTTP routes and files
    "Router",
    "Session",
    "Endpoint",
    "HTTPExchange",
    "SockJSEndpoint",
    # the blocking client
    "sync",
    # the browser's WebSocket interface (WHATWG)
    "WebSocket",
    "Event",
    "MessageEvent",
    "CloseEvent",
    "EventTarget",
    "Blob",
    "DOMException",
    "DOMSyntaxError",
    "InvalidStateError",
    "InvalidAccessError",
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
    "InvalidRedirect",
    "NegotiationError",
    "ProtocolViolation",
    "InvalidPayload",
    "MessageTooBig",
    "PolicyViolation",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "ProxyError",
    "InvalidState",
    "HTTPError",
    "BodyTooLarge",
    "HTTPDisconnect",
]
