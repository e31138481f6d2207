"""Big bodies are parsed and judged in a worker process, so the engine's event loop never waits for them.

Why a process and not a thread (issue 11, measured with ``make soak``): a worker thread shares the GIL with
the event loop. orjson parsing 10 MB holds it for ~20 ms in one C call, lower-casing and searching the text
for tens of ms more, and every ``/health`` probe needs the GIL several times, each time waiting up to the
interpreter's 5 ms switch interval while the scan thread runs. With the scan on a thread, probes took
p50 20-40 ms and up to 80-110 ms while a 10 MB payload was judged. A worker process has its own GIL: the
loop only copies the body into a pipe and reads the (small) answer back.

The worker runs the very same route code (:meth:`ContractRoutes.decide`) on a snapshot of what it reads:
the namespace's name, policies and Akto profile, the contract token and the registered API keys (for masking
journaled headers). Fault rules, scripted verdicts, the journal and the memos stay in the engine process.
Processes are started with ``spawn`` (forking a process running uvloop and threads is unsafe): one as the
``serve`` process becomes ready (:meth:`ScanWorkers.warm`), the second on demand; an engine embedded in a
test process starts them on its first big body.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .journal import BoundedLog, IngestRecord, JournalEntry
from .namespaces import Namespace, NamespaceRegistry
from .policies import PolicySet
from .profiles import AktoProfile

if TYPE_CHECKING:
    from .contract import ContractRoutes, Decision

log = logging.getLogger("mock_akto.scan_worker")

#: Worker processes at most (each holds the engine's modules, ~50 MB; two let a second big call start
#: while the first is judged).
SCAN_PROCESSES = 2


@dataclass(frozen=True)
class ScanJob:
    """One call's body and the snapshot of engine state its route reads (pickled to the worker)."""

    path: str
    method: str
    query_string: bytes
    body: bytes
    namespace: str
    policies: PolicySet
    profile: AktoProfile
    token: str | None
    payload_cap: int
    api_keys: dict[str, str]


class ScanWorkers:
    """A lazily started pool of worker processes judging :class:`ScanJob`s."""

    def __init__(self, processes: int = SCAN_PROCESSES) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def decide(self, job: ScanJob, fallback: Callable[[], "Decision"]) -> "Decision":
        """The route's decision on ``job``, from a worker process. Should the pool break (a worker killed),
        ``fallback`` computes it on a thread of this process instead: slower for everyone, still answered."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), decide_in_worker, job)
        except BrokenProcessPool:
            log.warning("a scan worker process died; judging this call on a thread and starting new workers")
            self._pool = None
            return await loop.run_in_executor(None, fallback)

    def warm(self) -> None:
        """Start one worker now (it imports the routes in the background): in a ``serve`` process, so the
        first big call does not wait a second or more for a process to start."""
        self._executor().submit(_imported)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_ignore_interrupts)
        return self._pool


# --------------------------------------------------------------------------------------------- in the worker

_routes: dict[tuple[str | None, int], "ContractRoutes"] = {}


def _ignore_interrupts() -> None:
    """Ctrl-C reaches the whole process group: the engine process shuts its workers down itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _imported() -> None:
    from . import contract  # noqa: F401 - what a first job would import


def decide_in_worker(job: ScanJob) -> "Decision":
    """Runs in a worker process: the route's decision on the job's body, against the job's snapshot."""
    from .contract import ContractRoutes  # the worker imports the routes once, on its first job

    routes = _routes.get((job.token, job.payload_cap))
    if routes is None:
        routes = _routes[(job.token, job.payload_cap)] = ContractRoutes(
            NamespaceRegistry(max_namespaces=1), token=job.token, payload_cap=job.payload_cap)
    routes.registry.adopt_api_keys(job.api_keys)
    ns = Namespace(job.namespace, job.policies, BoundedLog[JournalEntry](1), BoundedLog[IngestRecord](1), job.profile)
    return routes.decide(ns, job.path, job.method, job.query_string, job.body)
