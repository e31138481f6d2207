"""A bad guardrail config stops the real LiteLLM proxy at start-up, with a message naming the parameter.

LiteLLM 1.106.2 on its own logs "proxy is starting WITHOUT this guardrail" and serves unguarded traffic
(reference_impl/litellm/startup.py explains why and how the hook prevents it). A proxy start costs seconds,
so one config holds one bad entry per case; the start-up check reports every bad entry at once. (Each
parameter rule is also tested in-process in test_litellm_hook.py.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.connectors.litellm import REFERENCE_GUARDRAIL
from harness.hosts.litellm_proxy import LiteLLMProxy, base_config, model_entry
from harness.process import StartupError

pytestmark = [pytest.mark.litellm, pytest.mark.slow, pytest.mark.xdist_group("litellm-startup")]

SECRET = "akto-key-for-startup-tests"
VALID = {
    "guardrail": REFERENCE_GUARDRAIL,
    "mode": "pre_call",
    "akto_base_url": "http://127.0.0.1:9",  # never called: the proxy must not get that far
    "akto_api_key": SECRET,
    "default_on": True,
}


def entry(name: str, **change: Any) -> dict[str, Any]:
    params = {key: value for key, value in (VALID | change).items() if value is not None}
    return {"guardrail_name": name, "litellm_params": params}


def test_bad_configs_stop_the_proxy_naming_each_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AKTO_GUARDRAIL_API_BASE", "AKTO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    entries = [
        entry("no-url", akto_base_url=None),
        entry("no-key", akto_api_key="os.environ/AKTO_API_KEY"),  # unset, and no fallback either
        # Rejected by LiteLLM's own parameter model before our class is loaded: caught by the sibling check.
        entry("bad-fallback", unreachable_fallback="fail_sometimes"),
        entry("bad-timeout", guardrail_timeout=-1, mode="post_call"),
    ]
    config = base_config([model_entry("gpt-4o-mini", "http://127.0.0.1:9")], entries)
    proxy = LiteLLMProxy(config, startup_timeout=120)
    with pytest.raises(StartupError) as caught:
        proxy.start()
    message = str(caught.value)
    assert "exited with" in message, message  # it stopped by itself; it did not hang or serve
    assert "GuardrailStartupError" in message, message
    for name, parameter in [("no-url", "akto_base_url"), ("no-key", "akto_api_key"),
                            ("bad-fallback", "unreachable_fallback"), ("bad-timeout", "guardrail_timeout")]:
        assert re.search(rf"guardrail '{name}': [^;]*{parameter}", message), (name, message)
    assert SECRET not in proxy.process.log_path.read_text(errors="replace")  # type: ignore[union-attr]



def test_a_dropped_guardrail_is_refused_by_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    """LiteLLM's built-in ``akto`` guardrail raises ValueError on a missing URL, and LiteLLM then serves
    without it; the harness's proxy wrapper notices and refuses to hand out such a proxy."""
    monkeypatch.delenv("AKTO_GUARDRAIL_API_BASE", raising=False)
    config = base_config([model_entry("gpt-4o-mini", "http://127.0.0.1:9")],
                         [{"guardrail_name": "akto-validate", "litellm_params": {
                             "guardrail": "akto", "mode": "pre_call", "akto_api_key": SECRET, "default_on": True}}])
    proxy = LiteLLMProxy(config, startup_timeout=120)
    with pytest.raises(StartupError, match="started without a guardrail entry"):
        proxy.start()
    assert not proxy.process.running  # type: ignore[union-attr]
