"""The engine client under a stall, on a real hanging socket: the breaker's opening decides every call
still waiting at once, the request's deadline starts at the host's arrival stamp, and a decision made at
once builds no envelope, and a decision the host's busy event loop runs past the timeout + 250 ms is
logged (issue 12.1)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator

import pytest

from akto_wire import Envelope
from reference_impl.core import EngineClient, EngineFailure, EngineSettings, FailureKind
from reference_impl.core.aiohttp_transport import AiohttpTransport
from reference_impl.core.breaker import BreakerState
from reference_impl.core.budget import DECISION_MARGIN_S, RequestBudget

pytestmark = pytest.mark.timeout(30)

ENVELOPE = Envelope.build(request_payload='{"messages": [{"role": "user", "content": "hello"}]}',
                          request_headers={"host": "app.example.com"})
TIMEOUT_S = 1.0


async def _hanging_engine() -> tuple[asyncio.Server, str]:
    """A loopback server that reads requests and never answers (the ``hang`` fault, with no engine)."""
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def _client(url: str, failures: int) -> EngineClient:
    settings = EngineSettings(akto_base_url=url, guardrail_timeout=TIMEOUT_S, breaker_failures=failures,
                              breaker_backoff_s=30, connector="test")
    return EngineClient(settings, transport=AiohttpTransport.for_settings(settings))


async def _timed_check(client: EngineClient, envelope: Any = ENVELOPE,
                       budget: RequestBudget | None = None) -> tuple[float, FailureKind | None]:
    started = time.monotonic()
    try:
        await client.check(envelope, budget=budget)
        return time.monotonic() - started, None
    except EngineFailure as failure:
        return time.monotonic() - started, failure.kind


async def _stall(late_start_s: float, failures: int = 3) -> tuple[list[Any], list[Any], EngineClient]:
    server, url = await _hanging_engine()
    client = await _client(url, failures)
    try:
        early = [asyncio.create_task(_timed_check(client)) for _ in range(failures)]
        await asyncio.sleep(late_start_s)  # the late calls start while the early ones are still waiting
        late = [asyncio.create_task(_timed_check(client)) for _ in range(7)]
        return await asyncio.gather(*early), await asyncio.gather(*late), client
    finally:
        await client.aclose()
        server.close()


def test_the_breaker_opening_decides_every_waiting_call_at_once() -> None:
    early, late, client = asyncio.run(_stall(late_start_s=0.4))
    assert client.breaker.state is BreakerState.OPEN
    assert [kind for _, kind in early + late] == [FailureKind.TIMEOUT] * 10
    assert all(waited >= TIMEOUT_S * 0.95 for waited, _ in early), early
    # Started 0.4 s later, decided when the early calls' timeouts opened the breaker: ~0.6 s, not 1 s.
    assert all(waited < 0.85 for waited, _ in late), late


def test_without_the_breaker_every_call_waits_its_own_timeout() -> None:
    """The control: with the breaker off, the same late calls wait their whole timeout."""
    _, late, _ = asyncio.run(_stall(late_start_s=0.4, failures=0))
    assert all(waited >= TIMEOUT_S * 0.95 for waited, _ in late), late


def test_the_budget_starts_at_the_hosts_arrival_stamp() -> None:
    assert RequestBudget.since(1.0, None).left_s == 1.0
    assert 0.65 < RequestBudget.since(1.0, time.time() - 0.3).left_s <= 0.7
    assert RequestBudget.since(1.0, time.time() + 5).left_s == 1.0  # a stamp from the future is no queue
    # A stale stamp (a replayed flow) or a host backed up past the timeout: the engine keeps half of it.
    assert RequestBudget.since(1.0, time.time() - 3).left_s == 0.5


def test_a_call_decided_at_once_builds_no_envelope() -> None:
    built: list[int] = []

    def build() -> Envelope:
        built.append(1)
        return ENVELOPE

    async def run() -> tuple[Any, Any]:
        server, url = await _hanging_engine()
        client = await _client(url, failures=1)
        try:
            first = await _timed_check(client, build)  # goes out (built once), times out, opens the breaker
            second = await _timed_check(client, build)  # decided by the open breaker: nothing built
            spent = RequestBudget(TIMEOUT_S, failed=True)
            try:
                await client.check(build, budget=spent)
            except EngineFailure as failure:
                assert failure.kind is FailureKind.TIMEOUT
            return first, second
        finally:
            await client.aclose()
            server.close()

    first, second = asyncio.run(run())
    assert first[1] is second[1] is FailureKind.TIMEOUT and second[0] < 0.05
    assert built == [1]


def _busy(seconds: float) -> None:
    """Hold the event loop, as a host busy with other requests does (CPU, not a sleep)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def _decide_with_the_loop_held_at_the_deadline(held_s: float) -> tuple[float, RequestBudget]:
    """One budgeted call to a hanging engine; from just before its deadline the loop is held ``held_s``."""
    server, url = await _hanging_engine()
    client = await _client(url, failures=3)
    budget = client.budget()
    try:
        asyncio.get_running_loop().call_later(TIMEOUT_S - 0.05, _busy, held_s)
        waited, kind = await _timed_check(client, budget=budget)
        assert kind is FailureKind.TIMEOUT
        return waited, budget
    finally:
        await client.aclose()
        server.close()


@pytest.mark.parametrize(("held_s", "late"), [(0.6, True), (0.0, False)])
def test_a_decision_the_host_runs_late_is_logged(held_s: float, late: bool, caplog: pytest.LogCaptureFixture) -> None:
    """The timer fires on time, but a host whose loop is held runs the decision late: the log says by how much.
    The control (nothing holds the loop) is decided in time and logs nothing of the kind."""
    caplog.set_level(logging.WARNING, "akto.connector")
    waited, budget = asyncio.run(_decide_with_the_loop_held_at_the_deadline(held_s))
    lines = [record.getMessage() for record in caplog.records
             if "engine deadline" in record.getMessage() and "too busy" in record.getMessage()]
    if late:
        assert waited >= TIMEOUT_S + held_s - 0.06 and budget.late_by_s > DECISION_MARGIN_S, (waited, budget)
        assert len(lines) == 1 and f"past its {TIMEOUT_S:g}s" in lines[0], lines
    else:
        assert waited < TIMEOUT_S + DECISION_MARGIN_S and budget.late_by_s < DECISION_MARGIN_S, (waited, budget)
        assert lines == []
