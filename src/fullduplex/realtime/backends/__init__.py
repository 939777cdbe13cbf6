"""Where a hub keeps what crosses processes: the `Backend` interface and its implementations."""

from __future__ import annotations

from .base import EVERYONE, Backend, Broadcast, ChannelMessage, Offset, PresenceChange, Subscription
from .memory import MemoryBackend

__all__ = [
    "Backend",
    "MemoryBackend",
    "Broadcast",
    "PresenceChange",
    "ChannelMessage",
    "Offset",
    "Subscription",
    "EVERYONE",
]
