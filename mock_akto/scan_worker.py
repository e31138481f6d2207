"""Big bodies are parsed and judged in worker processes, so the engine's event loop never waits for them.

Why a process and not a thread (issue 11, measured with ``make soak``): a worker thread shares the GIL with
the event loop. orjson parsing 10 MB holds it for ~20 ms in one C call, lower-casing and searching the text
for tens of ms more, and every ``/health`` probe needs the GIL several times, each time waiting up to the
interpreter's 5 ms switch interval while the scan thread runs: probes took p50 15-40 ms and up to 100-300 ms
while a 10 MB payload was judged.

Why our own pipe protocol and not ``ProcessPoolExecutor``: the executor needs the body as one ``bytes``
and pickles it, two 10 MB copies into fresh memory in the engine process (10-17 ms each on this VM, page
faults included), both holding the GIL. Here the event loop writes the body's chunks (as received, ~64 KiB
each) straight into the worker's stdin, and the worker assembles it in its own memory.

The worker runs the very same route code (:meth:`ContractRoutes.decide`) on a snapshot of what it reads:
the namespace's name, policies and Akto profile, the contract token and the registered API keys (for masking
journaled headers). Fault rules, scripted verdicts, the journal and the memos stay in the engine process.

Wire, both ways over the worker's stdin / stdout: an 8-byte big-endian length, then that many bytes. To the
worker: the pickled :class:`ScanJob` and the body's length, then the body; back: the pickled decision (or
the error, by name) and the length of the answer's body when it follows raw. An allowed payload's verdict
echoes it (``ModifiedPayload``), so a 10 MB call gets a 10 MB answer: unpickled (answer bytes plus the JSON
object) it held the engine's GIL for tens of ms (/health p99 53 ms while three such calls ran). So an answer
body over :data:`RAW_ANSWER_BYTES` comes back as raw bytes after the pickled decision (whose answer is then
empty); the engine reads it from the pipe in chunks and sends them to the client as they are, never joining
or parsing it (:attr:`mock_akto.exchange.Answer.chunks`). The journal entry and ingest record in the
decision are cut to the payload cap here already.

A worker found dead is replaced and the job sent again, once. A worker that does not answer within
:data:`WORKER_DEADLINE_S` is killed and the call is judged on a thread of the engine process instead
(slower for everyone, still answered), as is a job a fresh worker also failed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import struct
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, Callable, Sequence

from .journal import BoundedLog, IngestRecord, JournalEntry
from .namespaces import Namespace, NamespaceRegistry
from .policies import SCAN_DEADLINE_S, PolicySet
from .profiles import AktoProfile

if TYPE_CHECKING:
    from .contract import ContractRoutes, Decision

log = logging.getLogger("mock_akto.scan_worker")

#: Worker processes at most (each holds the engine's modules, ~50 MB; two let a second big call be judged
#: while the first is).
SCAN_PROCESSES = 2
#: A worker that has not answered by then is killed (the scan bounds itself to SCAN_DEADLINE_S; this only
#: catches a worker that is stuck or starved).
WORKER_DEADLINE_S = SCAN_DEADLINE_S * 6
#: Answer bodies above this come back from the worker as raw bytes, kept in the engine as the chunks read
#: from the pipe (smaller ones are pickled whole: their JSON is kept for schema faults, and a reply to a
#: body up to 1 MiB is memoised).
RAW_ANSWER_BYTES = 1024 * 1024
#: Most bytes read from a worker's pipe at once (one chunk of a raw answer body).
READ_CHUNK_BYTES = 256 * 1024
_LENGTH = struct.Struct("!Q")


@dataclass(frozen=True)
class ScanJob:
    """What a route reads besides the body: the call and a snapshot of the engine state (pickled)."""

    path: str
    method: str
    query_string: bytes
    namespace: str
    policies: PolicySet
    profile: AktoProfile
    token: str | None
    payload_cap: int
    api_keys: dict[str, str]
    body_size: int


class ScanFailed(Exception):
    """The worker could not judge the job (it raised; the message names the error)."""


class _Worker:
    """One worker process and its pipes; one job at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self.stdin: asyncio.StreamWriter = process.stdin
        self.stdout: asyncio.StreamReader = process.stdout

    async def decide(self, job: ScanJob, body: Sequence[bytes]) -> "Decision":
        head = pickle.dumps(job, pickle.HIGHEST_PROTOCOL)
        self.stdin.write(_LENGTH.pack(len(head)) + head)
        for chunk in body:
            self.stdin.write(chunk)
            await self.stdin.drain()  # the worker reads as we write: the pipe, not our memory, holds the body
        size, = _LENGTH.unpack(await self.stdout.readexactly(_LENGTH.size))
        kind, value, raw_size = pickle.loads(await self.stdout.readexactly(size))
        if kind == "error":
            raise ScanFailed(value)
        if raw_size:
            answer, draft, ingest, keep = value
            value = (replace(answer, chunks=await self._read_chunks(raw_size)), draft, ingest, keep)
        return value

    async def _read_chunks(self, size: int) -> list[bytes]:
        """``size`` bytes from the worker's stdout, as the chunks the pipe gave (never joined)."""
        chunks = []
        while size:
            chunk = await self.stdout.read(min(size, READ_CHUNK_BYTES))
            if not chunk:
                raise EOFError(f"the scan worker closed its pipe with {size} bytes of the answer unsent")
            chunks.append(chunk)
            size -= len(chunk)
        return chunks

    def kill(self) -> None:
        if self.process.returncode is None:
            try:
                self.process.kill()
            except ProcessLookupError:  # it died already (killed from outside), not yet reaped
                pass


class ScanWorkers:
    """Worker processes judging big bodies, started on demand (or by :meth:`warm`), reused across calls."""

    def __init__(self, processes: int = SCAN_PROCESSES) -> None:
        self.processes = processes
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._slots: asyncio.Semaphore | None = None
        self._warming: asyncio.Task[None] | None = None

    async def decide(self, job: ScanJob, body: Sequence[bytes], fallback: Callable[[], "Decision"]) -> "Decision":
        """The route's decision on ``body`` from a worker process; ``fallback`` (run on a thread) should the
        worker die, hang or fail."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.processes)
        async with self._slots:
            if self._warming is not None:
                await asyncio.shield(self._warming)
            for attempt in (1, 2):
                worker = await self._worker()
                try:
                    async with asyncio.timeout(WORKER_DEADLINE_S):
                        decision = await worker.decide(job, body)
                # A dead worker's pipe: OSError (asyncio), RuntimeError "the handler is closed" (uvloop),
                # EOFError. An idle worker killed from outside is only noticed here: one more, fresh, try.
                except (OSError, RuntimeError, EOFError) as failure:
                    self._discard(worker)
                    if attempt == 1:
                        log.warning("a scan worker was gone (%s: %s); starting another", type(failure).__name__,
                                    failure)
                        continue
                    return await self._judge_on_a_thread(failure, fallback)
                # A stuck worker, or a job that made it raise: another worker would do the same.
                except (TimeoutError, ScanFailed) as failure:
                    self._discard(worker)
                    return await self._judge_on_a_thread(failure, fallback)
                except BaseException:  # cancelled mid-job: the worker's pipes are out of step
                    self._discard(worker)
                    raise
                self._idle.append(worker)
                return decision
            raise AssertionError("unreachable: the second attempt returns")

    @staticmethod
    async def _judge_on_a_thread(failure: BaseException, fallback: Callable[[], "Decision"]) -> "Decision":
        log.warning("a scan worker failed (%s: %s); judging this call on a thread", type(failure).__name__, failure)
        return await asyncio.get_running_loop().run_in_executor(None, fallback)

    def warm(self) -> None:
        """Start one worker now, in the background (in a ``serve`` process: a first big call must not wait a
        second or more for a process to start and import the engine's modules)."""
        async def start_one() -> None:
            try:
                self._idle.append(await self._start())
            except OSError as error:
                log.warning("could not start a scan worker: %s", error)
            finally:
                self._warming = None

        self._warming = asyncio.get_running_loop().create_task(start_one())

    def close(self) -> None:
        for worker in list(self._all):
            self._discard(worker)

    async def _worker(self) -> _Worker:
        """An idle worker still alive, else a new one."""
        while self._idle:
            worker = self._idle.pop()
            if worker.process.returncode is None:
                return worker
            self._discard(worker)
        return await self._start()

    async def _start(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mock_akto.scan_worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        worker = _Worker(process)
        self._all.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)


# --------------------------------------------------------------------------------------------- in the worker

_routes: dict[tuple[str | None, int], "ContractRoutes"] = {}


def decide_in_worker(job: ScanJob, body: bytes) -> "Decision":
    """The route's decision on ``body``, against the job's snapshot (runs in a worker process)."""
    from .contract import ContractRoutes

    routes = _routes.get((job.token, job.payload_cap))
    if routes is None:
        routes = _routes[(job.token, job.payload_cap)] = ContractRoutes(
            NamespaceRegistry(max_namespaces=1), token=job.token, payload_cap=job.payload_cap)
    routes.registry.adopt_api_keys(job.api_keys)
    ns = Namespace(job.namespace, job.policies, BoundedLog[JournalEntry](1), BoundedLog[IngestRecord](1), job.profile)
    return routes.decide(ns, job.path, job.method, job.query_string, body)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Judge jobs from ``requests`` until it closes (the engine process stopped or dropped this worker)."""
    while (head := _read_exactly(requests, _LENGTH.size)) is not None:
        packed = _read_exactly(requests, _LENGTH.unpack(head)[0])
        if packed is None:
            return
        job: ScanJob = pickle.loads(packed)
        body = _read_exactly(requests, job.body_size)
        if body is None:
            return
        raw = b""
        try:
            answer, draft, ingest, keep = decide_in_worker(job, body)
            if len(answer.body) > RAW_ANSWER_BYTES:  # sent raw after the decision, not pickled inside it
                raw, answer = answer.body, replace(answer, body=b"", json=None)
            result: tuple[str, object, int] = ("decision", (answer, draft, ingest, keep), len(raw))
        except Exception as error:  # noqa: BLE001 - reported to the engine, which judges the call itself
            result = ("error", f"{type(error).__name__}: {error}", 0)
        data = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
        answers.write(_LENGTH.pack(len(data)) + data)
        if raw:
            answers.write(raw)
        answers.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the engine stops us
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers: stdout now goes to the engine's log
    from . import contract  # noqa: F401 - imported before the first job, not during it

    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
