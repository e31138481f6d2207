"""Drive ``docker-compose.test.yaml`` from a test: build, up, wait for health, find ports, down; all bounded.

Each stack gets its own compose project name (parallel workers and a stack started by hand never collide)
and publishes every port on an ephemeral 127.0.0.1 port (``*_PORT=0``), read back with ``docker-compose port``.
Secrets are fresh random values per stack, set in the environment so a developer's ``.env`` cannot change
what the test expects.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Mapping

import yaml

from harness.process import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.test.yaml"
#: What docker/build-base-image.sh builds when no registry is reachable.
LOCAL_BASE_IMAGE = "akto-harness-base:bookworm"
#: service -> (container port, the variable that moves its host port)
SERVICES: dict[str, tuple[int, str]] = {
    "mock-akto": (8090, "MOCK_AKTO_PORT"),
    "fake-llm": (8000, "FAKE_LLM_PORT"),
    "litellm": (4000, "LITELLM_PORT"),
    "egress": (8080, "EGRESS_PORT"),
    "truefoundry": (8091, "TRUEFOUNDRY_PORT"),
    "tfy-gateway": (8092, "TFY_GATEWAY_PORT"),
}


class ComposeError(RuntimeError):
    """A docker-compose command failed or timed out; the message carries the end of its output."""


def docker_unavailable_reason() -> str | None:
    """Why the stack cannot run here (no compose binary, no daemon), or None when it can."""
    if shutil.which("docker-compose") is None:
        return "docker-compose is not installed (Debian: apt-get install docker-compose)"
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s (is dockerd running?)"
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines()
        return f"`docker info` failed (is dockerd running?): {lines[-1] if lines else 'no output'}"
    return None


def image_exists(name: str) -> bool:
    result = subprocess.run(["docker", "image", "inspect", name], capture_output=True, timeout=20)
    return result.returncode == 0


def base_image() -> str:
    """``$AKTO_BASE_IMAGE``; else the local base image when it was built; else the Dockerfile's default."""
    configured = os.environ.get("AKTO_BASE_IMAGE")
    if configured:
        return configured
    return LOCAL_BASE_IMAGE if image_exists(LOCAL_BASE_IMAGE) else "python:3.11-slim"


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class ComposeStack:
    """One compose project of ``docker-compose.test.yaml``. ``secrets`` are what the test needs to know."""

    def __init__(self, project: str, *, base: str) -> None:
        self.project = project
        self.master_key = "sk-" + secrets.token_urlsafe(32)
        self.akto_api_key = "akto-test-" + secrets.token_urlsafe(24)
        self.tfy_jwt_secret = secrets.token_urlsafe(48)
        self.env = {
            **os.environ,
            "AKTO_BASE_IMAGE": base,
            "LITELLM_MASTER_KEY": self.master_key,
            "AKTO_API_KEY": self.akto_api_key,
            "AKTO_TFY_JWT_SECRET": self.tfy_jwt_secret,
            **{variable: "0" for _, variable in SERVICES.values()},
        }
        self._ports: dict[str, int] = {}

    @classmethod
    def for_test(cls) -> "ComposeStack":
        return cls(f"akto-test-{os.getpid()}-{secrets.token_hex(3)}", base=base_image())

    def compose(self, *args: str, timeout: float) -> str:
        """Run ``docker-compose -p PROJECT -f docker-compose.test.yaml ARGS``; its output, or ComposeError."""
        argv = ["docker-compose", "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        try:
            result = subprocess.run(argv, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
            raise ComposeError(f"`docker-compose {' '.join(args)}` did not finish within {timeout:g}s:\n{_tail(output)}") from None
        if result.returncode != 0:
            raise ComposeError(f"`docker-compose {' '.join(args)}` exited {result.returncode}:\n"
                               f"{_tail(result.stdout, 20)}\n{_tail(result.stderr)}")
        return result.stdout

    def image_builders(self) -> list[str]:
        """One service per distinct image: compose 1.29 would rebuild a shared image once per service."""
        services = yaml.safe_load(self.compose("config", timeout=60))["services"]
        first_by_image: dict[str, str] = {}
        for name, spec in services.items():
            if "build" in spec:
                first_by_image.setdefault(spec.get("image", name), name)
        return sorted(first_by_image.values())

    def build(self, timeout: float) -> float:
        """Build both images (the layer cache makes a warm build a few seconds); the elapsed seconds."""
        started = time.monotonic()
        self.compose("build", *self.image_builders(), timeout=timeout)
        return time.monotonic() - started

    def up(self, timeout: float) -> None:
        """Start every service in the background (compose itself waits for the depends_on health)."""
        self.compose("up", "-d", "--no-build", timeout=timeout)

    def container_states(self) -> dict[str, str]:
        """service -> ``running/healthy``, ``running/starting``, ``exited/``, ... for this project's containers."""
        ids = self.compose("ps", "-q", timeout=30).split()
        if not ids:
            return {}
        template = ('{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}}/'
                    "{{if .State.Health}}{{.State.Health.Status}}{{end}}")
        result = subprocess.run(["docker", "inspect", "--format", template, *ids],
                                capture_output=True, text=True, timeout=30)
        return dict(line.split(" ", 1) for line in result.stdout.split("\n") if " " in line)

    def wait_healthy(self, timeout: float) -> None:
        """Every service healthy before ``timeout``; fails at once (with logs) when one exits or turns unhealthy."""

        def all_healthy() -> bool:
            states = self.container_states()
            broken = {name: state for name, state in states.items()
                      if not state.startswith("running/") or state.endswith("/unhealthy")}
            if broken:
                raise ComposeError(f"containers not running or unhealthy: {broken}\n{self.logs()}")
            return set(states) == set(SERVICES) and all(s == "running/healthy" for s in states.values())

        try:
            wait_until(all_healthy, timeout=timeout, interval=0.5, what=f"every service of {self.project} healthy")
        except TimeoutError as exc:
            raise ComposeError(f"{exc}: {self.container_states()}\n{self.logs()}") from None

    def port(self, service: str) -> int:
        """The 127.0.0.1 host port published for ``service``."""
        if service not in self._ports:
            container_port, _ = SERVICES[service]
            address = self.compose("port", service, str(container_port), timeout=30).strip()
            host, _, port = address.rpartition(":")
            if host != "127.0.0.1":
                raise ComposeError(f"{service} is published on {address!r}, not on 127.0.0.1")
            self._ports[service] = int(port)
        return self._ports[service]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def logs(self, tail: int = 30) -> str:
        try:
            return self.compose("logs", "--no-color", f"--tail={tail}", timeout=30)
        except ComposeError as exc:
            return f"(no logs: {exc})"

    def down(self, timeout: float) -> None:
        """Stop and remove containers, network and volumes (``-t 5``: tini forwards SIGTERM, so it is quick)."""
        self.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=timeout)


def timings_line(timings: Mapping[str, float]) -> str:
    return "compose stack timings: " + json.dumps({name: round(value, 1) for name, value in timings.items()})
