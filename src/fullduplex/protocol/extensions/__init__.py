"""WebSocket extensions (RFC 6455 §9): the interface, the header, and permessage-deflate."""

from .base import ClientExtensionFactory, Extension, ExtensionParameters, ServerExtensionFactory
from .header import format_extension_header, parse_extension_header
from .permessage_deflate import ClientPerMessageDeflate, PerMessageDeflate, ServerPerMessageDeflate

__all__ = [
    "ClientExtensionFactory",
    "ClientPerMessageDeflate",
    "Extension",
    "ExtensionParameters",
    "PerMessageDeflate",
    "ServerExtensionFactory",
    "ServerPerMessageDeflate",
    "format_extension_header",
    "parse_extension_header",
]
