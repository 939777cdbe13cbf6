"""The asyncio server and client."""

from __future__ import annotations

from ..options import Options
from .broadcast import broadcast
from .client import Backoff, ClientConnection, WebSocketURI, connect, parse_uri
from .connection import Data, Message, WebSocketConnection
from .inbox import MessageCallback
from .runner import run
from .server import Handler, RequestHook, Server, ServerConnection, serve

__all__ = [
    "run",
    "broadcast",
    "connect",
    "ClientConnection",
    "WebSocketURI",
    "parse_uri",
    "Backoff",
    "serve",
    "Server",
    "ServerConnection",
    "Handler",
    "RequestHook",
    "WebSocketConnection",
    "Message",
    "Data",
    "MessageCallback",
    "Options",
]
