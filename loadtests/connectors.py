"""Connectors the timeout suite puts between the load and the engine, each started in its real host.

A :class:`ConnectorSpec` knows how to start one instance pointed at an engine URL with a fail mode and an
engine timeout, what its client-facing request looks like (a :class:`Target`), and which status means
"blocked by a verdict", "engine unreachable, failed closed" and "passed". ``prepare`` starts what every
instance shares (the LiteLLM proxies share one fake LLM). Add a connector by adding a spec.
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable

from harness.fakes.llm import FakeLLMServer
from harness.hosts.litellm_proxy import LiteLLMProxy
from harness.scenarios.connectors.litellm import REFERENCE_GUARDRAIL, proxy_config
from harness.scenarios.model import ConnectorConfig
from harness.hosts.truefoundry_endpoint import TrueFoundryEndpoint
from loadtests.targets import Target, openai_chat_target, truefoundry_target

Shared = dict[str, Any]
Stop = Callable[[], None]
#: (akto base URL, fail mode, engine timeout s, shared resources) -> (client-facing target, stop), started
Launch = Callable[[str, str, float, Shared], tuple[Target, Stop]]


@dataclass(frozen=True)
class ConnectorSpec:
    name: str
    launch: Launch
    blocked_status: int
    unreachable_status: int
    passed_status: int = 200
    prepare: Callable[[ExitStack], Shared] | None = None


def _launch_truefoundry(akto_url: str, fail_mode: str, timeout_s: float, shared: Shared) -> tuple[Target, Stop]:
    endpoint = TrueFoundryEndpoint(akto_url, fail_mode=fail_mode, timeout=timeout_s, jwt_secret=None).start()
    return truefoundry_target(endpoint.base_url), endpoint.stop


def _prepare_litellm(stack: ExitStack) -> Shared:
    return {"llm": stack.enter_context(FakeLLMServer())}


def _launch_litellm(akto_url: str, fail_mode: str, timeout_s: float, shared: Shared) -> tuple[Target, Stop]:
    if timeout_s != int(timeout_s):
        raise SystemExit("LiteLLM's guardrail_timeout is whole seconds: use --timeout 1, 2, 5...")
    config = ConnectorConfig(fail_mode=fail_mode, timeout_s=int(timeout_s))
    proxy = LiteLLMProxy(proxy_config(REFERENCE_GUARDRAIL, config, akto_url, shared["llm"].url),
                         env={"AKTO_API_KEY": "akto-load-" + secrets.token_urlsafe(16)}, name="litellm-loadtest")
    proxy.start()
    return openai_chat_target("litellm", proxy.url, headers=proxy.auth_headers), proxy.stop


CONNECTORS: dict[str, ConnectorSpec] = {
    # Akto's TrueFoundry endpoint: a block is 400 ``actionErrors``, an unreachable engine under fail_closed 503.
    "truefoundry": ConnectorSpec("truefoundry", _launch_truefoundry, blocked_status=400, unreachable_status=503),
    # The reference LiteLLM hook in a real LiteLLM proxy (fake LLM upstream): a block is 403, unreachable 503.
    "litellm": ConnectorSpec("litellm", _launch_litellm, blocked_status=403, unreachable_status=503,
                             prepare=_prepare_litellm),
}
