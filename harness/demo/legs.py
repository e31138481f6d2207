"""Legs 2-4 of ``make demo``: each reference connector in its real host, with real traffic and a fake LLM.

Each leg owns one engine namespace (its own loopback listener, so a ``down`` fault refuses only that
leg's connector) and one fake LLM, whose recording says whether the model was called. ``start_*`` runs in
a background thread and registers every process on the ExitStack it is given as soon as it runs, so the
caller stops it whatever happens; ``run_*`` sends the traffic and returns one table row per case.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

import httpx
import openai
from rich.markup import escape

from harness.connectors import ConnectorConfig, registry
from harness.demo.table import CLEAN, INJECTION, PII, Row
from harness.engine import EngineNamespace
from harness.fakes.llm import FakeLLMServer, RecordedRequest
from harness.fakes.truefoundry_gateway.client import TfyGatewayServer
from harness.fixtures.egress import PROVIDER_HOSTS
from harness.hosts.litellm_proxy import LiteLLMProxy
from harness.hosts.mitmdump import EGRESS_ADDON, ROUTE_ADDON, MitmDump, route_map
from harness.hosts.truefoundry_endpoint import TrueFoundryEndpoint
from harness.process import LOOPBACK, wait_until
from harness.stack import DEMO_KEY, FREE_PORTS, StackPorts
from mock_akto.client import MockAktoClient

MODEL = "gpt-4o-mini"
CLIENT_TIMEOUT_S = 20.0
MASKED = "[REDACTED_EMAIL]"
EMAIL = "jane.doe@example.com"


@dataclass
class Answer:
    """What the client saw: status, headers and the body's key field (or the client-side error)."""

    status: int | None
    key_field: str
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None

    def describe(self) -> str:
        if self.status is None:
            return f"[red]{escape(self.error or 'no answer')}[/red]"
        colour = "green" if self.status < 300 else "red" if self.status < 500 else "yellow"
        return f"[{colour}]HTTP {self.status}[/{colour}] · {escape(self.key_field)}"


@dataclass
class Probe:
    """One case's answer, its duration and the requests the fake LLM received meanwhile."""

    answer: Answer
    took_ms: float
    received: list[RecordedRequest]

    @property
    def llm_called(self) -> bool:
        return bool(self.received)

    def llm_text(self, detail: str = "") -> str:
        if not self.received:
            return "[green]no[/green]"
        return "yes" + (f": {escape(detail)}" if detail else "")


def probe(llm: FakeLLMServer, send: Callable[[], Answer]) -> Probe:
    """Send one case; a client-side failure (refused, timed out) is an answer too."""
    seen = len(llm.client.requests())
    started = time.perf_counter()
    try:
        answer = send()
    except (httpx.HTTPError, openai.APIConnectionError) as exc:
        answer = Answer(None, "", error=f"{type(exc).__name__}: {exc}")
    took_ms = (time.perf_counter() - started) * 1000
    return Probe(answer, took_ms, llm.client.requests()[seen:])


def openai_answer(response: httpx.Response) -> Answer:
    """An OpenAI-shaped answer: the reply's text, else ``error.message`` (or ``error`` when it is a string)."""
    try:
        body = response.json()
    except ValueError:
        return Answer(response.status_code, f"body {response.text[:80]!r}", response.headers)
    if response.status_code < 300 and isinstance(body, dict) and body.get("choices"):
        return Answer(response.status_code, repr(body["choices"][0]["message"]["content"]), response.headers)
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return Answer(response.status_code, f"error: {message}", response.headers)


def last_user_text(request: RecordedRequest) -> str:
    messages = request.json_body.get("messages") if isinstance(request.json_body, dict) else None
    return str(messages[-1].get("content")) if messages else ""


def open_namespace(engine_url: str, name: str, stack: contextlib.ExitStack) -> EngineNamespace:
    """The leg's namespace with its own loopback listener (default policies), deleted when ``stack`` closes."""
    client = MockAktoClient(engine_url, name)
    try:
        client.reset()
        url = client.create_listener()
    except Exception:
        client.close()
        raise
    namespace = EngineNamespace(engine_url=engine_url, namespace=name, url=url, client=client)
    stack.callback(namespace.close)
    return namespace


@contextlib.contextmanager
def environment(values: Mapping[str, str], drop: Iterable[str] = ()) -> Iterator[None]:
    """Set ``values`` (and unset ``drop``) in this process's environment for the block, then restore it."""
    saved = {name: os.environ.get(name) for name in (*values, *drop)}
    os.environ.update(values)
    for name in drop:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- leg 2: LiteLLM proxy + the reference hook -----------------------------------------------------------


@dataclass
class LiteLLMHosts:
    akto: EngineNamespace
    llm: FakeLLMServer
    proxy: LiteLLMProxy

    def chat(self, prompt: str) -> Answer:
        body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
        with httpx.Client(timeout=CLIENT_TIMEOUT_S, trust_env=False) as http:
            return openai_answer(http.post(f"{self.proxy.url}/v1/chat/completions", json=body,
                                           headers=self.proxy.auth_headers))

    def urls(self) -> list[str]:
        return [f"LiteLLM proxy  {self.proxy.url}/v1/chat/completions  (Authorization: Bearer {self.proxy.master_key};"
                f" config {self.proxy.config_path})",
                f"  its engine namespace 'litellm' at {self.akto.url}, its fake LLM at {self.llm.url}/v1"]

    def log_tail(self) -> str:
        return self.proxy.log_tail(30)


def start_litellm(engine_url: str, stack: contextlib.ExitStack, ports: StackPorts = FREE_PORTS) -> LiteLLMHosts:
    """The seed's two entries (akto-validate pre_call fail_closed with guardrail_timeout 1, akto-ingest post_call)."""
    akto = open_namespace(engine_url, "litellm", stack)
    llm = stack.enter_context(FakeLLMServer(port=ports.litellm_llm))
    # Started as the registry describes it (it sends one warm-up request: LiteLLM builds its router and
    # clients on the first request, a second or more, paid here rather than in row 1).
    config = ConnectorConfig(fail_mode="fail_closed", timeout_s=1, listen_ports=(ports.litellm,), client_key=DEMO_KEY)
    instance = registry.get("litellm").start(config, akto, llm)
    stack.callback(instance.stop)
    hosts = LiteLLMHosts(akto, llm, instance.proxy)  # type: ignore[attr-defined]
    akto.client.wait_for(2, timeout=10)  # the warm-up's pre_call check and its background post_call ingest
    akto.client.clear_journal()
    akto.client.clear_ingest_records()
    llm.client.clear_requests()
    return hosts


def run_litellm(hosts: LiteLLMHosts) -> list[Row]:
    llm, akto = hosts.llm, hosts.akto
    rows = []
    clean = probe(llm, lambda: hosts.chat(CLEAN))
    rows.append(Row("clean prompt", CLEAN, clean.answer.describe(), clean.took_ms, clean.llm_text(),
                    clean.answer.status == 200 and clean.llm_called, "clean 200"))
    blocked = probe(llm, lambda: hosts.chat(INJECTION))
    rows.append(Row("prompt injection", INJECTION, blocked.answer.describe(), blocked.took_ms, blocked.llm_text(),
                    blocked.answer.status == 403 and not blocked.llm_called, "injection 403 (LLM not called)"))
    masked = probe(llm, lambda: hosts.chat(PII))
    received = last_user_text(masked.received[-1]) if masked.received else ""
    rows.append(Row("PII", PII, masked.answer.describe(), masked.took_ms, masked.llm_text(received),
                    masked.answer.status == 200 and MASKED in received and EMAIL not in received,
                    "PII 200, masked before the LLM"))

    # The clean and PII answers are ingested in the background: let both land first, so that the hang
    # below meets only the next request's pre_call check.
    wait_until(lambda: len(akto.client.ingest_records(status_code=200)) >= 2, timeout=10,
               what="the post_call ingests of the clean and PII requests")
    rule = akto.client.add_fault({"type": "hang"})
    try:
        hung = probe(llm, lambda: hosts.chat(CLEAN))
    finally:
        akto.client.remove_fault(rule.id)
    rows.append(Row("engine hangs", f'{CLEAN}\n(engine fault {{"type": "hang"}}; guardrail_timeout 1, fail_closed)',
                    hung.answer.describe(), hung.took_ms, hung.llm_text(),
                    hung.answer.status == 503 and not hung.llm_called and hung.took_ms < 4000,
                    f"engine hang 503 after {hung.took_ms / 1000:.1f} s (LLM not called)"))
    rows.append(blocked_ingest_row(akto))
    return rows


def blocked_ingest_row(akto: EngineNamespace) -> Row:
    """The record the hook sends in the background after a block (statusCode 403, x-blocked-by)."""
    started = time.perf_counter()
    records: list[Any] = []

    def arrived() -> bool:
        records[:] = akto.client.ingest_records(status_code=403)
        return bool(records)

    try:
        wait_until(arrived, timeout=5, what="the blocked request's ingest record")
    except TimeoutError as exc:
        return Row("blocked-request ingest", "(sent by the hook after the block)", f"[red]{exc}[/red]",
                   (time.perf_counter() - started) * 1000, "-", False, "blocked request NOT ingested")
    record = records[-1]
    try:
        response = json.loads(json.loads(record.responsePayload or "{}")["body"])
    except (ValueError, KeyError, TypeError):
        response = {}
    blocked_by = response.get("x-blocked-by") if isinstance(response, dict) else None
    outcome = (f"engine ingest record #{record.seq}: statusCode {record.statusCode}, "
               f"response {escape(json.dumps(response))}")
    return Row("blocked-request ingest", "(sent by the hook in the background after the block; read from "
               "the engine's GET /__admin/ingest)", outcome, (time.perf_counter() - started) * 1000, "-",
               record.statusCode == "403" and blocked_by == "Akto Proxy",
               f"blocked request ingested (statusCode {record.statusCode}, x-blocked-by: {blocked_by})")


# -- leg 3: mitmdump + the egress addon -------------------------------------------------------------------


@dataclass
class EgressHosts:
    akto: EngineNamespace
    llm: FakeLLMServer
    mitm: MitmDump

    def urls(self) -> list[str]:
        env = self.mitm.client_env()
        return [f"mitmdump  {self.mitm.proxy_url}  (HTTPS_PROXY={env['HTTPS_PROXY']} SSL_CERT_FILE={env['SSL_CERT_FILE']},"
                f" then call https://api.openai.com/v1/chat/completions)",
                f"  its engine namespace 'egress' at {self.akto.url}, api.openai.com answered by the fake at {self.llm.url}"]

    def log_tail(self) -> str:
        return self.mitm.log_tail(30)


def start_egress(engine_url: str, stack: contextlib.ExitStack, ports: StackPorts = FREE_PORTS) -> EgressHosts:
    """The egress tests' set-up: a TLS fake with a certificate for the provider names, reached through
    harness/hosts/mitm_route.py (only the TCP destination changes), trusted by mitmdump for upstream TLS."""
    akto = open_namespace(engine_url, "egress", stack)
    llm = stack.enter_context(FakeLLMServer(tls=True, tls_names=(*PROVIDER_HOSTS, LOOPBACK, "localhost"),
                                            port=ports.egress_llm))
    options = {"route_map": route_map({host: (LOOPBACK, llm.port) for host in PROVIDER_HOSTS}),
               "ssl_verify_upstream_trusted_ca": str(llm.ca_cert)}
    env = {"AKTO_URL": akto.url, "APP_NAME": "demo-agent", "AKTO_UNREACHABLE_FALLBACK": "fail_open",
           "AKTO_TIMEOUT_MS": "2000"}
    mitm = stack.enter_context(MitmDump([EGRESS_ADDON, ROUTE_ADDON], options=options, env=env, port=ports.egress))
    return EgressHosts(akto, llm, mitm)


def sdk_chat(client: openai.OpenAI, prompt: str) -> Answer:
    """``client.chat.completions.create`` with the official SDK; its status errors are answers."""
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}])
    except openai.APIStatusError as exc:
        answer = openai_answer(exc.response)
        decision = exc.response.headers.get("x-akto-guardrails-decision")
        if decision:
            answer.key_field = f"X-Akto-Guardrails-Decision: {decision} · {answer.key_field}"
        return answer
    completion = raw.parse()
    return Answer(raw.status_code, repr(completion.choices[0].message.content), raw.headers)


def run_egress(hosts: EgressHosts) -> list[Row]:
    llm, akto = hosts.llm, hosts.akto
    # The SDK configured the way users run it: HTTPS_PROXY and SSL_CERT_FILE, its default base URL.
    # (httpx reads both when the client is built; the main thread runs this after every host has started.)
    with environment(hosts.mitm.client_env(), drop=("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "OPENAI_BASE_URL")):
        client = openai.OpenAI(api_key="sk-demo-openai-key", max_retries=0, timeout=CLIENT_TIMEOUT_S)
    rows = []
    with client:
        allowed = probe(llm, lambda: sdk_chat(client, CLEAN))
        rows.append(Row("allow", CLEAN, allowed.answer.describe(), allowed.took_ms, allowed.llm_text(),
                        allowed.answer.status == 200 and allowed.llm_called, "allow 200"))
        blocked = probe(llm, lambda: sdk_chat(client, INJECTION))
        decision = blocked.answer.headers.get("x-akto-guardrails-decision")
        rows.append(Row("block", INJECTION, blocked.answer.describe(), blocked.took_ms, blocked.llm_text(),
                        blocked.answer.status == 403 and decision == "blocked" and not blocked.llm_called,
                        f"block 403 + X-Akto-Guardrails-Decision: {decision} (LLM not called)"))
        modified = probe(llm, lambda: sdk_chat(client, PII))
        seen = modified.received[-1] if modified.received else None
        text = last_user_text(seen) if seen else ""
        rows.append(Row("modify", PII, modified.answer.describe(), modified.took_ms,
                        modified.llm_text(f"model {seen.model if seen else None}, {text!r}"),
                        modified.answer.status == 200 and MASKED in text and EMAIL not in text
                        and seen is not None and seen.model == MODEL, "modify: PII masked, model kept"))
        rule = akto.client.add_fault({"type": "down"})
        try:
            down = probe(llm, lambda: sdk_chat(client, CLEAN))
        finally:
            akto.client.remove_fault(rule.id)
        rows.append(Row("engine down, fail_open", CLEAN + '\n(engine fault {"type": "down"}: connection refused)',
                        down.answer.describe(), down.took_ms, down.llm_text(),
                        down.answer.status == 200 and down.llm_called, "engine down under fail_open passes (200)"))
    return rows


# -- leg 4: TrueFoundry gateway simulator + the reference endpoint ----------------------------------------

#: Grammar names of harness/connectors/truefoundry.py: input hook, ?sync=true, the strategy.
ENFORCE = "akto/input-sync-enforce"
IGNORE_ON_ERROR = "akto/input-sync-ebioe"
IGNORE_ON_ERROR_VERDICT = "akto/input-sync-ebioe-verdict"


@dataclass
class TrueFoundryHosts:
    akto: EngineNamespace
    llm: FakeLLMServer
    endpoint: TrueFoundryEndpoint
    gateway: TfyGatewayServer

    def chat(self, prompt: str, guardrail: str) -> Answer:
        response = self.gateway.client.chat(prompt, input_guardrails=[guardrail], timeout=CLIENT_TIMEOUT_S)
        answer = openai_answer(response)
        if response.status_code == 400:
            body = response.json()
            answer.key_field = f"error.type {body.get('error', {}).get('type')}: {body.get('message')}"
        results = response.headers.get("x-tfy-sim-guardrails")
        if results:
            answer.key_field += f" · guardrail said {results}"
        return answer

    def urls(self) -> list[str]:
        return [f"TrueFoundry gateway simulator  {self.gateway.url}/api/llm/chat/completions  (pick a guardrail with "
                f'X-TFY-GUARDRAILS: {{"llm_input_guardrails": ["{ENFORCE}"]}}; also {IGNORE_ON_ERROR}, '
                f"{IGNORE_ON_ERROR_VERDICT})",
                f"  Akto endpoint {self.endpoint.guardrail_url(sync=True)}, its engine namespace 'truefoundry' at "
                f"{self.akto.url}, its fake LLM at {self.llm.url}/v1"]

    def log_tail(self) -> str:
        endpoint = self.endpoint.process.log_tail(15) if self.endpoint.process else "(not started)"
        return f"--- endpoint\n{endpoint}\n--- gateway\n{self.gateway.log_tail(15)}"


def start_truefoundry(engine_url: str, stack: contextlib.ExitStack, ports: StackPorts = FREE_PORTS) -> TrueFoundryHosts:
    """Akto's endpoint as documented (fail_open, 3 s engine timeout) behind the gateway simulator."""
    akto = open_namespace(engine_url, "truefoundry", stack)
    llm = stack.enter_context(FakeLLMServer(port=ports.truefoundry_llm))
    config = ConnectorConfig(fail_mode="fail_open", timeout_s=3,
                             listen_ports=(ports.truefoundry, ports.truefoundry_endpoint))
    instance = registry.get("truefoundry").start(config, akto, llm)
    stack.callback(instance.stop)
    instance.ensure([ENFORCE, IGNORE_ON_ERROR, IGNORE_ON_ERROR_VERDICT])  # type: ignore[attr-defined]
    return TrueFoundryHosts(akto, llm, instance.endpoint, instance.gateway)  # type: ignore[attr-defined]


def parallel_llm_text(blocked: Probe, hosts: TrueFoundryHosts) -> str:
    """The gateway starts the model call alongside input Validate guardrails (documented) and drops it on a
    block: whether the fake saw it depends on which finished first, so say what the gateway did with it."""
    state = hosts.gateway.client.last_exchange()["llm"]
    if not blocked.llm_called:
        return f"[green]no[/green] (gateway: model call {state})"
    return f"yes, in parallel (gateway: model call {state}, answer dropped)"


def run_truefoundry(hosts: TrueFoundryHosts) -> list[Row]:
    llm = hosts.llm
    rows = []
    allowed = probe(llm, lambda: hosts.chat(CLEAN, ENFORCE))
    rows.append(Row("allowed, Enforce", f"Enforce:\n{CLEAN}", allowed.answer.describe(), allowed.took_ms,
                    allowed.llm_text(), allowed.answer.status == 200 and allowed.llm_called, "allowed 200"))
    enforced = probe(llm, lambda: hosts.chat(INJECTION, ENFORCE))
    rows.append(Row("blocked, Enforce", f"Enforce:\n{INJECTION}", enforced.answer.describe(),
                    enforced.took_ms, parallel_llm_text(enforced, hosts),
                    enforced.answer.status == 400 and "guardrail_checks_failed" in enforced.answer.key_field,
                    "blocked under Enforce: 400 guardrail_checks_failed"))
    ignored = probe(llm, lambda: hosts.chat(INJECTION, IGNORE_ON_ERROR))
    rows.append(Row("blocked, Enforce But Ignore On Error", f"Enforce But Ignore On Error:\n{INJECTION}",
                    ignored.answer.describe(), ignored.took_ms, ignored.llm_text(),
                    ignored.answer.status == 200 and ignored.llm_called,
                    "the same prompt under Enforce But Ignore On Error passes (200, LLM called)"))
    verdict = probe(llm, lambda: hosts.chat(INJECTION, IGNORE_ON_ERROR_VERDICT))
    rows.append(Row("… with ?answer=verdict", f"Enforce But Ignore On Error, URL ?sync=true&answer=verdict:\n{INJECTION}", verdict.answer.describe(), verdict.took_ms,
                    parallel_llm_text(verdict, hosts),
                    verdict.answer.status == 400, "?answer=verdict makes it block there too (400)"))
    return rows


@dataclass(frozen=True)
class Leg:
    """One connector leg: its ``--leg`` name, its label and title, host start-up (background) and traffic."""

    name: str
    label: str
    title: str
    start: Callable[[str, contextlib.ExitStack, StackPorts], Any]
    run: Callable[[Any], list[Row]]


LEGS = (
    Leg("litellm", "Leg 2 · LiteLLM", "LiteLLM proxy 1.106.2 + the reference hook (akto-validate pre_call, fail_closed, "
        "guardrail_timeout 1; akto-ingest post_call)", start_litellm, run_litellm),
    Leg("egress", "Leg 3 · egress", "the official openai SDK → https://api.openai.com/v1/chat/completions through "
        "HTTPS_PROXY → mitmdump 11.0.2 + the egress addon (fail_open) → the fake LLM", start_egress, run_egress),
    Leg("truefoundry", "Leg 4 · TrueFoundry", "client → TrueFoundry gateway simulator → Akto's TrueFoundry endpoint "
        "(?sync=true, fail_open) → engine; the gateway's input guardrail strategy per row", start_truefoundry, run_truefoundry),
)
