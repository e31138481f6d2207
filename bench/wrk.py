"""Drive ``wrk`` (closed-loop HTTP load, C, one core) and read its exact latency percentiles.

wrk is the load generator for throughput because a Python client would saturate its own core before a
uvicorn server saturates the other. A Lua ``done`` hook prints the percentiles from wrk's own latency
record (microseconds) as one JSON line, so nothing is read from wrk's rounded human-readable summary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from harness.timing import Summary

INSTALL_HINT = "wrk is not installed: on Debian/Ubuntu run `apt-get update && apt-get install -y wrk`"

_MARK = "WRK_JSON "

# wrk's Lua API: `wrk.method/body/headers` shape every request; `done` gets the latency record in µs.
_LUA_TEMPLATE = """\
wrk.method = {method}
wrk.body = {body}
{headers}
{request}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
    .. '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"min":%d,"max":%d,"mean":%f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.min, latency.max, latency.mean))
end
"""


# With ``distinct_slot``: every request's body is the template with a counter in the slot (one connection
# thread, so the counter is unique), which defeats any server-side memo of repeated payloads.
_LUA_DISTINCT = """\
local counter = 0
local head, tail = {head}, {tail}
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. counter .. tail)
end
"""


def _lua_string(value: str) -> str:
    """A Lua long-bracket string literal that cannot be closed by the content."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    return f"[{eq}[{value}]{eq}]"


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, exact latency percentiles (ms) and error counts."""

    requests: int
    duration_s: float
    errors: int
    non_2xx: int
    summary: Summary

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s


def require_wrk() -> str:
    """The wrk binary path, or exit with the install command (a benchmark without its tool is a setup error)."""
    path = shutil.which("wrk")
    if path is None:
        sys.exit(INSTALL_HINT)
    return path


def run_wrk(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    connections: int = 50,
    duration_s: int = 10,
    threads: int = 1,
    cpu: int | None = None,
    method: str = "POST",
    distinct_slot: str | None = None,
) -> WrkResult:
    """Run wrk against ``url`` for ``duration_s``; pinned to ``cpu`` with taskset when given and available.

    ``distinct_slot``: a substring of ``body`` replaced by a per-request counter (distinct payloads).
    """
    wrk = require_wrk()
    header_lines = "\n".join(f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items())
    text = body.decode("utf-8")
    request = ""
    if distinct_slot is not None:
        if distinct_slot not in text:
            raise ValueError(f"distinct_slot {distinct_slot!r} is not in the body")
        head, _, tail = text.partition(distinct_slot)
        request = _LUA_DISTINCT.format(head=_lua_string(head), tail=_lua_string(tail))
    script = _LUA_TEMPLATE.format(
        method=_lua_string(method), body=_lua_string(text), headers=header_lines, request=request, mark=_MARK
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
        script_path = Path(fh.name)
    if distinct_slot is not None and threads != 1:
        raise ValueError("distinct payloads need one wrk thread (one counter)")
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s", "-s", str(script_path), url]
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30, check=False)
    finally:
        script_path.unlink(missing_ok=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(line[len(_MARK):])
    duration = data["duration_us"] / 1e6
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    ms = {k: data[k] / 1000.0 for k in ("p50", "p90", "p99", "p999", "min", "max", "mean")}
    summary = Summary(
        count=data["requests"],
        percentiles_ms={50.0: ms["p50"], 90.0: ms["p90"], 99.0: ms["p99"], 99.9: ms["p999"]},
        min_ms=ms["min"], max_ms=ms["max"], mean_ms=ms["mean"], errors=errors + data["status"],
        wall_s=duration, exact=True,
    )
    return WrkResult(requests=data["requests"], duration_s=duration, errors=errors, non_2xx=data["status"], summary=summary)
