"""pytest fixtures for the egress proxy: a real mitmdump with an addon, in front of the fake providers.

REGISTRATION: plain fixtures in a plain module (like ``harness.fixtures_llm``); the harness plugin or a
``conftest.py`` registers them with ``from harness.fixtures_mitm import *  # noqa: F401,F403``.

Clients call the real provider URLs (``https://api.openai.com/...``) through ``EgressProxy.proxy_url``
trusting ``EgressProxy.ca_cert``; :mod:`harness.mitm_route` sends the provider hosts to one local fake
that speaks TLS with a certificate for those names, so the addon sees production hosts and headers.

Run the same tests against another addon file (Akto's published ``akto_guardrails.py``, or yours) with
``AKTO_HARNESS_EGRESS_ADDON=/path/to/addon.py``. The addon is configured through environment variables
(``AKTO_URL``, ``APP_NAME``, ``AKTO_UNREACHABLE_FALLBACK``, ``AKTO_GUARDRAILS_MODE``, ``AKTO_TEXT_THRESHOLD``,
``AKTO_TIMEOUT_MS``), which Akto's addon reads too, so no addon-specific ``--set`` is needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import httpx
import pytest

from harness.engine import EngineNamespace
from harness.fake_llm import FakeLLMClient, FakeLLMServer
from harness.mitm import EGRESS_ADDON, ROUTE_ADDON, MitmDump, OptionValue, route_map
from harness.process import LOOPBACK

__all__ = [
    "EgressProxy",
    "egress_addon_path",
    "egress_akto",
    "egress_llm",
    "egress_namespace",
    "egress_pool",
    "egress_proxy",
    "egress_upstream",
    "mitm_confdir",
    "PROVIDER_HOSTS",
]

EGRESS_ADDON_ENV = "AKTO_HARNESS_EGRESS_ADDON"
#: The hosts the local fake answers for (its certificate names them; the router sends them there).
PROVIDER_HOSTS = ("api.openai.com", "api.anthropic.com", "chatgpt.com", "bedrock-runtime.us-east-1.amazonaws.com")


class EgressProxy:
    """A running mitmdump with the addon under test, plus the clients tests need."""

    def __init__(self, mitm: MitmDump) -> None:
        self.mitm = mitm

    @property
    def proxy_url(self) -> str:
        return self.mitm.proxy_url

    @property
    def ca_cert(self) -> Path:
        return self.mitm.ca_cert

    def client(self, *, verify: bool | str | None = None, timeout: float = 15.0, **kwargs: Any) -> httpx.Client:
        """An httpx client whose every request goes through the proxy, trusting its CA by default."""
        return httpx.Client(proxy=self.proxy_url, verify=str(self.ca_cert) if verify is None else verify,
                            timeout=timeout, trust_env=False, **kwargs)

    def client_env(self) -> dict[str, str]:
        """``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``SSL_CERT_FILE`` for SDKs configured the usual way."""
        return self.mitm.client_env()

    def log_tail(self, lines: int = 60) -> str:
        return self.mitm.log_tail(lines)


EgressFactory = Callable[..., EgressProxy]


@pytest.fixture(scope="session")
def mitm_confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mitmproxy confdir (so one CA) for every proxy of this worker."""
    return tmp_path_factory.mktemp("mitm-confdir")


@pytest.fixture(scope="session")
def egress_addon_path() -> Path:
    """The addon under test: ours, unless ``AKTO_HARNESS_EGRESS_ADDON`` names another file."""
    return Path(os.environ.get(EGRESS_ADDON_ENV) or EGRESS_ADDON)


@pytest.fixture(scope="session")
def egress_upstream() -> Iterator[FakeLLMServer]:
    """The fake providers over HTTPS, with a certificate for the real provider host names."""
    with FakeLLMServer(tls=True, tls_names=(*PROVIDER_HOSTS, LOOPBACK, "localhost")) as server:
        yield server


@pytest.fixture
def egress_llm(egress_upstream: FakeLLMServer) -> Iterator[FakeLLMClient]:
    """The upstream fake with its default script and an empty recording, reset after the test."""
    egress_upstream.client.reset()
    yield egress_upstream.client
    egress_upstream.client.reset()


@pytest.fixture(scope="module")
def egress_namespace(akto_engine: Any, request: pytest.FixtureRequest) -> Iterator[EngineNamespace]:
    """One engine namespace (with its own listener) per test module: proxies can then be shared."""
    namespace = EngineNamespace.open(akto_engine.url, request.module.__name__.rsplit(".", 1)[-1])
    yield namespace
    namespace.close()


@pytest.fixture
def egress_akto(egress_namespace: EngineNamespace) -> Iterator[EngineNamespace]:
    """The module's namespace, reset (default policies, no faults, empty journal) before and after the test."""
    egress_namespace.client.reset()
    yield egress_namespace
    egress_namespace.client.reset()


@pytest.fixture(scope="module")
def egress_pool() -> Iterator[dict[tuple[Any, ...], MitmDump]]:
    """Proxies kept for the module, by configuration (starting mitmdump costs a second or more)."""
    pool: dict[tuple[Any, ...], MitmDump] = {}
    yield pool
    for mitm in pool.values():
        mitm.stop()


@pytest.fixture
def egress_proxy(
    egress_akto: EngineNamespace, egress_upstream: FakeLLMServer, egress_llm: FakeLLMClient,
    egress_pool: dict[tuple[Any, ...], MitmDump], mitm_confdir: Path, egress_addon_path: Path,
) -> Iterator[EgressFactory]:
    """A mitmdump with the addon under test, pointed at the module's engine namespace (``egress_akto``).

    ``egress_proxy(fail_mode="fail_closed", stream_mode="sync", batch_chars=40, timeout_ms=1000)``;
    ``akto_url=`` overrides the engine URL, ``env=`` / ``options=`` add anything else. A proxy with the same
    configuration is reused within the module unless ``fresh=True`` (then it is stopped after the test).
    """
    own: list[MitmDump] = []

    def start(
        *,
        fail_mode: str | None = None,
        stream_mode: str | None = None,
        batch_chars: int | None = None,
        timeout_ms: int | None = None,
        app_name: str | None = None,
        akto_url: str | None = None,
        env: Mapping[str, str] | None = None,
        options: Mapping[str, OptionValue] | None = None,
        fresh: bool = False,
    ) -> EgressProxy:
        settings = {
            "AKTO_URL": akto_url if akto_url is not None else egress_akto.url,
            "APP_NAME": app_name,
            "AKTO_UNREACHABLE_FALLBACK": fail_mode,
            "AKTO_GUARDRAILS_MODE": stream_mode,
            "AKTO_TEXT_THRESHOLD": None if batch_chars is None else str(batch_chars),
            "AKTO_TIMEOUT_MS": None if timeout_ms is None else str(timeout_ms),
        }
        child_env = {name: value for name, value in settings.items() if value is not None}
        child_env.update(env or {})
        routes = {host: (LOOPBACK, egress_upstream.port) for host in PROVIDER_HOSTS}
        all_options: dict[str, OptionValue] = {
            "route_map": route_map(routes),
            "ssl_verify_upstream_trusted_ca": str(egress_upstream.ca_cert),
        }
        all_options.update(options or {})
        key = (str(egress_addon_path), tuple(sorted(child_env.items())), tuple(sorted(all_options.items())))
        pooled = egress_pool.get(key)
        if not fresh and pooled is not None and pooled.process is not None and pooled.process.running:
            return EgressProxy(pooled)
        mitm = MitmDump([egress_addon_path, ROUTE_ADDON], options=all_options, env=child_env, confdir=mitm_confdir)
        mitm.start()
        if fresh:
            own.append(mitm)
        else:
            egress_pool[key] = mitm
        return EgressProxy(mitm)

    yield start
    for mitm in own:
        mitm.stop()
