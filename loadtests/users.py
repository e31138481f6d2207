"""Locust users built from scenarios: each request is named, its status and (optionally) body are checked.

A scenario says what to send (target + prompt), what must come back (status, and a body check returning a
problem or ``None``) and under which name its timings are kept. Requests whose answer is wrong are marked
failed through ``catch_response``; an expected 503 (fail_closed) is marked a success, so Locust's own
failure count means "the connector did the wrong thing", never "it did what its fail mode says".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from locust import FastHttpUser, constant

from loadtests.keepalive import KeepAliveSafeUser
from loadtests.targets import Target

BodyCheck = Callable[[bytes], "str | None"]


@dataclass(frozen=True)
class Scenario:
    name: str
    target: Target
    prompt: str
    expect_status: int
    check: BodyCheck | None = None
    weight: int = 1
    also_ok: tuple[int, ...] = ()  # other statuses that are right too (fail_closed's 503 on a flaky engine)


#: How much of an unexpected answer's body a failure message quotes (Locust groups failures by message).
EXCERPT_BYTES = 160


def excerpt(body: bytes | None) -> str:
    """The start of ``body`` as text, for a failure message: why the connector answered what it did."""
    text = (body or b"")[:EXCERPT_BYTES].decode("utf-8", "replace")
    return repr(text) + ("..." if body and len(body) > EXCERPT_BYTES else "")


def send(user: FastHttpUser, scenario: Scenario, body: bytes, headers: dict[str, str],
         scheduled: float | None = None) -> None:
    """One request of ``scenario``, its status and body checked. With ``scheduled`` (a ``perf_counter``
    time), its latency counts from then, not from when it was sent: the open model's measure."""
    with user.client.request(scenario.target.method, scenario.target.path, data=body, headers=headers,
                             name=scenario.name, catch_response=True) as response:
        if scheduled is not None:
            response.request_meta["response_time"] = (time.perf_counter() - scheduled) * 1000.0
        if response.status_code in scenario.also_ok:
            response.success()
            return
        if not response.status_code:  # no answer: Locust's ErrorResponse carries the connection error
            error = getattr(response, "error", None)
            response.failure(f"expected {scenario.expect_status}, got no answer: {type(error).__name__}: {error}")
            return
        if response.status_code != scenario.expect_status:
            response.failure(f"expected {scenario.expect_status}, got {response.status_code}: "
                             f"{excerpt(response.content)}")
            return
        problem = scenario.check(response.content or b"") if scenario.check else None
        if problem:
            response.failure(problem)
        else:
            response.success()


def _task(scenario: Scenario) -> Callable[[FastHttpUser], None]:
    body = scenario.target.body(scenario.prompt)
    headers = dict(scenario.target.headers)

    def run(user: FastHttpUser) -> None:
        send(user, scenario, body, headers)

    run.__name__ = scenario.name
    return run


def user_class(name: str, scenarios: Sequence[Scenario], *, timeout_s: float, weight: int = 1,
               wait_s: float = 0.0) -> type[FastHttpUser]:
    """A FastHttpUser running ``scenarios`` (weighted) against their common host, ``wait_s`` apart.

    ``timeout_s`` becomes both ``connection_timeout`` and ``network_timeout``: set it well above the
    connector's engine timeout, so a slow answer is measured rather than cut off by the load generator.
    """
    hosts = {s.target.base_url for s in scenarios}
    if len(hosts) != 1:
        raise ValueError(f"user {name!r}: scenarios must share one host, got {sorted(hosts)}")
    tasks = {_task(s): s.weight for s in scenarios}
    attrs = {
        "host": hosts.pop(), "tasks": tasks, "wait_time": constant(wait_s), "weight": weight,
        "connection_timeout": timeout_s, "network_timeout": timeout_s, "max_retries": 0,
        "insecure": False, "__module__": __name__,
    }
    return type(name, (KeepAliveSafeUser,), attrs)
