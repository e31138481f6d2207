"""Settings of the egress addon: mitmproxy options first, then environment variables, then defaults.

Pure (no mitmproxy import) so the option table can be tested in any environment. Every value is validated
once at start-up; a bad one raises :class:`~reference_impl.core.ConfigError` naming both the option and its
environment variable, and the addon turns that into a start-up error (mitmdump exits 1) instead of a proxy
that silently inspects nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Mapping

from ..core import ConfigError, EngineSettings, FailMode

#: Hosts inspected by default (Akto's list). ``*`` stands for exactly one DNS label (the Bedrock region).
DEFAULT_HOSTS = (
    "api.openai.com",
    "api.anthropic.com",
    "chatgpt.com",
    "bedrock-runtime.amazonaws.com",
    "bedrock-runtime.*.amazonaws.com",
)
DEFAULT_TIMEOUT_MS = 5000
DEFAULT_BATCH_CHARS = 600  # Akto's AKTO_TEXT_THRESHOLD


class StreamMode(str, Enum):
    ASYNC = "async"  # chunks pass at once; batches are checked in the background (alert only)
    SYNC = "sync"  # a batch is held until its verdict; a block ends the stream with an error event


@dataclass(frozen=True)
class OptionSpec:
    """One addon option: its mitmproxy name, type, environment variable, default and help text."""

    name: str
    type: type
    env: str
    default: Any
    help: str


#: The option table (docs/egress.md shows the same). Options are declared ``Optional`` in mitmproxy with
#: a ``None`` default, so "not set on the command line" can fall back to the environment.
OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("akto_url", str, "AKTO_URL", None, "Akto engine base URL; /api/http-proxy is appended."),
    OptionSpec("akto_app_name", str, "APP_NAME", "", "Sent as `host` in requestHeaders (the Akto collection)."),
    OptionSpec("akto_timeout_ms", int, "AKTO_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, "Total deadline per engine call, in ms."),
    OptionSpec(
        "akto_unreachable_fallback", str, "AKTO_UNREACHABLE_FALLBACK", FailMode.FAIL_OPEN.value,
        "fail_open (pass traffic) or fail_closed (answer 503) when the engine fails.",
    ),
    OptionSpec("akto_hosts", str, "AKTO_HOSTS", "", "Extra hosts to inspect, comma separated (`*` = one DNS label)."),
    OptionSpec("akto_stream_mode", str, "AKTO_GUARDRAILS_MODE", StreamMode.ASYNC.value, "Streams: async or sync."),
    OptionSpec("akto_stream_batch_chars", int, "AKTO_TEXT_THRESHOLD", DEFAULT_BATCH_CHARS, "Stream text checked per batch of N chars."),
    OptionSpec("akto_api_key", str, "AKTO_API_KEY", "", "Sent raw as Authorization to the engine (optional)."),
    OptionSpec("akto_account_id", str, "AKTO_ACCOUNT_ID", "1000000", "akto_account_id in every envelope."),
    OptionSpec("akto_vxlan_id", str, "AKTO_VXLAN_ID", "0", "akto_vxlan_id in every envelope."),
)


class HostMatcher:
    """Decides whether a host is an AI provider to inspect. Case-insensitive, exact or ``*`` per label."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        exact = {p for p in patterns if "*" not in p}
        wild = [p for p in patterns if "*" in p]
        self._exact = frozenset(exact)
        self._regex = (
            re.compile("|".join("(?:" + re.escape(p).replace(r"\*", "[a-z0-9-]+") + ")" for p in wild))
            if wild
            else None
        )

    def __call__(self, host: str | None) -> bool:
        if not host:
            return False
        host = host.lower().rstrip(".")
        return host in self._exact or (self._regex is not None and self._regex.fullmatch(host) is not None)


@dataclass(frozen=True)
class EgressSettings:
    engine: EngineSettings
    app_name: str
    hosts: HostMatcher
    stream_mode: StreamMode
    batch_chars: int

    @property
    def fail_mode(self) -> FailMode:
        return self.engine.unreachable_fallback


_HOST_PATTERN = re.compile(r"^(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?))*$")


def _parse_hosts(text: str) -> tuple[str, ...]:
    hosts = tuple(h.strip().lower() for h in text.split(",") if h.strip())
    for host in hosts:
        if not _HOST_PATTERN.match(host):
            raise ValueError(f"{host!r} is not a host name (letters, digits, '-', '.', '*' for one label)")
    return hosts


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a positive integer")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"must be a positive integer, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"must be a positive integer, got {number}")
    return number


def _choice(enum: type[Enum]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        text = str(value).strip().lower()
        try:
            return enum(text)
        except ValueError:
            allowed = " or ".join(e.value for e in enum)  # type: ignore[attr-defined]
            raise ValueError(f"must be {allowed}, got {value!r}") from None

    return parse


def resolve(options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> EgressSettings:
    """Build the settings: a mitmproxy option that is set (not ``None``) wins over its environment variable."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    source: dict[str, str] = {}
    for spec in OPTIONS:
        value = options.get(spec.name)
        if value is not None:
            raw[spec.name], source[spec.name] = value, f"option {spec.name}"
        elif env.get(spec.env, "").strip():
            raw[spec.name], source[spec.name] = env[spec.env], f"environment variable {spec.env}"
        else:
            raw[spec.name], source[spec.name] = spec.default, f"option {spec.name} / {spec.env}"

    def parsed(name: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(raw[name])
        except ValueError as exc:
            raise ConfigError(f"akto egress: {source[name]}: {exc}") from None

    if not raw["akto_url"] or not str(raw["akto_url"]).strip():
        raise ConfigError("akto egress: the engine URL is required: --set akto_url=... or AKTO_URL")
    timeout_ms = parsed("akto_timeout_ms", _positive_int)
    fail_mode = parsed("akto_unreachable_fallback", _choice(FailMode))
    try:
        engine = EngineSettings(
            akto_base_url=str(raw["akto_url"]),
            akto_api_key=str(raw["akto_api_key"]) or None,
            unreachable_fallback=fail_mode,
            guardrail_timeout=timeout_ms / 1000,
            akto_account_id=str(raw["akto_account_id"]).strip(),
            akto_vxlan_id=str(raw["akto_vxlan_id"]).strip(),
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"akto egress: {source['akto_url']}: must be an http:// or https:// URL") from None
    return EgressSettings(
        engine=engine,
        app_name=str(raw["akto_app_name"]).strip(),
        hosts=HostMatcher(DEFAULT_HOSTS + parsed("akto_hosts", _parse_hosts)),
        stream_mode=parsed("akto_stream_mode", _choice(StreamMode)),
        batch_chars=parsed("akto_stream_batch_chars", _positive_int),
    )
