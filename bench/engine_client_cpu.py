"""The connectors' engine client: CPU per engine call in the host's process, side by side (issue 12.2).

Why CPU and not latency: every connector host serves all its requests on one event loop (mitmdump, the
LiteLLM proxy, uvicorn), so the client's CPU per call is throughput lost for everyone. Process CPU time
is also what a busy shared machine disturbs least.

Variants, the same egress request-phase envelope, ``--in-flight`` calls at once (100: the pool size), best of ``--rounds``:

* ``httpx``: ``EngineClient`` over httpx's own transport (httpcore + anyio);
* ``aiohttp via httpx``: over our aiohttp transport, through httpx's ``AsyncClient`` layers (before 12.2);
* ``aiohttp direct``: over our aiohttp transport called directly (what the LiteLLM hook and the TrueFoundry
  endpoint do);
* ``http1 direct``: over the lean HTTP/1.1 transport called directly (what the egress addon does).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Sequence

from harness.engine import EngineNamespace, EngineProcess
from harness.payloads import ALLOW_PROMPT
from reference_impl.core import EngineClient, EngineSettings
from reference_impl.core.aiohttp_transport import AiohttpTransport
from reference_impl.core.http1_transport import Http1Transport
from reference_impl.egress.payload import build_envelope, request_payload


def _envelope():
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ALLOW_PROMPT}]}
    return build_envelope(path="/v1/chat/completions", method="POST", app_name="",
                          request_headers={"content-type": "application/json", "host": "api.openai.com"},
                          request_payload_text=request_payload(body))


def _client(variant: str, url: str) -> EngineClient:
    settings = EngineSettings(akto_base_url=url, connector="egress", guardrail_timeout=30)
    if variant == "httpx":
        return EngineClient(settings)
    if variant == "http1 direct":
        return EngineClient(settings, transport=Http1Transport.for_settings(settings))
    client = EngineClient(settings, transport=AiohttpTransport.for_settings(settings))
    if variant == "aiohttp via httpx":
        client._direct = None  # the path before issue 12.2: through httpx.AsyncClient
    return client


async def _measure(variant: str, url: str, rounds: int, in_flight: int) -> float:
    client = _client(variant, url)
    envelope = _envelope()
    try:
        for _ in range(100):  # warm the pool
            await client.check(envelope, direction="request", ingest=True)
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            await asyncio.gather(*(client.check(envelope, direction="request", ingest=True) for _ in range(in_flight)))
            best = min(best, (time.process_time() - started) / in_flight * 1000)
        return best
    finally:
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench engine_client_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=100)
    args = parser.parse_args(argv)
    variants = ("httpx", "aiohttp via httpx", "aiohttp direct", "http1 direct")
    with EngineProcess() as engine:
        namespace = EngineNamespace.open(engine.url, "client-cpu")
        results = {v: asyncio.run(_measure(v, namespace.url, args.rounds, args.in_flight)) for v in variants}
    base = results["httpx"]
    print(f"{'variant':<20} {'CPU ms/call':>12} {'vs httpx':>9}")
    for variant, cpu in results.items():
        print(f"{variant:<20} {cpu:>12.3f} {cpu / base:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
