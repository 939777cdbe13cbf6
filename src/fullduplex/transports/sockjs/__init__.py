"""SockJS 0.3.3: WebSocket-like sessions over polling, streaming and WebSocket transports.

Mount a `SockJSEndpoint` on a fullduplex server and the real sockjs-client library connects
with whichever transport the browser and the network allow; the handler sees one `Session`
interface in every case. `codec` is the sans-I/O wire format, `session` the session state
machine with its queues and timers, `websocket` the WebSocket transport, `endpoint` the URLs.
"""

from __future__ import annotations

from .endpoint import SockJSEndpoint, default_client_script
from .session import Overflow, SockJSSession
from .websocket import SockJSWebSocketSession

__all__ = [
    "SockJSEndpoint",
    "SockJSSession",
    "SockJSWebSocketSession",
    "Overflow",
    "default_client_script",
]
