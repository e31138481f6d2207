"""A ``/health`` prober in its own process, for latency figures taken while something else loads the engine.

Its own process because a prober thread shares the GIL with whatever else its process does: in the soak
that process builds a 10 MB payload and sends it, and the probe then measured the client as much as the
engine. The child imports only httpx (this module), so it starts in a fraction of a second.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from types import TracebackType

import httpx

#: One probe, then this long idle, then the next (a closed loop, one connection kept alive).
PROBE_INTERVAL_S = 0.005
#: What a probe may take before it counts as failed; also how long stopping waits for the child.
PROBE_DEADLINE_S = 10.0

#: One probe: when it started (``time.monotonic()``, the same clock in every process on Linux) and how
#: long it took in seconds (``PROBE_DEADLINE_S`` when it failed).
Sample = tuple[float, float]


def _probe(url: str, started: Event, stop: Event, results: Connection) -> None:
    samples: list[Sample] = []
    with httpx.Client(base_url=url, timeout=PROBE_DEADLINE_S, trust_env=False) as client:
        while not stop.is_set():
            began = time.monotonic()
            clock = time.perf_counter()
            try:
                ok = client.get("/health").status_code == 200
            except httpx.HTTPError:
                ok = False
            samples.append((began, time.perf_counter() - clock if ok else PROBE_DEADLINE_S))
            started.set()
            stop.wait(PROBE_INTERVAL_S)
    results.send(samples)


class Prober:
    """Probe ``url``'s ``/health`` from a child process between ``__enter__`` and ``__exit__``; then
    :attr:`samples` holds every probe. Entering returns once the first probe was answered."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._started, self._stop = context.Event(), context.Event()
        self._results, child_end = context.Pipe(duplex=False)
        self._process = context.Process(target=_probe, args=(url, self._started, self._stop, child_end),
                                        name="health-prober", daemon=True)
        self.samples: list[Sample] = []

    def __enter__(self) -> "Prober":
        self._process.start()
        if not self._started.wait(PROBE_DEADLINE_S * 3):
            self._process.kill()
            raise RuntimeError("the /health prober did not get a first answer")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._results.poll(PROBE_DEADLINE_S * 2):
            self.samples = self._results.recv()
        self._process.join(PROBE_DEADLINE_S)
        if self._process.is_alive():
            self._process.kill()

    def between(self, start: float, end: float) -> list[float]:
        """Latencies (seconds) of the probes started in ``[start, end)`` (``time.monotonic()`` values)."""
        return [took for began, took in self.samples if start <= began < end]
