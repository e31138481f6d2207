"""What a connector is, once: the typed model every connector module fills in and registers.

A :class:`Connector` says which host it runs in, how it starts **in that real host** against an engine
URL (``start(config, engine, llm)``: fail mode, timeout and mode come in a :class:`ConnectorConfig`), what
its client sees for blocked / engine-unreachable-under-fail_closed / passed (:class:`Answers`) and which
``expect:`` key of the scenario files holds its expectations (``profile``). A running
:class:`ConnectorInstance` sends a scenario's request like a real client (``send``), names its
client-facing endpoint for load tests (``target``) and stops (``stop``).

Scenarios, load tests, bench scripts and the demo all look connectors up in
:mod:`harness.connectors.registry`; see harness/README.md, "Adding a connector".
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.payloads import Target

if TYPE_CHECKING:
    from harness.engine import EngineNamespace
    from harness.fakes.llm import FakeLLMClient
    from harness.fakes.mcp import FakeMCPClient

#: The engine timeout a connector uses when the scenario does not set one (the seed's 5 s).
DEFAULT_TIMEOUT_S = 5

ConnectorMode = Literal["validate_and_ingest", "monitor_only"]
FailMode = Literal["fail_open", "fail_closed"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectorConfig(Strict):
    """How the connector under test is configured. Scenarios with equal configs share one running instance."""

    mode: ConnectorMode = "validate_and_ingest"
    fail_mode: FailMode = "fail_closed"
    #: Engine call timeout in whole seconds (LiteLLM's ``guardrail_timeout`` is an integer). None: default (5).
    timeout_s: int | None = Field(None, gt=0, le=60)
    account_id: str | None = None
    vxlan_id: str | None = None
    #: Egress addon only: how streamed answers are checked (``async``: in the background; ``sync``: each batch
    #: held until its verdict). None: the connector's default.
    stream_mode: Literal["async", "sync"] | None = None
    #: Fixed loopback ports for the processes the connector starts, in the order its module names (the
    #: client-facing one first); empty or 0: free ports. ``akto-harness up`` uses documented ones.
    listen_ports: tuple[int, ...] = ()
    #: The key clients present to the host (LiteLLM's master key); None: a random one per start.
    client_key: str | None = None
    #: The connector also guards MCP tool calls (LiteLLM: ``pre_mcp_call`` / ``post_mcp_call`` entries and a
    #: fake MCP server in ``mcp_servers``); scenarios sending ``api: mcp`` traffic set it.
    mcp: bool = False
    #: The connector's circuit breaker: open after this many overlapping timeouts (0: off). None: the
    #: connector's default. Honoured by the TrueFoundry endpoint (``--breaker-failures``).
    breaker_failures: int | None = Field(None, ge=0)

    def listen_port(self, index: int) -> int:
        """The fixed port for the connector's ``index``-th process, or 0 (a free one)."""
        return self.listen_ports[index] if index < len(self.listen_ports) else 0


class Traffic(Strict):
    """The one client request the scenario sends through the connector."""

    provider: Literal["openai", "anthropic"] = "openai"
    #: OpenAI only: Chat Completions (``chat``), the Responses API (``responses``: the messages go in
    #: ``input``; no streaming, as the fake LLM serves it), or an MCP tool call (``mcp``: JSON-RPC
    #: ``tools/call`` on the host's ``/mcp``, the last user message as the tool's ``query`` argument, the
    #: fake MCP server's tool answering ``llm_reply``; ``llm_*`` checks then look at that tool server).
    api: Literal["chat", "responses", "mcp"] = "chat"
    model: str | None = None
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    stream: bool = False
    #: Extra client headers (e.g. a cookie, to check that credentials never reach the engine).
    headers: dict[str, str] = Field(default_factory=dict)
    #: What the fake LLM answers (None: its default reply).
    llm_reply: str | None = None

    @model_validator(mode="after")
    def _one_input(self) -> "Traffic":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt or messages")
        if self.api != "chat" and (self.provider != "openai" or self.stream):
            raise ValueError(f"api: {self.api} goes with provider openai, without stream")
        return self

    def chat_messages(self) -> list[dict[str, Any]]:
        return list(self.messages) if self.messages is not None else [{"role": "user", "content": self.prompt}]

    def tagged(self, reference: str) -> "Traffic":
        """The same traffic with ``[ref <reference>]`` appended to the last user message.

        The runner counts journal entries, ingest records and LLM requests by this reference, so background
        calls that a previous scenario left in flight are never mistaken for this one's.
        """
        messages = [dict(m) for m in self.chat_messages()]
        users = [m for m in messages if m.get("role") == "user"] or messages
        last = users[-1]
        marker = f" [ref {reference}]"
        if isinstance(last.get("content"), str):
            last["content"] += marker
        else:
            last["content"] = [*(last.get("content") or []), {"type": "text", "text": marker}]
        return self.model_copy(update={"messages": messages, "prompt": None})


class EngineEndpoint(Protocol):
    """Where a connector finds the engine: an :class:`harness.engine.EngineNamespace` (``url`` is its own
    listener; the scenario runner also reads its ``client``)."""

    @property
    def url(self) -> str: ...


class LLMUpstream(Protocol):
    """The fake LLM provider (``harness.fakes.llm.FakeLLMServer`` or an external one)."""

    @property
    def url(self) -> str: ...

    @property
    def client(self) -> "FakeLLMClient": ...


class ToolUpstream(Protocol):
    """The fake MCP server (``harness.fakes.mcp.FakeMCPServer``) a connector's host calls tools on."""

    @property
    def url(self) -> str: ...

    @property
    def client(self) -> "FakeMCPClient": ...


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


@dataclass(frozen=True)
class Answers:
    """The status the connector's client sees for each outcome the load tests tell apart."""

    #: A verdict blocked the request.
    blocked: int
    #: The engine could not be reached (or was too slow) under ``fail_closed``.
    unreachable: int
    #: The request went through (an allow, or any engine failure under ``fail_open``).
    passed: int = 200


class ConnectorInstance(ABC):
    """One running connector, bound to one engine namespace for its whole life."""

    #: The engine namespace this instance talks to (reset by the runner before every scenario).
    engine: "EngineNamespace"
    #: The engine-call timeout it was configured with, in seconds (for ``within_timeout_plus_ms``).
    timeout_s: float
    #: The fake MCP server the host calls tools on (``url``, ``client``), for ``api: mcp`` traffic; None:
    #: this instance carries no MCP tool calls.
    tool_server: "ToolUpstream | None" = None

    @abstractmethod
    def send(self, traffic: Traffic) -> ClientResponse:
        """Send one client request through the connector and read the full answer."""

    @property
    @abstractmethod
    def target(self) -> Target:
        """The client-facing endpoint and request body template load tests send (``{{prompt}}`` slot)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the host process(es). Idempotent."""

    def log_tail(self, lines: int = 30) -> str:
        """The host's recent log lines, shown when a scenario fails."""
        return ""


class Connector(ABC):
    """One connector, described once. Subclass it in ``harness/connectors/<name>.py`` and decorate the class
    with :func:`harness.connectors.registry.register`."""

    #: The connector's name on command lines (``--connector``), in reports and test ids.
    name: ClassVar[str]
    #: The real host it runs in, for people (``a real litellm proxy 1.106.2``).
    host: ClassVar[str]
    #: What its client sees for blocked / unreachable under fail_closed / passed.
    answers: ClassVar[Answers]
    #: The ``expect:`` key of the scenario files that holds its expectations (None: its ``name``).
    expectations: ClassVar[str | None] = None

    @property
    def profile(self) -> str:
        """The scenario expectations profile this connector is judged by."""
        return self.expectations or self.name

    @abstractmethod
    def start(self, config: ConnectorConfig, engine: EngineEndpoint, llm: LLMUpstream) -> ConnectorInstance:
        """Start the connector in its real host, configured by ``config``, talking to ``engine.url`` and
        forwarding to ``llm.url``; ready to serve when it returns (stop it with ``instance.stop()``)."""

    def available(self) -> str | None:
        """None when this machine can run the connector, else why not (the scenarios are then skipped)."""
        return None
