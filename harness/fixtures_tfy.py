"""pytest fixtures for the TrueFoundry path: client -> gateway simulator -> Akto endpoint -> engine, + fake LLM.

REGISTRATION: plain fixtures in a plain module; the harness plugin registers them with
``from harness.fixtures_tfy import *  # noqa: F401,F403`` (``__all__`` lists them). They build on the
engine fixture ``akto_engine`` (harness/pytest_plugin.py) and the fake LLM fixture ``fake_llm``
(harness/fixtures_llm.py).

* ``tfy_gateway``: the gateway simulator process for the session (per xdist worker), in front of ``fake_llm``;
* ``tfy``: its client, reset (no guardrails, default settings, empty journal) before and after each test;
* ``tfy_endpoints``: a pool of reference endpoint processes, one per (engine namespace, options), started on
  first use and kept for the session: ``tfy_endpoints.get("my-ns", fail_mode="fail_closed", timeout=1)``;
* ``tfy_token``: a valid JWT for the endpoints (signed with ``TEST_JWT_SECRET``).
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from harness.tfy_endpoint import TEST_JWT_SECRET, TrueFoundryEndpoint, make_token
from harness.tfy_gateway_client import TfyGatewayClient, TfyGatewayServer

__all__ = ["tfy_gateway", "tfy", "tfy_endpoints", "tfy_token", "EndpointPool"]


class EndpointPool:
    """Reference endpoint processes keyed by (namespace, how it is reached, options); all stopped at the end.

    ``via="path"`` points the endpoint at ``{engine}/ns/<namespace>``; ``via="listener"`` at a loopback
    listener the engine binds to the namespace, which is what the engine's ``down`` fault needs (only a
    port can refuse connections).
    """

    def __init__(self, engine_url: str) -> None:
        self.engine_url = engine_url.rstrip("/")
        self._endpoints: dict[tuple[Any, ...], TrueFoundryEndpoint] = {}

    def get(self, namespace: str, *, via: str = "path", **options: Any) -> TrueFoundryEndpoint:
        key = (namespace, via, tuple(sorted(options.items())))
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = TrueFoundryEndpoint(self._engine_url_for(namespace, via), **options).start()
            self._endpoints[key] = endpoint
        return endpoint

    def _engine_url_for(self, namespace: str, via: str) -> str:
        if via == "path":
            return f"{self.engine_url}/ns/{namespace}"
        if via == "listener":
            from mock_akto.client import MockAktoClient

            with MockAktoClient(self.engine_url, namespace) as admin:
                return admin.create_listener()
        raise ValueError(f"via must be 'path' or 'listener', not {via!r}")

    def stop(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.stop()
        self._endpoints.clear()


@pytest.fixture(scope="session")
def tfy_gateway(fake_llm: Any) -> Iterator[TfyGatewayServer]:
    """The TrueFoundry gateway simulator for the session, forwarding to the fake LLM."""
    with TfyGatewayServer(fake_llm.url + "/v1") as gateway:
        yield gateway


@pytest.fixture
def tfy(tfy_gateway: TfyGatewayServer) -> Iterator[TfyGatewayClient]:
    """The simulator's client with a clean simulator (reset again after the test)."""
    tfy_gateway.client.reset()
    yield tfy_gateway.client
    tfy_gateway.client.reset()


@pytest.fixture(scope="session")
def tfy_endpoints(akto_engine: Any) -> Iterator[EndpointPool]:
    pool = EndpointPool(akto_engine.url)
    yield pool
    pool.stop()


@pytest.fixture(scope="session")
def tfy_token() -> str:
    return make_token(TEST_JWT_SECRET, expires_in=24 * 3600)
