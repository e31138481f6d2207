"""``akto-harness up`` (``make up``): the whole stack on fixed loopback ports until Ctrl-C, with examples.

The engine, a fake LLM per connector and the three connectors in their real hosts (the same start-up code
as ``make demo``: harness/stack.py and the demo's legs), on the documented ports of
:data:`harness.stack.DEFAULT_PORTS` (each overridable: ``--litellm-port 4100`` or
``AKTO_HARNESS_LITELLM_PORT=4100``; 0 picks a free one). It prints copy-paste examples for each connector
(curl, and the OpenAI / Anthropic SDKs), the live activity page's address, then waits. One Ctrl-C (or
SIGTERM) stops every process it started; the exit code is 0 then, 1 when a host failed to start.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.demo.table import CLEAN, INJECTION, PII
from harness.stack import (DEFAULT_PORTS, DEMO_KEY, PORT_ENV, StackPorts, port_number, running_engine, start_in_background,
                           stop_on_ctrl_c_or_sigterm)

if TYPE_CHECKING:  # the legs import the SDKs (test extra): loaded only when `up` runs, not for `akto-harness --help`
    from harness.demo.legs import EgressHosts, LiteLLMHosts, TrueFoundryHosts

#: Printed once everything listens: scripts (and the test) wait for it.
READY_LINE = "akto-harness up: ready"
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-sonnet-latest"
#: The provider keys egress clients send (they reach the fake LLM, never the engine).
EGRESS_OPENAI_KEY = "sk-demo-openai-key"
EGRESS_ANTHROPIC_KEY = "sk-ant-demo-key"
TFY_CLIENT_KEY = "tfy-demo-key"


@dataclass(frozen=True)
class Example:
    """One copy-paste command and the HTTP status it gets (None: an SDK script, exit code 0 when it worked)."""

    title: str
    command: str
    status: int | None = None


def chat_body(prompt: str) -> str:
    return json.dumps({"model": OPENAI_MODEL, "messages": [{"role": "user", "content": prompt}]})


def curl(url: str, prompt: str, *headers: str, options: str = "") -> str:
    head = " ".join(f"-H {shlex.quote(h)}" for h in ("Content-Type: application/json", *headers))
    return (f"curl -s -w '\\nHTTP %{{http_code}}\\n' {options}{url} {head} -d {shlex.quote(chat_body(prompt))}")


def python(code: str, env: dict[str, str] | None = None) -> str:
    prefix = "".join(f"{name}={shlex.quote(value)} " for name, value in (env or {}).items())
    return f"{prefix}{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def lit(value: Any) -> str:
    """A Python literal in double quotes (JSON's), so the shell's single quotes around the script stay simple."""
    return json.dumps(value)


def openai_sdk(client: str, prompt: str) -> str:
    return (f"from openai import OpenAI; c = {client}; "
            f"r = c.chat.completions.create(model={lit(OPENAI_MODEL)}, messages=[{lit({'role': 'user', 'content': prompt})}]); "
            f"print(r.choices[0].message.content)")


def anthropic_sdk(client: str, prompt: str) -> str:
    return (f"from anthropic import Anthropic; c = {client}; "
            f"r = c.messages.create(model={lit(ANTHROPIC_MODEL)}, max_tokens=100, "
            f"messages=[{lit({'role': 'user', 'content': prompt})}]); print(r.content[0].text)")


def litellm_examples(hosts: LiteLLMHosts) -> list[Example]:
    url = hosts.proxy.url
    auth = f"Authorization: Bearer {DEMO_KEY}"
    return [
        Example("LiteLLM proxy: a clean prompt passes", curl(f"{url}/v1/chat/completions", CLEAN, auth), 200),
        Example("LiteLLM proxy: a prompt injection is blocked", curl(f"{url}/v1/chat/completions", INJECTION, auth), 403),
        Example("LiteLLM proxy, OpenAI SDK: PII is masked before the LLM",
                python(openai_sdk(f"OpenAI(base_url={lit(url + '/v1')}, api_key={lit(DEMO_KEY)})", PII))),
        Example("LiteLLM proxy, Anthropic SDK (LiteLLM's /v1/messages)",
                python(anthropic_sdk(f"Anthropic(base_url={lit(url)}, api_key={lit(DEMO_KEY)})", CLEAN))),
    ]


def egress_examples(hosts: EgressHosts) -> list[Example]:
    proxy, ca = hosts.mitm.proxy_url, str(hosts.mitm.ca_cert)
    options = f"--proxy {proxy} --cacert {shlex.quote(ca)} "
    env = {"HTTPS_PROXY": proxy, "SSL_CERT_FILE": ca}
    return [
        Example("egress proxy (mitmdump): a clean prompt to the real OpenAI URL passes",
                curl("https://api.openai.com/v1/chat/completions", CLEAN, f"Authorization: Bearer {EGRESS_OPENAI_KEY}",
                     options=options), 200),
        Example("egress proxy: a prompt injection is blocked",
                curl("https://api.openai.com/v1/chat/completions", INJECTION, f"Authorization: Bearer {EGRESS_OPENAI_KEY}",
                     options=options), 403),
        Example("egress proxy, OpenAI SDK (HTTPS_PROXY + SSL_CERT_FILE, its default base URL): PII is masked",
                python(openai_sdk(f"OpenAI(api_key={lit(EGRESS_OPENAI_KEY)})", PII), env)),
        Example("egress proxy, Anthropic SDK",
                python(anthropic_sdk(f"Anthropic(api_key={lit(EGRESS_ANTHROPIC_KEY)})", CLEAN), env)),
    ]


def truefoundry_examples(hosts: TrueFoundryHosts) -> list[Example]:
    from harness.demo.legs import ENFORCE

    url = f"{hosts.gateway.url}/api/llm"
    selection = json.dumps({"llm_input_guardrails": [ENFORCE]})
    headers = (f"Authorization: Bearer {TFY_CLIENT_KEY}", f"X-TFY-GUARDRAILS: {selection}")
    client = (f"OpenAI(base_url={lit(url)}, api_key={lit(TFY_CLIENT_KEY)}, "
              f"default_headers={lit({'X-TFY-GUARDRAILS': selection})})")
    return [
        Example("TrueFoundry gateway simulator: a clean prompt passes (Enforce)", curl(f"{url}/chat/completions", CLEAN, *headers), 200),
        Example("TrueFoundry gateway simulator: a prompt injection is blocked (400 under Enforce)",
                curl(f"{url}/chat/completions", INJECTION, *headers), 400),
        Example("TrueFoundry gateway simulator, OpenAI SDK (its OpenAI-compatible API; the simulator has no "
                "Anthropic route)", python(openai_sdk(client, CLEAN))),
    ]


EXAMPLES = {"litellm": litellm_examples, "egress": egress_examples, "truefoundry": truefoundry_examples}


def print_stack(engine_url: str, started: dict[str, Any]) -> None:
    print(f"\nakto-harness up: everything on 127.0.0.1 (stable demo key {DEMO_KEY})\n", flush=True)
    print(f"  engine            {engine_url}   (contract API; admin {engine_url}/__admin)")
    print(f"  activity page     {engine_url}/__admin/ui   (every call as it arrives)")
    print(f"  admin API docs    {engine_url}/__admin/docs")
    for name, hosts in started.items():
        for line in hosts.urls():
            print(f"  {line}")
    for name, hosts in started.items():
        print(f"\n## {name}")
        for example in EXAMPLES[name](hosts):
            expect = f" -> HTTP {example.status}" if example.status is not None else ""
            print(f"# {example.title}{expect}")
            print(f"$ {example.command}")
    print(f"\n{READY_LINE} (Ctrl-C stops everything)", flush=True)


def port_flag(flag: str) -> Any:
    def parse(text: str) -> int:
        try:
            return port_number(text, flag)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def ports_from(args: argparse.Namespace) -> StackPorts:
    """Defaults, then AKTO_HARNESS_<NAME>_PORT variables, then --<name>-port flags."""
    ports = DEFAULT_PORTS.with_env()
    flags = {item.name: getattr(args, f"{item.name}_port") for item in dataclasses.fields(StackPorts)}
    return dataclasses.replace(ports, **{name: port for name, port in flags.items() if port is not None})


def run(args: argparse.Namespace) -> int:
    try:
        ports = ports_from(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from harness.demo.legs import LEGS

    stop_on_ctrl_c_or_sigterm()
    try:
        with contextlib.ExitStack() as stack:
            engine_url = stack.enter_context(running_engine(ports.engine))
            futures = start_in_background(list(LEGS), engine_url, ports, stack)
            started: dict[str, Any] = {}
            for leg, future in zip(LEGS, futures):
                try:
                    started[leg.name] = future.result()
                except Exception as exc:  # a host that cannot start ends `up`, naming it and why
                    print(f"error: {leg.label}: a host failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
                    return 1
            print_stack(engine_url, started)
            forever = threading.Event()
            while not forever.wait(3600):
                pass
    except KeyboardInterrupt:
        pass
    print("akto-harness up: stopped, every process it started has exited", flush=True)
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("up", help="the engine, fake LLMs and all three connectors on fixed loopback ports",
                                   description=__doc__.splitlines()[0])
    for item in dataclasses.fields(StackPorts):
        flag = f"--{item.name.replace('_', '-')}-port"
        default = getattr(DEFAULT_PORTS, item.name)
        parser.add_argument(flag, dest=f"{item.name}_port", type=port_flag(flag), default=None,
                            metavar="PORT", help=f"default {default} (or ${PORT_ENV.format(item.name.upper())}; 0: a free port)")
    parser.set_defaults(handler=run)
