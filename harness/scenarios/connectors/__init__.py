"""Connector adapters by name. See ``base.py`` for the interface and how to add one."""

from __future__ import annotations

from harness.scenarios.connectors.base import ClientResponse, ConnectorAdapter, ConnectorInstance

__all__ = ["ADAPTERS", "ClientResponse", "ConnectorAdapter", "ConnectorInstance", "adapter"]

#: name -> "module:Class", imported on demand (a connector's host packages are only needed when it runs).
ADAPTERS: dict[str, str] = {
    "litellm": "harness.scenarios.connectors.litellm:LiteLLMAdapter",
    "litellm-builtin": "harness.scenarios.connectors.litellm:LiteLLMBuiltinAdapter",
    "egress": "harness.scenarios.connectors.egress:EgressAdapter",
    "truefoundry": "harness.scenarios.connectors.truefoundry:TrueFoundryAdapter",
}


def adapter(name: str) -> ConnectorAdapter:
    """The adapter registered as ``name`` (ValueError listing the known names otherwise)."""
    from importlib import import_module

    if name not in ADAPTERS:
        raise ValueError(f"unknown connector {name!r} (known: {', '.join(sorted(ADAPTERS))})")
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(import_module(module), cls)()
