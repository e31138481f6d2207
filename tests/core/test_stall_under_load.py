"""One deadline per request, under load, in every connector's real host (issue 12.1).

50 agents send at once while the engine hangs: every request is decided within the timeout + 250 ms, in
both fail modes (the egress addon's response phase does not wait a second timeout, and once the breaker
has seen the stall, later requests are decided at once). Then the engine recovers, and the breaker's
half-open probe closes it: requests are checked by the engine again.

Two measures, because a request's time at the client is more than its decision:
- **the decision**, measured where the connector makes it: the shared core charges each request's engine
  wait from the host's arrival stamp until the connector stopped waiting (its deadline's timer or the
  breaker's cut ran on the host's loop, or the answer was read), and logs every request decided more than
  250 ms past its timeout (``tests/core/test_deadline_under_stall.py`` shows that line appears when a
  host's loop runs the timer late). No such line may appear here for the egress addon and the TrueFoundry
  endpoint; in LiteLLM a full garbage collection of its own can stop the loop 0.3-0.6 s on a deadline, so
  there a line is allowed, and only a decision a whole timeout late fails.
- **the answer at the client**: the decision plus what the host does before and after it (its intake, then
  under fail_open the LLM call and the answer, under fail_closed the refusal: LiteLLM spends about as much
  CPU answering a refusal as a whole healthy request). So the test first sends the same 50 agents with a
  healthy engine, and the bound is the timeout + 250 ms + that run's slowest answer, the host's own time for
  50 at once. A request that waited a second timeout (the original bug) is well past it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from harness.connectors import registry
from harness.connectors.base import ConnectorConfig, ConnectorInstance
from harness.process import wait_until
from reference_impl.core.budget import DECISION_MARGIN_S

AGENTS = 50
ROUNDS = 3
HANG = {"type": "hang", "max_ms": 60_000}

CONNECTORS = [
    pytest.param("litellm", marks=pytest.mark.litellm),
    pytest.param("egress", marks=pytest.mark.mitm),
    pytest.param("truefoundry"),
]

# ``timed_load``: `make test` runs these after the parallel tests, one at a time. Each is 50 agents against a
# host on a 2-core machine; beside another test (a LiteLLM proxy saturating a core) it would measure the
# contention between them, not the connector's deadline. The bound itself is unchanged.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180), pytest.mark.timed_load]


async def _agents(instance: ConnectorInstance, agents: int, rounds: int) -> list[tuple[int, float]]:
    """``agents`` clients at once, each sending ``rounds`` requests in turn: (status, seconds) per request."""
    target = instance.target
    limits = httpx.Limits(max_connections=agents, max_keepalive_connections=agents)
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
        async def agent(number: int) -> list[tuple[int, float]]:
            results = []
            for turn in range(rounds):
                started = time.perf_counter()
                answer = await client.post(target.url, content=target.body(f"agent {number} turn {turn}"),
                                           headers=dict(target.headers))
                results.append((answer.status_code, time.perf_counter() - started))
            return results

        per_agent = await asyncio.gather(*(agent(n) for n in range(agents)))
    return [result for results in per_agent for result in results]


def _quantile(results: list[tuple[int, float]], q: float) -> float:
    ordered = sorted(seconds for _, seconds in results)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_agents(instance: ConnectorInstance, agents: int = AGENTS, rounds: int = ROUNDS) -> list[tuple[int, float]]:
    return asyncio.run(_agents(instance, agents, rounds))


@pytest.fixture
def start(akto: Any, fake_llm: Any):
    started: list[ConnectorInstance] = []

    def _start(name: str, fail_mode: str, timeout_s: int = 1) -> ConnectorInstance:
        instance = registry.get(name).start(ConnectorConfig(fail_mode=fail_mode, timeout_s=timeout_s), akto, fake_llm)
        started.append(instance)
        return instance

    yield _start
    for instance in started:
        instance.stop()


@pytest.mark.parametrize("fail_mode", ["fail_open", "fail_closed"])
@pytest.mark.parametrize("name", CONNECTORS)
def test_stalled_engine_decides_every_request_within_timeout(name: str, fail_mode: str, start: Any, akto: Any) -> None:
    instance = start(name, fail_mode)
    connector = registry.get(name)
    expected = connector.answers.passed if fail_mode == "fail_open" else connector.answers.unreachable
    # The same load with a healthy engine first: what the host itself takes for 50 agents at once now.
    healthy = run_agents(instance)
    assert {status for status, _ in healthy} == {connector.answers.passed}
    healthy_slowest = max(seconds for _, seconds in healthy)
    margin_s = DECISION_MARGIN_S + healthy_slowest
    akto.client.reset()
    akto.client.add_fault(HANG)
    results = run_agents(instance)
    slowest = max(seconds for _, seconds in results)
    statuses = {status for status, _ in results}
    assert statuses == {expected}, f"{name} {fail_mode}: statuses {statuses}"
    # 150 failed decisions, a handful of log lines: repeats of a kind are folded (issue 11.10).
    # The whole log: LiteLLM writes a traceback per 503 of its own, which buries ours in a short tail.
    log_lines = instance.log_tail(1_000_000).splitlines()
    failure_lines = [line for line in log_lines if "failed (timeout)" in line]
    assert 1 <= len(failure_lines) <= 6, f"{len(failure_lines)} failure lines for {len(results)} requests"
    # Decided where the connector decides: its late-decision lines (more than DECISION_MARGIN_S past).
    late_lines = [line for line in log_lines if "engine deadline" in line and "too busy" in line]
    # Request verdict calls only: under fail_open the passed requests' post-call ingestion also reaches the
    # engine (in the background, bounded; LiteLLM's post_call entry sends guardrails=true and ingest_data=true
    # with the LLM's answer), and is not what the breaker short-circuits. (The egress addon's request check
    # asks to ingest too, without an answer yet: it counts.)
    engine_calls = sum(1 for entry in akto.client.journal(flag="guardrails", limit=10_000)
                       if not (entry.flags is not None and entry.flags.ingest_data and entry.response_payload))
    within = (f"{name} {fail_mode}: slowest of {len(results)} requests took {slowest:.3f}s "
              f"(bound: timeout {instance.timeout_s}s + {margin_s:.3f}s, the healthy run's slowest {healthy_slowest:.3f}s; p50 {_quantile(results, 0.5):.3f}s, "
              f"p99 {_quantile(results, 0.99):.3f}s), {engine_calls} verdict calls")
    print(within)  # shown with -s or on failure: the measured figures
    # The breaker saw the stall: far fewer engine calls than requests reached the engine.
    assert engine_calls < len(results), f"every request waited on the engine: no breaker ({within})"
    if name == "litellm":
        # LiteLLM's own full garbage collections hold its event loop 0.3-0.6 s (measured with gc.callbacks):
        # one landing on a deadline makes a decision late, and the line says so; fresh-clone runs read 307 and
        # 435 ms. The hook cannot run while its host is stopped, but it must never wait a second timeout.
        late_ms = [int(line.split("decided ", 1)[1].split(" ms", 1)[0]) for line in late_lines]
        assert all(ms < instance.timeout_s * 1000 for ms in late_ms), f"decided a timeout late: {late_lines} ({within})"
    else:
        assert not late_lines, f"decided later than the timeout + {DECISION_MARGIN_S}s: {late_lines} ({within})"
    assert slowest <= instance.timeout_s + margin_s, f"{within}\n{instance.log_tail()}"


@pytest.mark.parametrize("name", CONNECTORS)
def test_breaker_recovers_when_the_engine_answers_again(name: str, start: Any, akto: Any) -> None:
    instance = start(name, "fail_closed")
    connector = registry.get(name)
    akto.client.add_fault(HANG)
    run_agents(instance, agents=10, rounds=1)  # ten overlapping timeouts: the breaker opens
    akto.client.reset()
    seen_before = akto.client.count()

    def checked_again() -> bool:
        status, _ = run_agents(instance, agents=1, rounds=1)[0]
        return status == connector.answers.passed

    wait_until(checked_again, timeout=10, interval=0.2, what="the breaker closed after the engine recovered")
    assert akto.client.count() > seen_before, "the request passed without the engine"
    log = instance.log_tail(1_000_000)  # the whole log: LiteLLM's tracebacks bury ours in a short tail
    assert "engine circuit open" in log and "engine circuit closed" in log
