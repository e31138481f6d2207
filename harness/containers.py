"""Docker from Python (the ``docker`` SDK): the engine image for a test, health waits, guaranteed removal.

What testcontainers' MockServer module does for MockServer, for the fake Akto engine: start the image on
an ephemeral 127.0.0.1 port, wait until it answers (a deadline, failing at once with the logs when the
container exits), hand out one namespace per test, and remove the container however the test ends. The
compose tests (tests/compose) use the same helpers for states, ports and health.

``docker`` is imported inside the functions that need it: importing this module (the pytest plugin does)
costs nothing where Docker is not installed.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Self

from mock_akto.client import MockAktoClient
from mock_akto.server import TOKEN_ENV

from .engine import EngineNamespace, unique_namespace
from .process import LOOPBACK, http_ready, wait_until

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = "docker/Dockerfile"
#: The engine-only image (``docker/Dockerfile`` target ``engine``).
ENGINE_IMAGE = "akto-harness:engine"
ENGINE_PORT = 8090
#: What docker/build-base-image.sh builds when no image registry is reachable.
LOCAL_BASE_IMAGE = "akto-harness-base:bookworm"
REGISTRY_BASE_IMAGE = "python:3.11-slim"
#: Every container started here carries ``<hostname>:<pid>`` of its owner, so a later run removes the
#: containers of a run that was killed before its clean-up could run.
OWNER_LABEL = "org.akto-harness.owner"


class ContainerError(RuntimeError):
    """A container or image could not be started, built or found; the message carries the logs' tail."""


def docker_client(timeout: float = 30.0) -> "DockerClient":
    """A client for ``$DOCKER_HOST`` (or the default socket); ``timeout`` bounds each API call."""
    import docker

    return docker.from_env(timeout=int(timeout))


def docker_unavailable_reason() -> str | None:
    """Why no Docker daemon can be used from here (one line), or None when one answers."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return "the `docker` Python package is not installed (it is in the test extra: pip install -e '.[test]')"
    where = os.environ.get("DOCKER_HOST") or "the default socket"
    try:
        client = docker.from_env(timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except DockerException as exc:
        return f"no Docker daemon answers at {where} ({str(exc).splitlines()[0][:200]})"
    return None


def image_exists(client: "DockerClient", name: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    return True


def base_image(client: "DockerClient") -> str:
    """``$AKTO_BASE_IMAGE``; else the local base image when it was built; else ``python:3.11-slim``."""
    configured = os.environ.get("AKTO_BASE_IMAGE")
    if configured:
        return configured
    return LOCAL_BASE_IMAGE if image_exists(client, LOCAL_BASE_IMAGE) else REGISTRY_BASE_IMAGE


def build_image(tag: str, target: str, *, timeout: float = 900.0) -> None:
    """Build ``docker/Dockerfile``'s ``target`` as ``tag`` from this repository (the layer cache applies)."""
    if not (REPO_ROOT / DOCKERFILE).is_file():
        raise ContainerError(f"image {tag} is missing and {REPO_ROOT / DOCKERFILE} is not here to build it: "
                             f"build it in an akto-harness checkout (docker build -f {DOCKERFILE} --target {target} "
                             f"-t {tag} .) or run another image")
    # One read may wait as long as the slowest silent build step (pip installing dependencies).
    client = docker_client(timeout=timeout)
    deadline = time.monotonic() + timeout
    output: list[str] = []
    try:
        stream = client.api.build(path=str(REPO_ROOT), dockerfile=DOCKERFILE, target=target, tag=tag, rm=True,
                                  buildargs={"BASE_IMAGE": base_image(client)}, decode=True)
        for chunk in stream:
            output += str(chunk.get("stream", "")).splitlines()
            if "error" in chunk:
                raise ContainerError(f"building {tag} failed: {chunk['error']}\n" + "\n".join(output[-30:]))
            if time.monotonic() > deadline:
                raise ContainerError(f"building {tag} took longer than {timeout:g}s\n" + "\n".join(output[-30:]))
    finally:
        client.close()


def state(container: "Container") -> str:
    """``running/healthy``, ``running/starting``, ``running/`` (no healthcheck), ``exited/``, ..."""
    container.reload()
    status = container.attrs["State"]
    return f"{status['Status']}/{(status.get('Health') or {}).get('Status', '')}"


def logs_tail(container: "Container", lines: int = 30) -> str:
    from docker.errors import APIError

    try:
        return container.logs(tail=lines).decode(errors="replace")
    except APIError as exc:
        return f"(no logs: {exc})"


def wait_healthy(containers: Mapping[str, "Container"], *, timeout: float, what: str) -> None:
    """Every container ``running/healthy`` before ``timeout``; fails at once, with the logs, when one
    exits or turns unhealthy."""

    def all_healthy() -> bool:
        states = {name: state(container) for name, container in containers.items()}
        broken = [name for name, s in states.items() if not s.startswith("running/") or s.endswith("/unhealthy")]
        if broken:
            logs = "\n".join(f"--- {name}\n{logs_tail(containers[name])}" for name in broken)
            raise ContainerError(f"{what}: not running or unhealthy: { {n: states[n] for n in broken} }\n{logs}")
        return all(s == "running/healthy" for s in states.values())

    try:
        wait_until(all_healthy, timeout=timeout, interval=0.5, what=what)
    except TimeoutError as exc:
        states = {name: state(container) for name, container in containers.items()}
        raise ContainerError(f"{exc}: {states}") from None


def published_port(container: "Container", port: int) -> int:
    """The host port published for the container's TCP ``port``; refuses anything not on 127.0.0.1."""
    container.reload()
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
    if not bindings:
        raise ContainerError(f"{container.name}: port {port} is not published")
    addresses = {binding["HostIp"] for binding in bindings}
    if addresses != {LOOPBACK}:
        raise ContainerError(f"{container.name}: port {port} is published on {sorted(addresses)}, not only 127.0.0.1")
    return int(bindings[0]["HostPort"])


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def remove_orphans(client: "DockerClient") -> list[str]:
    """Remove containers started from this host by processes that are gone (a run killed mid-test)."""
    from docker.errors import NotFound

    host = socket.gethostname()
    removed: list[str] = []
    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        owner_host, _, pid = container.labels.get(OWNER_LABEL, "").rpartition(":")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            container.remove(force=True, v=True)
            removed.append(container.name)
        except NotFound:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove(containers: Iterable["Container"]) -> None:
    """Force-remove (with volumes); a container already gone is fine."""
    from docker.errors import NotFound

    for container in containers:
        try:
            container.remove(force=True, v=True)
        except NotFound:
            pass


class EngineContainer:
    """The engine image running in Docker, published on an ephemeral 127.0.0.1 port; a context manager.

    ``build=True`` builds the image from this checkout when it is missing. ``token`` is what the engine
    requires in ``Authorization`` on ``/api/*`` and the admin API (passed through the environment). The container is removed
    on :meth:`stop`, on ``__exit__`` and when start-up fails.
    """

    def __init__(self, image: str | None = None, *, token: str | None = None, build: bool = True,
                 startup_timeout: float = 60.0, build_timeout: float = 900.0) -> None:
        self.image = image or ENGINE_IMAGE
        self.token = token
        self.build = build
        self.startup_timeout = startup_timeout
        self.build_timeout = build_timeout
        self.container: Container | None = None
        self.url: str | None = None

    def start(self) -> Self:
        client = docker_client()
        try:
            remove_orphans(client)
            if not image_exists(client, self.image):
                if not self.build:
                    raise ContainerError(f"image {self.image} not found (build it: docker build -f {DOCKERFILE} "
                                         f"--target engine -t {self.image} .)")
                build_image(self.image, "engine", timeout=self.build_timeout)
            self.container = client.containers.run(
                self.image,
                name=f"akto-engine-{os.getpid()}-{secrets.token_hex(3)}",
                detach=True,
                init=True,  # Python as PID 1 ignores SIGTERM
                ports={f"{ENGINE_PORT}/tcp": (LOOPBACK, None)},
                environment={TOKEN_ENV: self.token} if self.token else {},
                labels={OWNER_LABEL: owner()},
            )
        finally:
            client.close()
        try:
            self.url = f"http://{LOOPBACK}:{published_port(self.container, ENGINE_PORT)}"
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Ready when the engine answers on the published port (from outside, the path tests use);
        Docker's own healthcheck would add its first interval."""
        answers = http_ready(f"{self.url}/__admin/health")
        container = self.container
        assert container is not None

        def ready() -> bool:
            if not state(container).startswith("running/"):
                raise ContainerError(f"{container.name} exited during start-up:\n{logs_tail(container)}")
            return answers()

        try:
            wait_until(ready, timeout=self.startup_timeout, interval=0.1, what=f"{self.image} answering on {self.url}")
        except TimeoutError as exc:
            raise ContainerError(f"{exc}\n{logs_tail(container)}") from None

    @property
    def port(self) -> int:
        if self.url is None:
            raise RuntimeError("the engine container is not running")
        return int(self.url.rsplit(":", 1)[1])

    def client(self, namespace: str | None = None) -> MockAktoClient:
        if self.url is None:
            raise RuntimeError("the engine container is not running")
        return MockAktoClient(self.url, namespace, admin_token=self.token)  # the token guards the admin API too

    def namespace(self, hint: str = "t") -> EngineNamespace:
        """A fresh namespace reached through ``/ns/<name>`` on the published port (a namespace's own
        listener would open a port inside the container, which is not published)."""
        if self.url is None:
            raise RuntimeError("the engine container is not running")
        name = unique_namespace(hint)
        return EngineNamespace(engine_url=self.url, namespace=name, url=f"{self.url}/ns/{name}",
                               client=MockAktoClient(self.url, name, admin_token=self.token))

    def logs(self, lines: int = 30) -> str:
        return logs_tail(self.container, lines) if self.container is not None else ""

    def stop(self) -> None:
        """Remove the container (force: no stop grace needed for a test engine)."""
        if self.container is not None:
            remove([self.container])
            self.container = None
            self.url = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
