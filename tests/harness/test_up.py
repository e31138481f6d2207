"""``akto-harness up`` as a person runs it: everything starts on the ports asked for, the printed examples
work when pasted into a shell, and one SIGINT (Ctrl-C) stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.connectors import registry
from harness.process import free_port, wait_until
from harness.stack import StackPorts
from harness.up import READY_LINE

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_DEADLINE_S = 180  # LiteLLM's proxy alone takes ~6 s idle, much more on a loaded 2-core machine
STOP_DEADLINE_S = 30


def example_blocks(output: str) -> list[tuple[str, int | None, str]]:
    """(title, expected HTTP status or None for an SDK script, command) for every printed example."""
    blocks = re.findall(r"^# (.+?)(?: -> HTTP (\d{3}))?\n\$ (.+)$", output, flags=re.MULTILINE)
    return [(title, int(status) if status else None, command) for title, status, command in blocks]


@pytest.mark.slow
@pytest.mark.xdist_group("stack-up")
@pytest.mark.timeout(READY_DEADLINE_S + 200)
def test_up_serves_every_connector_on_the_ports_asked_for_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    if (why := registry.get("egress").available()) is not None:
        pytest.skip(why)
    ports = {name: free_port() for name in StackPorts.__dataclass_fields__}
    flags = [arg for name, port in ports.items() if name != "engine"
             for arg in (f"--{name.replace('_', '-')}-port", str(port))]
    env = {**os.environ, "AKTO_HARNESS_ENGINE_PORT": str(ports["engine"])}  # the environment works as well as a flag
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        up = subprocess.Popen([sys.executable, "-m", "harness.cli", "up", *flags], cwd=REPO_ROOT, env=env,
                              stdout=out, stderr=subprocess.STDOUT, text=True)
    process = psutil.Process(up.pid)
    try:
        wait_until(lambda: READY_LINE in log.read_text() or up.poll() is not None, timeout=READY_DEADLINE_S,
                   interval=0.5, what="akto-harness up's ready line")
        output = log.read_text()
        assert up.poll() is None, output
        for name, port in ports.items():
            if name in ("engine", "litellm", "egress", "truefoundry"):
                assert f"127.0.0.1:{port}" in output, (name, output)

        examples = example_blocks(output)
        for host in ("LiteLLM proxy", "egress proxy", "TrueFoundry gateway simulator"):
            assert sum(title.startswith(host) for title, _, _ in examples) >= 3, (host, output)
        assert sum(1 for _, status, _ in examples if status is None) >= 5  # the OpenAI / Anthropic SDK scripts
        for title, status, command in examples:
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60,
                                  env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
            assert done.returncode == 0, (title, command, done.stdout, done.stderr)
            if status is not None:
                assert done.stdout.rstrip().endswith(f"HTTP {status}"), (title, done.stdout)
            else:
                assert "Hello from fake-" in done.stdout, (title, done.stdout, done.stderr)

        children = process.children(recursive=True)
        assert len(children) >= 8  # engine, 3 fake LLMs, litellm, mitmdump, gateway, endpoint
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=STOP_DEADLINE_S) == 0, log.read_text()[-3000:]

        def alive() -> list[psutil.Process]:
            running = []
            for child in children:
                try:
                    if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                        running.append(child)
                except psutil.NoSuchProcess:
                    pass
            return running

        wait_until(lambda: not alive(), timeout=STOP_DEADLINE_S, interval=0.2, what="every child process gone")
        assert "stopped, every process it started has exited" in log.read_text()
    finally:
        if up.poll() is None:
            for child in process.children(recursive=True):
                child.kill()
            up.kill()
            up.wait(timeout=10)
