"""fullduplex under ASGI servers: `mount` serves any `Endpoint` as an ASGI 3 application."""

from __future__ import annotations

from .mount import mount

__all__ = ["mount"]
