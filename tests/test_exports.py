"""The public API: the top level re-exports exactly the public names of the modules below it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import fullduplex
import fullduplex.exceptions
import fullduplex.io.asyncio
import fullduplex.io.dom
import fullduplex.sync

# The protocol types an application meets without driving the sans-I/O layer itself.
PROTOCOL_NAMES = {"CloseCode", "Headers", "Request", "Response", "State"}
# What an application needs to put sessions and endpoints on one port.
TRANSPORT_NAMES = {"Router", "Session", "Endpoint", "HTTPExchange", "SockJSEndpoint"}


def test_top_level_is_the_union_of_the_public_modules() -> None:
    expected = (
        set(fullduplex.exceptions.__all__)
        | set(fullduplex.io.asyncio.__all__)
        | set(fullduplex.io.dom.__all__)
        | {"WebSocket", "sync"}
        | PROTOCOL_NAMES
        | TRANSPORT_NAMES
    )
    assert set(fullduplex.__all__) == expected


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in fullduplex.__all__:
        value = getattr(fullduplex, name)
        if inspect.isclass(value) or inspect.isfunction(value) or inspect.ismodule(value):
            assert value.__doc__, f"fullduplex.{name} has no docstring"


def test_every_module_declares_all() -> None:
    missing = []
    for module_info in pkgutil.walk_packages(fullduplex.__path__, "fullduplex."):
        if module_info.name.split(".")[-1].startswith("_") or module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        if not hasattr(module, "__all__"):
            missing.append(module_info.name)
    assert not missing, f"modules without __all__: {missing}"


def test_transport_names_come_from_fullduplex_transports() -> None:
    import fullduplex.transports

    assert set(fullduplex.transports.__all__) >= TRANSPORT_NAMES
    for name in TRANSPORT_NAMES:
        assert getattr(fullduplex, name) is getattr(fullduplex.transports, name)


def test_sync_is_the_blocking_client() -> None:
    assert fullduplex.sync.connect.__module__ == "fullduplex.io.sync.client"
