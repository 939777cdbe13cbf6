"""fullduplex under ASGI servers.

- `mount` serves any `Endpoint` as an ASGI 3 application.
- `WebSocketProtocol` is uvicorn's WebSocket implementation on fullduplex's protocol core:
  ``uvicorn app:app --ws fullduplex.asgi:WebSocketProtocol`` serves the WebSocket routes of
  any ASGI application (FastAPI, Starlette...); see docs/asgi.md.
"""

from __future__ import annotations

from .mount import mount
from .uvicorn import ClientDisconnected, WebSocketProtocol

__all__ = ["mount", "WebSocketProtocol", "ClientDisconnected"]
