"""The running stack ``make up`` and ``make demo`` share: the fake engine, and each connector in its real
host with its own fake LLM, on loopback ports that are either fixed and documented (``akto-harness up``)
or free ones (``make demo``, tests).

The connector hosts are the demo's legs (harness/demo/legs.py: each starts its connector through the
registry or the host wrappers); this module only says where they listen and runs their start-ups at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from harness.engine import EngineProcess

if TYPE_CHECKING:
    from harness.demo.legs import Leg

#: The key clients of the stack present (LiteLLM's master key): stable, so printed examples keep working.
DEMO_KEY = "sk-akto-demo"
#: Environment variables that override a default port: AKTO_HARNESS_<FIELD>_PORT (e.g. AKTO_HARNESS_ENGINE_PORT).
PORT_ENV = "AKTO_HARNESS_{}_PORT"


@dataclass(frozen=True)
class StackPorts:
    """Where each process of the stack listens on 127.0.0.1 (0: a free port)."""

    engine: int = 0
    litellm: int = 0            # the LiteLLM proxy clients call
    litellm_llm: int = 0        # its fake LLM (OpenAI and Anthropic shapes)
    egress: int = 0             # mitmdump, the clients' HTTPS_PROXY
    egress_llm: int = 0         # its fake LLM (TLS, a certificate for the provider host names)
    truefoundry: int = 0        # the TrueFoundry gateway simulator clients call
    truefoundry_endpoint: int = 0  # Akto's TrueFoundry guardrail endpoint the gateway calls
    truefoundry_llm: int = 0    # its fake LLM

    def with_env(self, environ: os._Environ[str] | dict[str, str] | None = None) -> "StackPorts":
        """These ports with any AKTO_HARNESS_<FIELD>_PORT variable applied (ValueError naming a bad one)."""
        environ = os.environ if environ is None else environ
        changes = {}
        for item in dataclasses.fields(self):
            name = PORT_ENV.format(item.name.upper())
            if environ.get(name):
                changes[item.name] = port_number(environ[name], name)
        return dataclasses.replace(self, **changes)


#: ``akto-harness up``'s documented ports (README, "make up"): LiteLLM's and mitmproxy's own defaults for
#: their hosts, the engine on the port the README's examples use, the rest next to it.
DEFAULT_PORTS = StackPorts(engine=8090, litellm=4000, litellm_llm=8101, egress=8080, egress_llm=8102,
                           truefoundry=8092, truefoundry_endpoint=8091, truefoundry_llm=8103)
FREE_PORTS = StackPorts()


def port_number(text: str, what: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{what}: {port} is not a port number (0-65535; 0 picks a free one)")
    return port


def stop_on_ctrl_c_or_sigterm() -> None:
    """Ctrl-C and ``kill <pid>`` both raise KeyboardInterrupt, so the hosts are stopped on the way out; Ctrl-C
    works even where the process was started with SIGINT ignored (a shell without job control ignores it in
    ``cmd &``, and everything started from there inherits that)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


@contextlib.contextmanager
def running_engine(port: int = 0) -> Iterator[str]:
    """The fake engine as a child process on ``port`` (0: a free one), stopped on exit; yields its URL."""
    with EngineProcess(port=port) as engine:
        assert engine.url is not None
        yield engine.url


def start_in_background(legs: "list[Leg]", engine_url: str, ports: StackPorts,
                        stack: contextlib.ExitStack) -> list[Future[Any]]:
    """Start every leg's hosts at once. Each leg registers its processes on its own ExitStack as soon as
    they run; ``stack`` first waits for unfinished start-ups (each bounded by its own deadline), then stops
    them all, so an interrupt half way through start-up still stops everything."""
    leg_stacks = [stack.enter_context(contextlib.ExitStack()) for _ in legs]
    pool = ThreadPoolExecutor(max_workers=max(len(legs), 1), thread_name_prefix="stack-start")
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    return [pool.submit(leg.start, engine_url, leg_stack, ports) for leg, leg_stack in zip(legs, leg_stacks)]
