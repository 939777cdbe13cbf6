"""Socket.IO v5 on the realtime hub: a server for the real ``socket.io-client``.

`Server` serves the sessions an Engine.IO endpoint delivers; `AsyncClient` is an asyncio
client; `codec` is the sans-I/O packet
format. See ``docs/realtime.md``.
"""

from __future__ import annotations

from .client import AsyncClient
from .codec import Decoder, InvalidPacket, Packet, PacketType, encode
from .namespace import BroadcastOperator, ConnectRefused, Namespace, Recovery
from .server import Server
from .socket import AckTimeout, Handshake, Socket

__all__ = [
    "Server",
    "AsyncClient",
    "Namespace",
    "Socket",
    "Handshake",
    "BroadcastOperator",
    "Recovery",
    "ConnectRefused",
    "AckTimeout",
    "Packet",
    "PacketType",
    "Decoder",
    "InvalidPacket",
    "encode",
]
