"""Connectors, each described once and registered where it is defined (see :mod:`.registry` and
harness/README.md, "Adding a connector"): ``litellm``, ``litellm-builtin``, ``egress``, ``truefoundry``."""

from harness.connectors.base import (
    Answers,
    ClientResponse,
    Connector,
    ConnectorConfig,
    ConnectorInstance,
    LLMUpstream,
    Traffic,
)
from harness.connectors.registry import UnknownConnector, connectors, get, names, profiles, register

__all__ = [
    "Answers", "ClientResponse", "Connector", "ConnectorConfig", "ConnectorInstance", "LLMUpstream", "Traffic",
    "UnknownConnector", "connectors", "get", "names", "profiles", "register",
]
