"""The one small interface a connector implements to run the contract scenarios.

How to add a connector (the egress addon and the TrueFoundry endpoint do exactly this):

1. Create ``harness/scenarios/connectors/<name>.py`` with a :class:`ConnectorAdapter` subclass whose
   ``name`` is in :data:`harness.scenarios.model.CONNECTOR_NAMES` (add it there if it is new).
2. ``start(config, engine, llm)`` starts the connector **in its real host** (a LiteLLM proxy, mitmdump, an
   ASGI server ...) configured from :class:`ConnectorConfig` (fail mode, timeout, validate+ingest or
   monitor-only, account/vxlan ids), pointed at ``engine.url`` (a listener bound to an engine namespace
   reserved for this instance) and at the fake LLM (``llm.url``; OpenAI clients add ``/v1``). It returns a
   :class:`ConnectorInstance`. Starting may be slow: the runner caches one instance per distinct config.
3. ``ConnectorInstance.send(traffic)`` sends the scenario's one request the way a real client of that
   host would, over real sockets, and returns what the client saw as a :class:`ClientResponse`
   (``elapsed_ms`` measured around the whole exchange, body fully read, streams read to the end).
   :func:`harness.scenarios.connectors.http.send_openai_chat` does this for OpenAI-style endpoints.
4. Register the adapter in ``harness/scenarios/connectors/__init__.py`` (``ADAPTERS``).
5. If the connector cannot run a scenario (a fault that does not apply), say so in the scenario YAML:
   ``expect: {<name>: {skip: "why"}}``; if it is known to miss the default expectation, ``xfail: "why"``;
   if its correct outcome differs, give the differing fields under ``expect: {<name>: {...}}``.

The runner owns everything else: resetting the namespace and the fake LLM before each scenario, loading
policies and faults, tagging the traffic with a per-scenario reference (so late background calls of a
previous scenario are never counted), and checking status, body, headers, LLM calls, journal, ingest
records and latency.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from harness.scenarios.model import ConnectorConfig, Traffic

if TYPE_CHECKING:
    from harness.engine import EngineNamespace
    from harness.fakes.llm import FakeLLMClient

#: The engine timeout a connector uses when the scenario does not set one (the seed's 5 s).
DEFAULT_TIMEOUT_S = 5


class LLMUpstream(Protocol):
    """The fake LLM provider (``harness.fakes.llm.FakeLLMServer`` or an external one)."""

    @property
    def url(self) -> str: ...

    @property
    def client(self) -> "FakeLLMClient": ...


@dataclass
class ClientResponse:
    """What the client saw. ``body`` is the raw body text (for a stream, every SSE line)."""

    status: int
    headers: dict[str, str]
    body: str
    elapsed_ms: float
    #: For streams: the concatenated content deltas; None for non-streamed answers.
    stream_text: str | None = None
    #: A transport error instead of an HTTP answer (e.g. the connector reset the connection).
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class ConnectorInstance(ABC):
    """One running connector, bound to one engine namespace for its whole life."""

    #: The engine namespace this instance talks to (reset by the runner before every scenario).
    engine: "EngineNamespace"
    #: The engine-call timeout it was configured with, in seconds (for ``within_timeout_plus_ms``).
    timeout_s: float

    @abstractmethod
    def send(self, traffic: Traffic) -> ClientResponse:
        """Send one client request through the connector and read the full answer."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the host process(es). Idempotent."""

    def log_tail(self, lines: int = 30) -> str:
        """The host's recent log lines, shown when a scenario fails."""
        return ""


class ConnectorAdapter(ABC):
    """Starts instances of one connector."""

    #: The connector's name in scenario files, reports and the CLI.
    name: ClassVar[str]

    @abstractmethod
    def start(self, config: ConnectorConfig, engine: "EngineNamespace", llm: LLMUpstream) -> ConnectorInstance:
        """Start the connector in its real host, configured by ``config``, talking to ``engine.url``."""

    def available(self) -> str | None:
        """None when this machine can run the connector, else why not (the scenarios are then skipped)."""
        return None
