"""Every way a peer can be reached, behind one `Session` interface.

A handler written for a `Session` serves raw WebSocket connections, SockJS sessions (polling,
streaming, WebSocket) and Engine.IO sessions alike; it never sees frames, HTTP requests or a
particular transport. An `Endpoint` is what a server mounts at a path prefix: it answers the
HTTP requests and WebSocket upgrades under that prefix and turns them into sessions. A
`Router` puts WebSocket routes, endpoints, HTTP routes and `StaticFiles` on one
`fullduplex.serve` port.
"""

from __future__ import annotations

from .base import Endpoint, HTTPExchange, Session
from .router import HTTPHandler, Router, SessionHandler
from .sockjs import SockJSEndpoint
from .static import StaticFiles
from .websocket import WebSocketSession

__all__ = [
    "Session",
    "Endpoint",
    "HTTPExchange",
    "Router",
    "SessionHandler",
    "HTTPHandler",
    "StaticFiles",
    "WebSocketSession",
    "SockJSEndpoint",
]
