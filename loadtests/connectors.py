"""Connectors the timeout suite can put between the load and the engine, each started in its real host.

A :class:`ConnectorSpec` knows how to start one instance pointed at an engine URL with a fail mode and an
engine timeout, what its client-facing request looks like (a :class:`Target`), and which status means
"blocked by a verdict", "engine unreachable, failed closed" and "passed". Add a connector by adding a spec.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable

from harness.tfy_endpoint import TrueFoundryEndpoint
from loadtests.targets import Target, truefoundry_target

#: (akto base URL, fail mode, engine timeout in s, exit stack owning the process) -> the client-facing target
Launch = Callable[[str, str, float, ExitStack], Target]


@dataclass(frozen=True)
class ConnectorSpec:
    name: str
    launch: Launch
    blocked_status: int
    unreachable_status: int
    passed_status: int = 200


def _launch_truefoundry(akto_url: str, fail_mode: str, timeout_s: float, stack: ExitStack) -> Target:
    endpoint = stack.enter_context(TrueFoundryEndpoint(akto_url, fail_mode=fail_mode, timeout=timeout_s,
                                                       jwt_secret=None))
    return truefoundry_target(endpoint.base_url)


#: Akto's TrueFoundry endpoint: a block is 400 ``actionErrors``, an unreachable engine under fail_closed 503.
CONNECTORS: dict[str, ConnectorSpec] = {
    "truefoundry": ConnectorSpec("truefoundry", _launch_truefoundry, blocked_status=400, unreachable_status=503),
}
