"""LiteLLM hook overhead: the latency the reference hook adds to a LiteLLM proxy, next to the built-in one.

Three real LiteLLM proxies (``litellm[proxy]==1.106.2``) in one interleaved run, all forwarding to the same
fake OpenAI upstream and (when guarded) checking with the same engine:

* ``no-guardrail``: the proxy alone (the baseline);
* ``reference``: the seed document's two entries with ``reference_impl.litellm_guardrail.AktoGuardrail``
  (one awaited engine call per request; the post_call ingest runs in the background);
* ``builtin``: the same two entries with LiteLLM's ``guardrail: akto`` (two awaited engine calls).

One request at a time (sequential keep-alive client), rounds alternate the variants. Servers share core 0,
the load generator has core 1. Target (issue 3): the reference hook adds at most half of what the built-in
adds at p50. Results go to docs/benchmarks.md, section "LiteLLM hook".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import sys
from pathlib import Path
from typing import Sequence

import httpx

from bench._common import Check, Timings, Variant, console, interleave_async, machine_notes, print_checks, print_comparison
from bench.load import closed_loop, http_session, post_call
from bench.payloads import ALLOW_PROMPT
from bench.servers import LOADGEN_CPU, SERVER_CPU, engine_process, pin_process, pin_self, server_pid
from harness.fake_llm import FakeLLMServer
from harness.litellm_proxy import LiteLLMProxy, base_config, model_entry
from harness.scenarios.connectors.litellm import BUILTIN_GUARDRAIL, REFERENCE_GUARDRAIL, guardrail_entries
from harness.scenarios.model import ConnectorConfig

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## LiteLLM hook"
MODEL = "gpt-4o-mini"
TARGET_RATIO = 0.5


def proxy_configs(engine_url: str, llm_url: str) -> dict[str, dict]:
    models = [model_entry(MODEL, llm_url)]
    seed = ConnectorConfig()  # the seed document's defaults: fail_closed, 5 s
    return {
        "no-guardrail": base_config(models),
        "reference": base_config(models, guardrail_entries(REFERENCE_GUARDRAIL, seed, engine_url)),
        "builtin": base_config(models, guardrail_entries(BUILTIN_GUARDRAIL, seed, engine_url)),
    }


async def measure(proxies: dict[str, LiteLLMProxy], *, requests: int, rounds: int) -> dict[str, Timings]:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": ALLOW_PROMPT}]}).encode()
    async with http_session(max_connections=4) as session:
        calls = {
            name: post_call(session, f"{proxy.url}/v1/chat/completions", body,
                            {"content-type": "application/json", **proxy.auth_headers})
            for name, proxy in proxies.items()
        }
        variants = [Variant(name, lambda n=name: closed_loop(calls[n], requests=requests, concurrency=1, name=n))
                    for name in proxies]
        return await interleave_async(variants, rounds=rounds, warmup_rounds=1)


def write_docs(rows: list[dict[str, object]], added: dict[str, tuple[float, float]], ratio: float, ok: bool,
               args: argparse.Namespace) -> None:
    """Replace (or append) the "LiteLLM hook" section of docs/benchmarks.md, leaving other sections alone."""
    table = ["| variant | requests | errors | p50 ms | p99 ms | added p50 ms | added p99 ms |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        name = str(row["variant"])
        plus50, plus99 = added.get(name, (0.0, 0.0))
        table.append(f"| {name} | {row['count']} | {row['errors']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
                     f"{plus50:+.2f} | {plus99:+.2f} |")
    section = "\n".join([
        SECTION, "",
        "Added latency of a LiteLLM proxy guardrail, one request at a time, measured in one interleaved run "
        "(`python -m bench litellm_overhead`): the proxy alone, with the reference hook "
        "(`reference_impl.litellm_guardrail.AktoGuardrail`, two entries as in the seed document) and with "
        "LiteLLM's built-in `akto` guardrail (same entries), against the same engine and fake OpenAI upstream.",
        "",
        f"Measured: {machine_notes()}; {args.rounds} rounds x {args.requests} requests per variant.",
        "",
        *table,
        "",
        f"Reference hook / built-in, added p50: **{ratio:.2f}** (target <= {TARGET_RATIO}: "
        f"{'met' if ok else 'MISSED'}). The reference hook awaits one engine call per request and ingests in "
        "the background; the built-in awaits two (the pre_call check and the post_call response check).",
        "",
    ])
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text.rstrip("\n") + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench litellm_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)

    console.rule("LiteLLM proxy: no guardrail vs reference hook vs built-in akto guardrail")
    console.print(machine_notes())
    engine_key = "bench-" + secrets.token_urlsafe(16)
    with engine_process() as engine, FakeLLMServer() as llm:
        assert engine.url is not None
        proxies = {name: LiteLLMProxy(config, env={"AKTO_API_KEY": engine_key}, name=f"bench-litellm-{name}")
                   for name, config in proxy_configs(engine.url, llm.url).items()}
        try:
            for proxy in proxies.values():
                proxy.start()
            for name, proxy in proxies.items():  # every variant must really answer 200 before timing starts
                check = httpx.post(f"{proxy.url}/v1/chat/completions", headers=proxy.auth_headers, timeout=30,
                                   json={"model": MODEL, "messages": [{"role": "user", "content": ALLOW_PROMPT}]},
                                   trust_env=False)
                if check.status_code != 200:
                    sys.exit(f"{name}: the proxy did not answer 200: {check.status_code} {check.text[:300]}")
            pids = [server_pid(engine), llm.process.proc.pid] + [p.process.proc.pid for p in proxies.values()]  # type: ignore[union-attr]
            pinned = all([*(pin_process(pid, SERVER_CPU) for pid in pids), pin_self(LOADGEN_CPU)])
            console.print(f"servers pinned to cpu {SERVER_CPU}, load generator to cpu {LOADGEN_CPU}: {pinned}")
            results = asyncio.run(measure(proxies, requests=args.requests, rounds=args.rounds))
        finally:
            for proxy in proxies.values():
                proxy.stop()

    rows = print_comparison(results, baseline="no-guardrail", title=f"one request at a time, {args.rounds} x "
                            f"{args.requests} requests per variant")
    base = results["no-guardrail"].summary()
    added = {name: (t.summary().p50 - base.p50, t.summary().p99 - base.p99) for name, t in results.items()}
    ratio = added["reference"][0] / added["builtin"][0] if added["builtin"][0] > 0 else float("inf")
    errors = sum(t.errors for t in results.values())
    ok = print_checks([
        Check("reference added p50 / built-in added p50", f"{ratio:.2f} ({added['reference'][0]:.2f} ms vs "
              f"{added['builtin'][0]:.2f} ms)", f"<= {TARGET_RATIO}", ratio <= TARGET_RATIO),
        Check("no errors", f"{errors} errors", "0", errors == 0),
    ])
    if not args.no_docs:
        write_docs(rows, added, ratio, ok, args)
        console.print(f"wrote section {SECTION!r} of {DOCS}")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
