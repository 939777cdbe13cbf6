"""fullduplex under ASGI servers: uvicorn's WebSocket implementation.

``uvicorn app:app --ws fullduplex.asgi:WebSocketProtocol`` serves the WebSocket routes of any
ASGI application (FastAPI, Starlette...) with fullduplex's protocol core; see docs/asgi.md.
"""

from __future__ import annotations

from .uvicorn import ClientDisconnected, WebSocketProtocol

__all__ = ["WebSocketProtocol", "ClientDisconnected"]
