"""Options through mitmproxy's option system (``--set``), environment fallbacks, and refusing bad values."""

from __future__ import annotations

import pytest

from egress_helpers import DECISION, INJECTION, OPENAI_CHAT, chat
from harness.hosts.mitmdump import EGRESS_ADDON, MitmDump
from harness.process import StartupError

pytestmark = pytest.mark.timeout(60)


def test_set_options_win_over_the_environment(egress_proxy, egress_akto, egress_llm):
    """akto_url from --set, although AKTO_URL points at a dead port; fail_closed from --set as well."""
    proxy = egress_proxy(
        akto_url="http://127.0.0.1:9",  # AKTO_URL: nothing listens there
        fail_mode="fail_open",
        options={"akto_url": egress_akto.url, "akto_unreachable_fallback": "fail_closed", "akto_app_name": "set-app"},
        fresh=True,
    )
    with proxy.client() as client:
        blocked = client.post(OPENAI_CHAT, json=chat(INJECTION))
    assert blocked.status_code == 403 and blocked.headers[DECISION] == "blocked", "the engine of --set was asked"
    assert egress_akto.client.journal()[0].app == "set-app"

    egress_akto.client.add_fault({"type": "connection_reset_by_peer"})
    with proxy.client() as client:
        failed = client.post(OPENAI_CHAT, json=chat())
    assert failed.status_code == 503, "--set akto_unreachable_fallback=fail_closed beat AKTO_UNREACHABLE_FALLBACK"


def test_extra_hosts_are_inspected(egress_proxy, egress_akto, egress_upstream, egress_llm):
    other = f"localhost:{egress_upstream.port}"
    proxy = egress_proxy(env={"AKTO_HOSTS": "localhost, *.example.internal"}, fresh=True)
    with proxy.client() as client:
        answer = client.post(f"https://{other}/v1/chat/completions", json=chat(INJECTION))
    assert answer.status_code == 403, "an extra host is intercepted and guarded like a provider"
    assert egress_llm.requests() == []


@pytest.mark.parametrize(
    "env,options,message",
    [
        ({}, {}, "the engine URL is required"),
        ({"AKTO_URL": "http://127.0.0.1:9"}, {"akto_unreachable_fallback": "maybe"}, "akto_unreachable_fallback: must be fail_open or fail_closed"),
    ],
    ids=["no-url", "bad-fallback"],
)
def test_bad_configuration_stops_mitmdump_with_a_message_naming_it(env, options, message, monkeypatch, tmp_path):
    """Every rule is unit-tested (test_egress_units.py); here: a bad value really stops mitmdump (exit 1)."""
    monkeypatch.delenv("AKTO_URL", raising=False)
    mitm = MitmDump([EGRESS_ADDON], env=env, options=options, confdir=tmp_path, startup_timeout=20)
    with pytest.raises(StartupError) as failed:
        mitm.start()
    mitm.stop()
    assert "exited with 1" in str(failed.value)
    assert message in str(failed.value)
