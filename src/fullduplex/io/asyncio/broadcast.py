"""Sending one message to many connections, framed once.

A server's frame is not masked, so without an extension its bytes are the same for every
connection: `broadcast` serializes the message once and queues that one bytes object on each
plain connection. A connection with permessage-deflate compresses with a context of its own,
and a client masks each frame with a fresh key: those frame the message themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from ...protocol.connection import State
from ...protocol.frames import serialize_message
from .connection import WebSocketConnection

__all__ = ["broadcast"]

_OPEN = State.OPEN

_Connection = TypeVar("_Connection", bound=WebSocketConnection)


def broadcast(connections: Iterable[_Connection], message: str | bytes) -> list[_Connection]:
    """Send ``message`` to every open connection of ``connections`` without waiting.

    Each connection writes it as `send_nowait` would (at once, or with its other sends of this
    loop turn). Connections that are closing or closed are skipped. So are those that cannot
    take it now (`can_send_now` is False: their write buffer is above ``write_limit``, as
    for a peer that stopped reading, or a fragmented message is being sent): they are
    returned, and the caller chooses, per connection, to `send` it there (waiting), to drop
    the message, or to close a peer that lags too far behind.

    Args:
        connections: the recipients; each is visited once, in order.
        message: ``str`` for a text message, ``bytes`` for binary.

    Returns:
        The open connections that were not sent the message, in order.

    Raises:
        TypeError: ``message`` is neither ``str`` nor ``bytes``; nothing was sent.
    """
    if type(message) is not str and type(message) is not bytes:
        raise TypeError(f"cannot broadcast {type(message).__name__}; use str or bytes")
    frame: bytes | None = None
    lagging: list[_Connection] = []
    for connection in connections:
        # This loop runs for each of thousands of recipients: `can_send_now` and
        # `sends_plain_frames` written out.
        protocol = connection.protocol
        if protocol.state is not _OPEN or protocol.close_sent is not None:
            continue
        lock = connection._send_lock
        if connection._writing_paused or (lock is not None and lock.locked()):
            lagging.append(connection)
        elif protocol.is_client or protocol.extensions:
            connection.send_nowait(message)
        else:
            if frame is None:
                frame = serialize_message(message)
            connection._send_serialized_nowait(frame)
    return lagging
