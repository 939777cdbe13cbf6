"""Engine.IO v4: the transport Socket.IO runs on, served as a `Session` per client.

- `codec`: packets and long-polling payloads, sans-I/O.
- `session`: `EngineIOSession`, one client's session over polling, WebSocket, or both in turn.
- `endpoint`: `EngineIOEndpoint`, what a server mounts at ``/engine.io`` (or ``/socket.io``).
"""

from __future__ import annotations

from .codec import InvalidPacket, Packet, PacketType, ServerError
from .endpoint import AllowRequest, EngineIOEndpoint, SessionHandler
from .session import EngineIOSession, SessionOptions

__all__ = [
    "EngineIOEndpoint",
    "EngineIOSession",
    "SessionHandler",
    "AllowRequest",
    "SessionOptions",
    "Packet",
    "PacketType",
    "InvalidPacket",
    "ServerError",
]
