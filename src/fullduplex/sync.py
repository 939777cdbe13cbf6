"""The blocking client: ``with fullduplex.sync.connect(url) as ws: ws.send(...); ws.recv()``.

An alias of `fullduplex.io.sync`, where the code lives, so that the blocking API has the short
name users type.
"""

from __future__ import annotations

from .io.sync import ClientConnection, Connection, connect

__all__ = ["connect", "ClientConnection", "Connection"]
