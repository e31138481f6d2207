"""The one connector registry: every connector registers itself where it is defined, and every consumer
(scenarios, load tests, bench scripts, the demo) looks it up here.

A connector module (``harness/connectors/<name>.py``) decorates its :class:`Connector` subclass with
:func:`register`. The modules of this package are imported on the first lookup, so adding a connector is
one new module and nothing else; a connector defined elsewhere (a team's own, in a conftest) is made known
with the same :func:`register` before the first scenario is loaded.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import TypeVar

from harness.connectors.base import Connector

__all__ = ["UnknownConnector", "connectors", "get", "names", "profiles", "register"]

C = TypeVar("C", bound=type[Connector])

#: Modules of this package that hold no connector.
_SUPPORT_MODULES = frozenset({"base", "http", "registry"})
_REGISTERED: dict[str, Connector] = {}
_discovered = False


class UnknownConnector(ValueError):
    """No connector is registered under that name; the message lists the registered ones."""


def register(cls: C) -> C:
    """Class decorator: register one instance of ``cls`` under ``cls.name`` (a second class claiming a taken
    name is an error: two descriptions of one connector is what this registry exists to prevent)."""
    existing = _REGISTERED.get(cls.name)
    if existing is not None and type(existing).__qualname__ != cls.__qualname__:
        raise ValueError(f"connector {cls.name!r} is already registered by {type(existing).__qualname__}")
    _REGISTERED[cls.name] = cls()
    return cls


def _discover() -> None:
    """Import every connector module of this package once (each registers itself on import)."""
    global _discovered
    if _discovered:
        return
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules(import_module(package).__path__):
        if module.name not in _SUPPORT_MODULES:
            import_module(f"{package}.{module.name}")
    _discovered = True


def connectors() -> list[Connector]:
    """Every registered connector, by name."""
    _discover()
    return [_REGISTERED[name] for name in sorted(_REGISTERED)]


def names() -> list[str]:
    """The registered connector names, sorted."""
    return [connector.name for connector in connectors()]


def profiles() -> list[str]:
    """The scenario expectations profiles of the registered connectors (the keys ``expect:`` may hold)."""
    return sorted({connector.profile for connector in connectors()})


def get(name: str) -> Connector:
    """The connector registered as ``name`` (:class:`UnknownConnector` listing the registered names otherwise)."""
    _discover()
    try:
        return _REGISTERED[name]
    except KeyError:
        raise UnknownConnector(f"unknown connector {name!r} (registered: {', '.join(names())})") from None
