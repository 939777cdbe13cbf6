"""The realtime layer: rooms, broadcast, presence and history for any transport, and Socket.IO.

It needs only `fullduplex.transports.base.Session`, so it runs the same over fullduplex's own
server, SockJS, Engine.IO and an ASGI server. `Hub` is protocol-agnostic; `socketio` speaks
Socket.IO v5 on top of it, `JSONEventServer` plain JSON events over any session. Shared
state goes through a `Backend` (in memory by default).
"""

from __future__ import annotations

from .backends import Backend, Broadcast, MemoryBackend, PresenceChange
from .hub import Hub, Member
from .json_events import JSONEventConnection, JSONEventServer
from .outbox import Outbox

__all__ = [
    "Hub",
    "Member",
    "Backend",
    "MemoryBackend",
    "Broadcast",
    "PresenceChange",
    "Outbox",
    "JSONEventServer",
    "JSONEventConnection",
]
