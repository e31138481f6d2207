"""Closed loop beside open model, against one engine namespace, same fault: what coordinated omission hides.

``python -m loadtests.compare_models --engine-url URL [--lognormal 100,140 | --stall-every 10 --stall-ms 1000]``

Both models run at the same time in one Locust run (requests named ``closed`` and ``open``), and beside them
the same two against a reference namespace (with ``--lognormal``, a ``fixed_delay`` of its median; else no
fault): each model's reference p50 above that delay is its own overhead (client, loopback, scheduling on a
busy machine), measured under the same load at the same time. ``--lognormal MEDIAN,P99`` sets a ``lognormal_delay`` on every call. ``--stall-every S`` makes the
engine stall: every S seconds (first after ``--stall-offset``) a ``fixed_delay`` of ``--stall-ms`` is put on
every call for ``--stall-ms``, then removed, by this process's own timer. The expected open-model latency
of request *i* is the overhead plus the stall when its scheduled time fell in a stall window; its p99 over
the schedule is ``expected_open_p99_ms``. Prints (and with ``--json`` writes) the percentiles of both.
"""

from __future__ import annotations

from locust import events  # noqa: F401  (first: Locust monkey-patches the standard library with gevent)

import argparse
import json
import sys
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant, task

from harness.engine import EngineNamespace, EngineProcess
from harness.payloads import ALLOW_PROMPT
from harness.timing import Timings, console, exact_percentile
from loadtests.engine_mix import expect_verdict
from loadtests.keepalive import KeepAliveSafeUser
from loadtests.open_model import OpenModelUser
from loadtests.runner import run_locust
from loadtests.targets import engine_target
from loadtests.users import Scenario, send

PERCENTILES = (50.0, 90.0, 99.0)


def users_for(url: str, closed_users: int, rate: float,
              suffix: str = "") -> tuple[type[FastHttpUser], type[OpenModelUser]]:
    target = engine_target(url)
    closed = Scenario("closed" + suffix, target, ALLOW_PROMPT, 200, expect_verdict(allowed=True))
    opened = Scenario("open" + suffix, target, ALLOW_PROMPT, 200, expect_verdict(allowed=True))
    body, headers = target.body(ALLOW_PROMPT), dict(target.headers)

    class ClosedLoop(KeepAliveSafeUser):
        host, fixed_count, wait_time = url, closed_users, constant(0)
        connection_timeout = network_timeout = 30.0
        max_retries = 0

        @task
        def one(self) -> None:
            send(self, closed, body, headers)

    class OpenModel(OpenModelUser):
        host, fixed_count, arrival_rate, scenarios = url, 1, rate, (opened,)
        connection_timeout = network_timeout = 30.0
        instances: list[OpenModelUser] = []

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            OpenModel.instances.append(self)

    tag = suffix.replace("-", "_").title().replace("_", "")  # Locust wants distinct class names
    ClosedLoop.__name__, OpenModel.__name__ = f"ClosedLoop{tag}", f"OpenModel{tag}"
    return ClosedLoop, OpenModel


def stall_driver(namespace: EngineNamespace, every_s: float, offset_s: float, stall_ms: int,
                 windows: list[tuple[float, float]]) -> gevent.Greenlet:
    """Every ``every_s`` seconds, hold every call ``stall_ms`` for ``stall_ms``; windows in perf_counter time."""

    def run() -> None:
        begin = time.perf_counter()
        for index in range(1_000_000):
            gevent.sleep(max(0.0, begin + offset_s + index * every_s - time.perf_counter()))
            before = time.perf_counter()
            rule = namespace.client.add_fault({"type": "fixed_delay", "ms": stall_ms})
            opened = (before + time.perf_counter()) / 2
            gevent.sleep(max(0.0, opened + stall_ms / 1000 - time.perf_counter()))
            before = time.perf_counter()
            namespace.client.remove_fault(rule.id)
            windows.append((opened, (before + time.perf_counter()) / 2))

    return gevent.spawn(run)


def percentiles(timings: Timings, overhead_ms: float = 0.0) -> dict[str, float]:
    summary = timings.summary(PERCENTILES)
    out = {f"p{p:g}_ms": summary.percentiles_ms[p] - overhead_ms for p in PERCENTILES}
    out.update(count=summary.count, max_ms=summary.max_ms - overhead_ms)
    return out


def compare(engine_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both models against the fault, and beside them the same two models against a reference namespace
    (a ``fixed_delay`` of the median, or nothing), at the same time: each model's overhead is its reference
    p50 minus that delay, measured under the very same machine load."""
    namespace = EngineNamespace.open(engine_url, "models")
    reference = EngineNamespace.open(engine_url, "models-ref")
    try:
        closed_cls, open_cls = users_for(namespace.url, args.closed_users, args.rate)
        closed_ref, open_ref = users_for(reference.url, args.closed_users, args.rate, suffix="-ref")
        median, p99 = (int(v) for v in args.lognormal.split(",")) if args.lognormal else (0, 0)
        if median:
            reference.client.add_fault({"type": "fixed_delay", "ms": median})
            namespace.client.add_fault({"type": "lognormal_delay", "median_ms": median, "p99_ms": p99})
        windows: list[tuple[float, float]] = []
        driver = stall_driver(namespace, args.stall_every, args.stall_offset, args.stall_ms, windows) \
            if args.stall_every else None
        result = run_locust([closed_cls, open_cls, closed_ref, open_ref], users=2 * (args.closed_users + 1),
                            run_time_s=args.run_time, report=False, stop_timeout_s=10)
        if driver is not None:
            driver.kill(block=True, timeout=5)
        overhead = {m: result.raw.timings(f"{m}-ref").summary().p50 - median for m in ("closed", "open")}
        report: dict[str, Any] = {
            "overhead_p50_ms": overhead,
            "closed": percentiles(result.raw.timings("closed"), overhead["closed"]),
            "open": percentiles(result.raw.timings("open"), overhead["open"]),
            "failed": {m: result.raw.failed(m) for m in ("closed", "open", "closed-ref", "open-ref")},
            "failed_by_outcome": {f"{name} {outcome}": n
                                  for (name, outcome), n in sorted(result.raw.failures_by_outcome.items())},
            "errors": {f"{e.name}: {e.error}": e.occurrences for e in list(result.environment.stats.errors.values())[:10]},
            "open_missed": sum(u.missed for u in open_cls.instances),
            "reference": {m: percentiles(result.raw.timings(f"{m}-ref")) for m in ("closed", "open")},
        }
        if driver is not None:
            report["stall_windows_s"] = [[a - windows[0][0], b - windows[0][0]] for a, b in windows]
            report["expected_open_p99_ms"] = expected_open_p99(open_cls.instances, windows, args.stall_ms,
                                                              overhead["open"]) - overhead["open"]
            slow = result.raw.timings("open").fraction_over_ms(overhead["open"] + args.stall_ms / 2)
            report["open_share_over_half_stall"] = slow
            report["closed_over_half_stall"] = round(result.raw.timings("closed").fraction_over_ms(
                overhead["closed"] + args.stall_ms / 2) * result.raw.timings("closed").count)
        return report
    finally:
        namespace.close()
        reference.close()


def expected_open_p99(users: list[OpenModelUser], windows: list[tuple[float, float]], stall_ms: int,
                      overhead_ms: float) -> float:
    """p99 of what each scheduled request should have taken: the overhead, plus the stall if it fell due
    inside a stall window (the schedule is known: request i was due at start + i / rate)."""
    expected = []
    for user in users:
        if user.schedule_start is None:
            continue
        rate = user._rate()
        for index in range(user.scheduled):
            due = user.schedule_start + index / rate
            stalled = any(a <= due < b for a, b in windows)
            expected.append(overhead_ms + (stall_ms if stalled else 0.0))
    return exact_percentile(sorted(expected), 99.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.compare_models", description=__doc__.split("\n")[0])
    parser.add_argument("--engine-url", help="a running engine (default: start one)")
    parser.add_argument("--closed-users", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="open model: requests per second")
    parser.add_argument("--run-time", type=float, default=20.0)
    parser.add_argument("--lognormal", help="MEDIAN,P99 in ms: a lognormal_delay on every call")
    parser.add_argument("--stall-every", type=float, default=0.0, help="seconds between stalls (0: none)")
    parser.add_argument("--stall-offset", type=float, default=4.0, help="seconds before the first stall")
    parser.add_argument("--stall-ms", type=int, default=1000, help="each call held this long during a stall, "
                                                                  "which lasts as long")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    if args.closed_users < 1 or args.rate <= 0 or args.run_time <= 0:
        raise SystemExit("--closed-users >= 1, --rate > 0 and --run-time > 0")
    if args.engine_url:
        report = compare(args.engine_url.rstrip("/"), args)
    else:
        with EngineProcess() as engine:
            assert engine.url is not None
            report = compare(engine.url, args)
    console.print_json(json.dumps(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
