"""``make demo`` runs end to end: every host starts, the documented outcomes show, everything stops.

The demo runs as users run it (``python -m harness.demo`` in a child process); the assertions read its
summary lines (printed unwrapped) and its tables (a wide COLUMNS keeps cells on one line).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness.process import port_open, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_demo(*args: str, env: dict[str, str] | None = None, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    child_env = {**os.environ, "COLUMNS": "250", **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.demo", *args], cwd=REPO_ROOT, env=child_env,
                          capture_output=True, text=True, timeout=timeout)


def summary_line(output: str, label: str) -> str:
    [line] = [line for line in output.splitlines() if label in line and "as documented" in line]
    return line


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_the_demo_shows_every_connector_doing_what_its_docs_promise() -> None:
    result = run_demo()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]

    litellm = summary_line(output, "Leg 2 · LiteLLM")
    assert "5/5 as documented" in litellm
    assert "injection 403 (LLM not called)" in litellm
    assert "PII 200, masked before the LLM" in litellm
    assert re.search(r"engine hang 503 after \d\.\d s \(LLM not called\)", litellm)
    assert "blocked request ingested (statusCode 403, x-blocked-by: Akto Proxy)" in litellm

    egress = summary_line(output, "Leg 3 · egress")
    assert "4/4 as documented" in egress
    assert "block 403 + X-Akto-Guardrails-Decision: blocked (LLM not called)" in egress
    assert "modify: PII masked, model kept" in egress
    assert "engine down under fail_open passes (200)" in egress

    truefoundry = summary_line(output, "Leg 4 · TrueFoundry")
    assert "4/4 as documented" in truefoundry
    assert "blocked under Enforce: 400 guardrail_checks_failed" in truefoundry
    assert "the same prompt under Enforce But Ignore On Error passes (200, LLM called)" in truefoundry

    # The tables carry what the client saw, not only the verdicts.
    assert "HTTP 403 · error: Prompt injection detected" in output
    assert "HTTP 503 · error: Akto guardrail service unreachable" in output
    assert "akto/input-sync-ebioe=400:error:let_through" in output
    assert "✗" not in output
    journal = re.search(r"The engine's journal: (\d+) calls", output)
    assert journal is not None and int(journal.group(1)) > 20, output[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_host_that_fails_to_start_is_reported_with_its_log_and_fails_the_demo(tmp_path: Path) -> None:
    broken = tmp_path / "mitmdump"
    broken.write_text("#!/bin/sh\necho 'mitmdump: simulated start-up failure' >&2\nexit 3\n")
    broken.chmod(0o755)
    result = run_demo("--leg", "egress", env={"AKTO_HARNESS_MITMDUMP": str(broken)}, timeout=50)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Leg 3 · egress: a host failed to start" in output
    assert "mitmdump exited with 3 before ready" in output
    assert "mitmdump: simulated start-up failure" in output, "the host's log tail is shown"


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_keep_running_leaves_the_hosts_up_until_stopped_then_stops_them_all(stop_signal: signal.Signals) -> None:
    child = subprocess.Popen([sys.executable, "-m", "harness.demo", "--leg", "truefoundry", "--keep-running"],
                             cwd=REPO_ROOT, env={**os.environ, "COLUMNS": "250", "PYTHONUNBUFFERED": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=forward_lines, args=(child, lines), daemon=True).start()
    seen: list[str] = []
    try:
        read_until("Everything stays up until Ctrl-C", lines, seen, timeout=60)
        read_until("its fake LLM at", lines, seen, timeout=10)  # the last line of the TrueFoundry leg's URLs
        urls = urls_in(seen)
        assert len(set(urls.values())) >= 4, f"engine, gateway, endpoint, fake LLM: {urls}"
        assert all(port_open(port)() for port in urls.values()), f"every printed host is up: {urls}"
        gateway = next(url for url in urls if "/api/llm/chat/completions" in url)
        assert httpx.post(gateway, json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                          timeout=10, trust_env=False).status_code == 200, "the gateway still serves traffic"
        child.send_signal(stop_signal)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:  # a failed assertion: still let the demo stop its hosts
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
    wait_until(lambda: not any(port_open(port)() for port in urls.values()), timeout=15,
               what=f"every host stopped after {stop_signal.name}")


def forward_lines(child: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    """Reader thread: every output line into ``lines``, then None at the end of the output."""
    for line in child.stdout or ():
        lines.put(line)
    lines.put(None)


def read_until(text: str, lines: queue.Queue[str | None], seen: list[str], *, timeout: float) -> None:
    """Collect output lines into ``seen`` until one contains ``text`` (deadline; the demo must not exit first)."""
    deadline = time.monotonic() + timeout
    while not seen or text not in seen[-1]:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        assert line is not None, f"the demo exited before printing {text!r}:\n" + "".join(seen)
        seen.append(line)


def urls_in(lines: list[str]) -> dict[str, int]:
    """Every loopback URL the demo printed, with its port."""
    found = re.findall(r"http://127\.0\.0\.1:(\d+)(\S*)", "".join(lines))
    return {f"http://127.0.0.1:{port}{path.rstrip(',;).')}": int(port) for port, path in found}
