"""Targets: the connector under test, described without Python (a YAML file or command-line flags).

Exactly one kind per target::

    name: my-litellm                      # shown in reports (default: the file's stem)
    litellm_config: ./config.yaml         # a LiteLLM config: its guardrail entries and callbacks are kept
    # mitm_addon: ./akto_guardrails.py    # an addon file, loaded in the harness's mitmdump
    # guardrail_url: http://127.0.0.1:{port}/guard   # a TrueFoundry-style custom guardrail endpoint
    # command: [my-endpoint, --port, "{port}", --akto-url, "{engine_url}"]   # how to start it (optional)
    # reference: litellm                  # a shipped reference connector
    profile: ./profile.yaml               # or a shipped profile name (default: by kind)
    env: {MY_SETTING: "{engine_url}"}     # extra environment for the host

Placeholders in ``env`` and ``command``: ``{engine_url}`` (this instance's engine namespace),
``{fail_mode}``, ``{timeout_s}``, ``{port}`` (guardrail endpoint only). Relative paths are relative to
the target file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.connectors import registry
from harness.connectors.base import Connector, ConnectorConfig, ConnectorInstance, DEFAULT_TIMEOUT_S, EngineEndpoint, LLMUpstream
from harness.connectors.egress import EgressConnector
from harness.connectors.litellm import DEFAULT_MODELS, LiteLLMConnector, LiteLLMInstance, warmed_up
from harness.connectors.litellm_mcp import MCP_MODES, mcp_servers
from harness.connectors.truefoundry import TrueFoundryConnector
from harness.engine import EngineNamespace
from harness.fakes.mcp import FakeMCPServer
from harness.hosts.litellm_proxy import LiteLLMProxy, base_config, model_entry
from harness.process import ManagedProcess, StartupError, free_port, port_open
from harness.scenarios.model import ScenarioError
from mock_akto.client import MockAktoClient

Kind = Literal["litellm_config", "mitm_addon", "guardrail_url", "reference"]
KINDS: tuple[Kind, ...] = ("litellm_config", "mitm_addon", "guardrail_url", "reference")
#: The shipped profile each kind is judged by unless the target names another.
DEFAULT_PROFILE = {"litellm_config": "litellm", "mitm_addon": "egress", "guardrail_url": "truefoundry"}
#: LiteLLM's built-in Akto guardrail name; a config using it is judged by the ``litellm-builtin`` profile.
BUILTIN_AKTO = "akto"
#: How long a user's guardrail endpoint may take to listen, and to answer the reachability probe.
ENDPOINT_START_S = 30.0
PROBE_TIMEOUT_S = 5.0
#: Environment variables Akto's own LiteLLM callback and addons read for the engine and the fail mode.
ENGINE_ENV = ("AKTO_GUARDRAIL_API_BASE", "AKTO_BASE_URL", "AKTO_URL", "AKTO_DATA_INGESTION_URL")


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    litellm_config: Path | None = None
    mitm_addon: Path | None = None
    guardrail_url: str | None = None
    command: list[str] | None = None
    #: A guardrail endpoint the user runs (no ``command``): the fail mode and timeout it was started with,
    #: and the engine namespace it calls (``<engine-url>/ns/<namespace>``).
    fail_mode: Literal["fail_open", "fail_closed"] = "fail_closed"
    timeout_s: int | None = None
    namespace: str = "conformance"
    reference: str | None = None
    profile: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> "Target":
        given = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {', '.join(given) or 'none'})")
        if self.command is not None and self.guardrail_url is None:
            raise ValueError("command only goes with guardrail_url")
        return self

    @property
    def kind(self) -> Kind:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    def default_profile(self) -> str:
        if self.reference is not None:
            return registry.get(self.reference).profile
        if self.litellm_config is not None and BUILTIN_AKTO in _guardrail_classes(self.litellm_config):
            return "litellm-builtin"
        return DEFAULT_PROFILE[self.kind]

    def check_input(self) -> None:
        """Fail fast on what can be checked before a host starts (ScenarioError naming the problem)."""
        for path in (self.litellm_config, self.mitm_addon):
            if path is not None and not path.is_file():
                raise ScenarioError(f"target {self.name}: file not found: {path}")
        if self.litellm_config is not None:
            _guardrail_classes(self.litellm_config)
        if self.reference is not None:
            registry.get(self.reference)

    def connector(self) -> Connector:
        if self.reference is not None:
            return registry.get(self.reference)
        if self.litellm_config is not None:
            return LiteLLMConfigConnector(self)
        if self.mitm_addon is not None:
            return AddonConnector(self)
        return GuardrailURLConnector(self)


def load_target(path: Path) -> Target:
    """A target file; relative paths in it are relative to the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"cannot read target file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a target is a mapping (see docs/conformance.md)")
    data.setdefault("name", path.stem)
    for key in ("litellm_config", "mitm_addon", "profile"):
        value = data.get(key)
        if isinstance(value, str) and (path.parent / value).exists():
            data[key] = str((path.parent / value).resolve())
    return make_target(data, str(path))


def make_target(data: dict[str, Any], where: str = "command line") -> Target:
    try:
        return Target.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'target'}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{where}: {problems}") from None


def placeholders(engine_url: str, config: ConnectorConfig, **extra: Any) -> dict[str, str]:
    timeout = config.timeout_s or DEFAULT_TIMEOUT_S
    return {"engine_url": engine_url, "fail_mode": config.fail_mode, "timeout_s": str(timeout),
            **{key: str(value) for key, value in extra.items()}}


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


# ---------------------------------------------------------------------------------------- LiteLLM config


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a LiteLLM config is a mapping")
    return data


def _guardrail_classes(path: Path) -> list[str]:
    entries = _read_config(path).get("guardrails") or []
    return [str((e.get("litellm_params") or {}).get("guardrail", "")) for e in entries if isinstance(e, dict)]


def _is_akto(params: dict[str, Any]) -> bool:
    """An entry is Akto's when it is LiteLLM's built-in ``akto`` or carries ``akto_*`` settings."""
    return params.get("guardrail") == BUILTIN_AKTO or any(str(key).startswith("akto_") for key in params)


def rewrite_guardrails(entries: list[Any], config: ConnectorConfig, engine_url: str) -> list[dict[str, Any]]:
    """The user's guardrail entries pointed at this instance's engine, with the scenario's fail mode,
    timeout, ids and mode (monitor-only keeps only post-call entries). Other guardrails stay as they are."""
    rewritten = []
    for entry in entries:
        params = dict(entry.get("litellm_params") or {})
        if _is_akto(params):
            pre_call = params.get("mode") in ("pre_call", "during_call", "pre_mcp_call", "during_mcp_call")
            if config.mode == "monitor_only" and pre_call:
                continue
            params["akto_base_url"] = engine_url
            if pre_call:
                params["unreachable_fallback"] = config.fail_mode
                if config.timeout_s is not None:
                    params["guardrail_timeout"] = config.timeout_s
                else:
                    params.pop("guardrail_timeout", None)
            for key, value in (("akto_account_id", config.account_id), ("akto_vxlan_id", config.vxlan_id)):
                if value is not None:
                    params[key] = value
        rewritten.append({**entry, "litellm_params": params})
    return rewritten


def mcp_entries(path: Path) -> list[str]:
    """The modes of the config's Akto entries that guard MCP tool calls (``pre_mcp_call`` ...)."""
    entries = _read_config(path).get("guardrails") or []
    params = [e.get("litellm_params") or {} for e in entries if isinstance(e, dict)]
    return [str(p.get("mode")) for p in params if isinstance(p, dict) and _is_akto(p) and p.get("mode") in MCP_MODES]


def litellm_config_for(user: dict[str, Any], config: ConnectorConfig, engine_url: str, llm_url: str,
                       tool_server_url: str | None = None) -> dict[str, Any]:
    """The user's config with the fake LLM as its models (and the fake MCP server as its only MCP server, for
    MCP scenarios), its Akto guardrails pointed at the engine, and no database or master key of its own (the
    harness makes one per proxy)."""
    models = [model_entry(name, llm_url, provider) for provider, name in DEFAULT_MODELS.items()]
    built = base_config(models, rewrite_guardrails(list(user.get("guardrails") or []), config, engine_url))
    if tool_server_url is not None:
        built["mcp_servers"] = mcp_servers(tool_server_url)
    for section in ("litellm_settings", "router_settings"):
        built[section] = {**built[section], **(user.get(section) or {})}
    general = {k: v for k, v in (user.get("general_settings") or {}).items() if k not in ("master_key", "database_url")}
    if general:
        built["general_settings"] = general
    return built


class _OwnedConfigInstance(LiteLLMInstance):
    """A LiteLLM instance whose generated config folder is removed when it stops."""

    def __init__(self, proxy: LiteLLMProxy, engine: Any, timeout_s: float, folder: tempfile.TemporaryDirectory[str],
                 tool_server: FakeMCPServer | None = None) -> None:
        super().__init__(proxy, engine, timeout_s, tool_server)
        self.folder = folder

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.folder.cleanup()


class LiteLLMConfigConnector(LiteLLMConnector):
    """A user's LiteLLM config.yaml in a real proxy. Python files next to the config (a guardrail class, a
    ``custom_hooks.py`` callback) are copied next to the generated config, where LiteLLM looks for them."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.name = target.name  # type: ignore[misc]
        self.expectations = target.profile or target.default_profile()  # type: ignore[misc]

    def unsupported(self, config: ConnectorConfig) -> str | None:
        """MCP scenarios need an Akto entry in an MCP mode; without one the config does not guard tool calls."""
        if config.mcp and self.target.litellm_config is not None and not mcp_entries(self.target.litellm_config):
            return f"the config has no Akto guardrail entry in mode {' / '.join(MCP_MODES)}: it does not guard MCP tool calls"
        return None

    def start(self, config: ConnectorConfig, engine: EngineEndpoint, llm: LLMUpstream) -> ConnectorInstance:
        source = self.target.litellm_config
        assert source is not None
        folder = tempfile.TemporaryDirectory(prefix="conformance-litellm-")
        tool_server: FakeMCPServer | None = None
        try:
            for sibling in source.parent.glob("*.py"):
                shutil.copy(sibling, folder.name)
            tool_server = FakeMCPServer().start() if config.mcp else None
            built = litellm_config_for(_read_config(source), config, engine.url, llm.url, tool_server and tool_server.url)
            path = Path(folder.name) / "config.yaml"
            path.write_text(yaml.safe_dump(built, sort_keys=False))
            values = placeholders(engine.url, config)
            env = {"AKTO_API_KEY": "akto-conformance-key", **{name: engine.url for name in ENGINE_ENV},
                   "AKTO_UNREACHABLE_FALLBACK": config.fail_mode,
                   **{k: _fill(v, values) for k, v in self.target.env.items()}}
            proxy = LiteLLMProxy(path, env=env, name=f"litellm-{self.name}").start()
        except BaseException:
            folder.cleanup()
            if tool_server is not None:
                tool_server.stop()
            raise
        return warmed_up(_OwnedConfigInstance(proxy, engine, float(config.timeout_s or DEFAULT_TIMEOUT_S), folder, tool_server))


# ------------------------------------------------------------------------------------------ mitm addon


class AddonConnector(EgressConnector):
    """Any addon file in the harness's mitmdump, configured through the environment egress addons read."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.name = target.name  # type: ignore[misc]
        self.expectations = target.profile or target.default_profile()  # type: ignore[misc]

    def addon_file(self) -> Path:
        assert self.target.mitm_addon is not None
        return self.target.mitm_addon

    def extra_env(self, config: ConnectorConfig, engine_url: str) -> dict[str, str]:
        values = placeholders(engine_url, config)
        return {k: _fill(v, values) for k, v in self.target.env.items()}


# ----------------------------------------------------------------------------------- guardrail endpoint


class UserEndpoint:
    """A user's guardrail endpoint, as :class:`TrueFoundryInstance` calls it: started from ``command``
    per connector config, or one the user runs."""

    def __init__(self, url: str, process: ManagedProcess | None) -> None:
        self.url = url
        self.process = process

    def guardrail_url(self, **query: str | bool) -> str:
        params = {k: ("true" if v is True else "false" if v is False else v) for k, v in query.items()}
        return str(httpx.URL(self.url).copy_merge_params(params))

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class GuardrailURLConnector(TrueFoundryConnector):
    """A TrueFoundry-style custom guardrail endpoint behind the TrueFoundry gateway simulator."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.name = target.name  # type: ignore[misc]
        self.expectations = target.profile or target.default_profile()  # type: ignore[misc]

    def unsupported(self, config: ConnectorConfig) -> str | None:
        """An endpoint the user runs has one configuration: scenarios needing another are not applicable."""
        if self.target.command is not None:
            return None
        if config.fail_mode != self.target.fail_mode or config.timeout_s != self.target.timeout_s:
            return (f"needs {config.fail_mode} with timeout {config.timeout_s or 'default'}; the endpoint runs "
                    f"{self.target.fail_mode} with timeout {self.target.timeout_s or 'default'} (give a command to vary it)")
        return None

    def instance_engine(self, engine: EngineEndpoint) -> Any:
        if self.target.command is None:
            return _fixed_namespace(engine, self.target.namespace)
        return engine

    def start_endpoint(self, config: ConnectorConfig, engine: EngineEndpoint, timeout: float) -> UserEndpoint:  # type: ignore[override]
        url = self.target.guardrail_url
        assert url is not None
        if self.target.command is None:
            probe(url)
            return UserEndpoint(url, None)
        port = free_port()
        values = placeholders(engine.url, config, port=port)
        process = ManagedProcess(
            f"endpoint-{self.name}", [_fill(arg, values) for arg in self.target.command], ready=port_open(port),
            env={k: _fill(v, values) for k, v in self.target.env.items()}, startup_timeout=ENDPOINT_START_S,
        ).start()
        return UserEndpoint(_fill(url, values), process)


def probe(url: str) -> None:
    """One bounded request: an unreachable endpoint is a StartupError naming the URL, never a hang."""
    try:
        httpx.get(url, timeout=PROBE_TIMEOUT_S, trust_env=False)
    except httpx.HTTPError as exc:
        raise StartupError(f"guardrail endpoint {url} is unreachable: {type(exc).__name__}: {exc}") from None


def _fixed_namespace(opened: EngineEndpoint, name: str) -> EngineNamespace:
    """The namespace a user-run endpoint calls (``<engine>/ns/<name>``) instead of the instance's own."""
    assert isinstance(opened, EngineNamespace)
    client = MockAktoClient(opened.engine_url, name)
    return EngineNamespace(engine_url=opened.engine_url, namespace=name, url=f"{opened.engine_url}/ns/{name}", client=client)
