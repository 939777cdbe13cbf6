"""Added as tests/protocols/conftest.py to a copy of uvicorn's source distribution.

It overrides one fixture of uvicorn's own suite, ``ws_protocol_cls``, to run each WebSocket
test against fullduplex's class and websockets-sansio (the reference it is compared with);
every other file of the suite is left as released. See tests/asgi/test_uvicorn_suite.py.
"""

import importlib

import pytest

IMPLEMENTATIONS = {
    "fullduplex": "fullduplex.asgi:WebSocketProtocol",
    "websockets-sansio": (
        "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol"
    ),
}


@pytest.fixture(params=list(IMPLEMENTATIONS), ids=list(IMPLEMENTATIONS))
def ws_protocol_cls(request: pytest.FixtureRequest) -> type:
    module, _, name = IMPLEMENTATIONS[request.param].partition(":")
    return getattr(importlib.import_module(module), name)
