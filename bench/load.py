"""Small asyncio load generators that keep a raw timing per request.

``closed_loop``: N workers, each sends its next request when the previous one answered (a throughput and
overhead probe, like wrk's connections). ``open_loop``: requests start on a fixed schedule whatever the
server does (a fixed-rate probe, like wrk2): the latency of request i is measured from its *scheduled* start,
so a stalled server cannot hide its backlog (no coordinated omission).

``call`` is any coroutine function doing one request; it returns normally on success and raises on failure
(a wrong status should raise). Timings are recorded only for successes; failures are counted.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable, Mapping

import aiohttp

from harness.timing import Timings

Call = Callable[[], Awaitable[object]]


async def closed_loop(call: Call, *, requests: int, concurrency: int, name: str = "") -> Timings:
    """Send ``requests`` calls through ``concurrency`` workers; wall time covers the whole batch."""
    if requests < 1 or concurrency < 1:
        raise ValueError("requests and concurrency must be >= 1")
    timings = Timings(name=name)
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter_ns()
            try:
                await call()
            except Exception:  # a failed request is a counted outcome, not a crash of the benchmark
                timings.record_error()
                continue
            timings.record_ns(time.perf_counter_ns() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    timings.wall_s = time.perf_counter() - began
    return timings


async def open_loop(
    call: Call, *, rate: float, duration_s: float, name: str = "", max_in_flight: int = 10_000
) -> Timings:
    """Start ``rate`` calls per second for ``duration_s``; latency counts from each call's scheduled start.

    ``max_in_flight`` bounds memory if the server stops answering: beyond it a scheduled call is counted
    as an error instead of being started.
    """
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration_s must be > 0")
    timings = Timings(name=name)
    interval_ns = int(1e9 / rate)
    total = int(rate * duration_s)
    in_flight: set[asyncio.Task[None]] = set()

    async def one(scheduled_ns: int) -> None:
        try:
            await call()
        except Exception:
            timings.record_error()
            return
        timings.record_ns(time.perf_counter_ns() - scheduled_ns)

    began_ns = time.perf_counter_ns()
    for i in range(total):
        scheduled = began_ns + i * interval_ns
        delay = (scheduled - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the schedule, not synchronising with the server
        if len(in_flight) >= max_in_flight:
            timings.record_error()
            continue
        task = asyncio.create_task(one(scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.gather(*in_flight)
    timings.wall_s = (time.perf_counter_ns() - began_ns) / 1e9
    return timings


@asynccontextmanager
async def http_session(max_connections: int, *, timeout_s: float = 30.0) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session with keep-alive and at most ``max_connections`` sockets, every call bounded.

    aiohttp rather than httpx here: at 500 concurrent requests httpx's pool costs milliseconds per request
    on the client side, which would be measured as server latency.
    """
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        yield session


class UnexpectedStatus(Exception):
    pass


def post_call(session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str], *,
              expect_status: int = 200) -> Call:
    """One POST per call, the whole body read; a different status raises (and is counted as an error)."""

    async def call() -> None:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status != expect_status:
                raise UnexpectedStatus(f"{url}: expected {expect_status}, got {response.status}")

    return call
