"""The blocking client: ``with fullduplex.sync.connect(url) as ws: ws.send(...); ws.recv()``.

A thin layer over the asyncio client, which runs on a background thread's event loop.
"""

from __future__ import annotations

from .client import ClientConnection, connect
from .connection import Connection

__all__ = ["connect", "ClientConnection", "Connection"]
