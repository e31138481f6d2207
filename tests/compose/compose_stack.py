"""Drive ``docker-compose.test.yaml`` from a test: build, up, wait for health, find ports, down; all bounded.

The compose binary builds, starts and stops the stack (profile ``all``); everything about the running
containers (states, health, published ports, removal of leftovers) goes through the docker SDK helpers of
``harness.containers``, the code the ``akto_container`` fixture uses.

Each stack gets its own compose project name (parallel workers and a stack started by hand never collide)
and publishes every port on an ephemeral 127.0.0.1 port (``*_PORT=0``). Secrets are fresh random values per
stack, set in the environment so a developer's ``.env`` cannot change what the test expects.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping

import yaml

from harness import containers

if TYPE_CHECKING:
    from docker.models.containers import Container

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.test.yaml"
#: Secrets the stack reads from the environment (a developer's shell or .env must not change a test).
SECRET_VARIABLES = ("LITELLM_MASTER_KEY", "AKTO_API_KEY", "AKTO_TFY_JWT_SECRET")

BUILD_TIMEOUT_S = 1500  # cold: ~5 min measured on a busy 2-core machine (LiteLLM's wheels), warm: seconds
UP_TIMEOUT_S = 240
HEALTH_TIMEOUT_S = 480  # LiteLLM: ~6 s idle, 3.5 min measured at load average 17 on 2 cores
DOWN_TIMEOUT_S = 120
#: For the tests using ``stack``: whichever runs first pays the build and start.
STACK_TEST_TIMEOUT_S = BUILD_TIMEOUT_S + UP_TIMEOUT_S + HEALTH_TIMEOUT_S + DOWN_TIMEOUT_S + 300
REQUEST_TIMEOUT_S = 30.0
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
    return containers.docker_unavailable_reason()


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class ComposeStack:
    """One compose project of ``docker-compose.test.yaml``: with ``profile="all"`` every service and fresh
    random secrets (what the test needs to know); with ``profile=None`` the engine alone and no secret set."""

    def __init__(self, project: str, *, base: str, profile: Literal["all"] | None = "all") -> None:
        self.project = project
        self.profile = profile
        self.services = set(SERVICES) if profile == "all" else {"mock-akto"}
        self.master_key = "sk-" + secrets.token_urlsafe(32)
        self.akto_api_key = "akto-test-" + secrets.token_urlsafe(24)
        self.tfy_jwt_secret = secrets.token_urlsafe(48)
        chosen = {"LITELLM_MASTER_KEY": self.master_key, "AKTO_API_KEY": self.akto_api_key,
                  "AKTO_TFY_JWT_SECRET": self.tfy_jwt_secret} if profile else {}
        self.env = {
            **{name: value for name, value in os.environ.items() if name not in SECRET_VARIABLES},
            "AKTO_BASE_IMAGE": base,
            **chosen,
            **{variable: "0" for _, variable in SERVICES.values()},
        }
        self._ports: dict[str, int] = {}

    @classmethod
    def for_test(cls, profile: Literal["all"] | None = "all") -> "ComposeStack":
        with closing(containers.docker_client()) as client:
            base = containers.base_image(client)
        return cls(f"akto-test-{os.getpid()}-{secrets.token_hex(3)}", base=base, profile=profile)

    def compose(self, *args: str, timeout: float) -> str:
        """Run ``docker-compose [--profile P] -p PROJECT -f docker-compose.test.yaml ARGS``; its output, or ComposeError."""
        profile = ["--profile", self.profile] if self.profile else []
        argv = ["docker-compose", *profile, "-p", self.project, "-f", str(COMPOSE_FILE), *args]
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
            if "build" in spec and name in self.services:
                first_by_image.setdefault(spec.get("image", name), name)
        return sorted(first_by_image.values())

    def build(self, timeout: float) -> float:
        """Build the images its services use (the layer cache makes a warm build a few seconds); the elapsed seconds."""
        started = time.monotonic()
        self.compose("build", *self.image_builders(), timeout=timeout)
        return time.monotonic() - started

    def up(self, timeout: float) -> None:
        """Start every service in the background (compose itself waits for the depends_on health)."""
        self.compose("up", "-d", "--no-build", timeout=timeout)

    def containers(self) -> dict[str, Container]:
        """service -> its container, for this project (through the docker SDK)."""
        with closing(containers.docker_client()) as client:
            found = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.project}"})
        return {container.labels["com.docker.compose.service"]: container for container in found}

    def wait_healthy(self, timeout: float) -> None:
        """Every service healthy before ``timeout``; fails at once (with logs) when one exits or turns unhealthy."""
        started = self.containers()
        if set(started) != self.services:
            raise ComposeError(f"services started: {sorted(started)}, expected {sorted(self.services)}\n{self.logs()}")
        try:
            containers.wait_healthy(started, timeout=timeout, what=f"every service of {self.project} healthy")
        except containers.ContainerError as exc:
            raise ComposeError(f"{exc}\n{self.logs()}") from None

    def port(self, service: str) -> int:
        """The 127.0.0.1 host port published for ``service`` (anything else is refused)."""
        if service not in self._ports:
            container_port, _ = SERVICES[service]
            self._ports[service] = containers.published_port(self.containers()[service], container_port)
        return self._ports[service]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def logs(self, tail: int = 30) -> str:
        try:
            return self.compose("logs", "--no-color", f"--tail={tail}", timeout=30)
        except ComposeError as exc:
            return f"(no logs: {exc})"

    def down(self, timeout: float) -> None:
        """Stop and remove containers, network and volumes (``-t 5``: tini forwards SIGTERM, so it is quick);
        containers ``down`` left behind (it failed or timed out) are force-removed through the SDK."""
        try:
            self.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=timeout)
        finally:
            containers.remove(self.containers().values())


def timings_line(timings: Mapping[str, float]) -> str:
    return "compose stack timings: " + json.dumps({name: round(value, 1) for name, value in timings.items()})
