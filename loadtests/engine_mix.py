"""The engine's verdict mix (allow / block / redact 6:2:2), each answer's verdict checked.

Shared by the ``engine`` suite and the shipped engine locustfiles (closed loop and open model).
"""

from __future__ import annotations

import json

from harness.payloads import ALLOW_PROMPT, BLOCK_PROMPT, REDACT_PROMPT
from loadtests.targets import engine_target
from loadtests.users import BodyCheck, Scenario


def expect_verdict(*, allowed: bool, modified: bool | None = None) -> BodyCheck:
    """A body check for ``/api/http-proxy`` answers: the verdict must say ``allowed`` (and ``modified``)."""

    def check(body: bytes) -> str | None:
        try:
            verdict = json.loads(body)["data"]["guardrailsResult"]
        except (ValueError, KeyError, TypeError) as exc:
            return f"unreadable verdict: {exc!r}"
        if verdict.get("Allowed") is not allowed:
            return f"expected Allowed={allowed}, got {verdict.get('Allowed')!r}"
        if modified is not None and verdict.get("Modified") is not modified:
            return f"expected Modified={modified}, got {verdict.get('Modified')!r}"
        return None

    return check


def engine_scenarios(engine_url: str = "http://127.0.0.1") -> list[Scenario]:
    """allow / block / redact against the engine's contract route (the path is what users send; the host is
    the user's own when it runs from a locustfile)."""
    target = engine_target(engine_url)
    return [
        Scenario("allow", target, ALLOW_PROMPT, 200, expect_verdict(allowed=True), weight=6),
        Scenario("block", target, BLOCK_PROMPT, 200, expect_verdict(allowed=False), weight=2),
        Scenario("redact", target, REDACT_PROMPT, 200, expect_verdict(allowed=True, modified=True), weight=2),
    ]
