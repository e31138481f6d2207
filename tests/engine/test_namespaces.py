"""Namespaces: resolution order, isolation of parallel tests sharing one engine."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from akto_wire import Envelope
from harness.engine import EngineNamespace
from mock_akto.namespaces import DEFAULT_NAMESPACE, NamespaceError, NamespaceRegistry

PROXY = "/api/http-proxy"


def envelope(text: str = "hello") -> dict[str, Any]:
    return Envelope.build(request_payload=text).model_dump()


# --------------------------------------------------------------------------------------------- resolution order


def test_resolution_order_port_prefix_header_key_default() -> None:
    registry = NamespaceRegistry()
    registry.bind_port(4001, "by-port")
    registry.register_api_key("sk-key", "by-key")
    assert registry.resolve(4001, "by-prefix", "by-header", "sk-key").name == "by-port"
    assert registry.resolve(5000, "by-prefix", "by-header", "sk-key").name == "by-prefix"
    assert registry.resolve(None, None, "by-header", "sk-key").name == "by-header"
    assert registry.resolve(None, None, None, "sk-key").name == "by-key"
    assert registry.resolve(None, None, None, "Bearer sk-key").name == "by-key"
    assert registry.resolve(None, None, None, "unknown").name == DEFAULT_NAMESPACE
    assert registry.resolve(None, None, None, None).name == DEFAULT_NAMESPACE


@pytest.mark.parametrize("name", ["", "has space", "a/b", "x" * 81, "ünï"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(NamespaceError):
        NamespaceRegistry().get(name)


def test_removing_a_namespace_forgets_its_keys() -> None:
    registry = NamespaceRegistry()
    registry.register_api_key("sk-1", "temp")
    assert registry.remove("temp")
    assert registry.resolve(None, None, None, "sk-1").name == DEFAULT_NAMESPACE


# --------------------------------------------------------------------------------------------- over the wire


def test_path_prefix_header_and_api_key_reach_the_namespace(akto, http) -> None:  # noqa: ANN001
    akto.client.register_api_key("sk-test-ns-key")
    http.post(f"{akto.engine_url}/ns/{akto.namespace}{PROXY}", json=envelope("via prefix"))
    http.post(akto.engine_url + PROXY, json=envelope("via header"), headers={"x-mock-akto-namespace": akto.namespace})
    http.post(akto.engine_url + PROXY, json=envelope("via key"), headers={"authorization": "sk-test-ns-key"})
    http.post(akto.url + PROXY, json=envelope("via port"))
    payloads = [e.request_payload for e in akto.client.journal()]
    assert payloads == ["via prefix", "via header", "via key", "via port"]
    assert all(e.namespace == akto.namespace for e in akto.client.journal())


def test_the_admin_api_answers_under_the_prefix_too(akto, http) -> None:  # noqa: ANN001
    http.post(akto.url + PROXY, json=envelope())
    response = http.get(f"{akto.engine_url}/ns/{akto.namespace}/__admin/journal/count")
    assert response.json() == {"count": 1}


def test_a_bad_namespace_header_is_a_400(akto, http) -> None:  # noqa: ANN001
    response = http.post(akto.engine_url + PROXY, json=envelope(), headers={"x-mock-akto-namespace": "bad name!"})
    assert response.status_code == 400
    assert "invalid namespace name" in response.json()["message"]


def test_past_the_namespace_limit_a_call_gets_400_and_nothing_is_created(make_engine, http) -> None:  # noqa: ANN001
    """A caller that invents a namespace per call cannot make the engine hold unbounded journals: past
    ``max_namespaces`` the call is refused with the reason; existing namespaces keep working, and removing
    one makes room again."""
    engine = make_engine(max_namespaces=3)  # default + two
    for name in ("one", "two"):
        assert http.post(engine.url + PROXY, params={"guardrails": "true"}, json=envelope(),
                         headers={"x-mock-akto-namespace": name}).status_code == 200
    refused = http.post(engine.url + PROXY, params={"guardrails": "true"}, json=envelope(),
                        headers={"x-mock-akto-namespace": "three"})
    body = refused.json()
    assert refused.status_code == 400 and body["success"] is False
    assert "cannot create namespace 'three'" in body["message"] and "--max-namespaces" in body["message"]
    admin = http.get(engine.url + "/__admin/journal", headers={"x-mock-akto-namespace": "four"})
    assert admin.status_code == 400 and "cannot create namespace 'four'" in admin.json()["detail"]
    names = [ns["name"] for ns in http.get(engine.url + "/__admin/namespaces").json()]
    assert sorted(names) == ["default", "one", "two"]
    assert http.post(engine.url + PROXY, params={"guardrails": "true"}, json=envelope(),
                     headers={"x-mock-akto-namespace": "two"}).status_code == 200
    assert http.delete(engine.url + "/__admin/namespaces/one").status_code == 204
    assert http.post(engine.url + PROXY, params={"guardrails": "true"}, json=envelope(),
                     headers={"x-mock-akto-namespace": "three"}).status_code == 200


def test_two_namespaces_in_parallel_stay_isolated(akto_engine) -> None:  # noqa: ANN001
    blocking = EngineNamespace.open(akto_engine.url, "blocking")
    allowing = EngineNamespace.open(akto_engine.url, "allowing")
    try:
        blocking.client.load_preset("block-all")
        allowing.client.load_preset("allow-all")
        barrier = threading.Barrier(2)

        def hammer(ns: EngineNamespace) -> list[bool]:
            barrier.wait(timeout=10)
            with httpx.Client(trust_env=False, timeout=10) as http:
                return [
                    http.post(ns.url + PROXY, json=envelope(f"{ns.namespace} {i}"), params={"guardrails": "true"})
                    .json()["data"]["guardrailsResult"]["Allowed"]
                    for i in range(25)
                ]

        with ThreadPoolExecutor(2) as pool:
            blocked_verdicts, allowed_verdicts = pool.map(hammer, [blocking, allowing])
        assert blocked_verdicts == [False] * 25
        assert allowed_verdicts == [True] * 25
        for ns in (blocking, allowing):
            entries = ns.client.journal()
            assert len(entries) == 25
            assert all(e.request_payload.startswith(ns.namespace) for e in entries)
    finally:
        blocking.close()
        allowing.close()


def test_deleting_a_namespace_closes_its_listener(akto_engine) -> None:  # noqa: ANN001
    ns = EngineNamespace.open(akto_engine.url, "short-lived")
    assert httpx.get(ns.url + "/health", trust_env=False).status_code == 200
    ns.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(ns.url + "/health", trust_env=False, timeout=5)
    names = [n["name"] for n in akto_engine.client().namespaces()]
    assert ns.namespace not in names
