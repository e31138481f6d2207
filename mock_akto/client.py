"""A typed Python client for the engine's admin API, bound to one namespace.

It speaks the same pydantic models as the engine (:class:`~mock_akto.policies.Policy`,
:class:`~mock_akto.rules.FaultRule`, :class:`~mock_akto.journal.JournalEntryModel`...), so a test that
scripts a fault gets the same validation errors as the YAML and the CLI, before anything is sent.
"""

from __future__ import annotations

import os
from urllib.parse import quote
from typing import Any, Iterable, Literal, Mapping

import httpx
from pydantic import BaseModel

from akto_wire import IDLE_KEEPALIVE_S

from .config import ADMIN_TOKEN_ENV, TOKEN_ENV
from .errors import AdminError, JournalTimeout, VerificationError
from .journal import IngestRecordModel, JournalEntryModel
from .matching import Matcher, MatcherLike, as_matcher
from .policies import Policy
from .profiles import AktoProfile
from .rules import FaultRule
from .scripted import ScriptedVerdict
from .verify import VerifyResult, as_verify_request

NAMESPACE_HEADER = "X-Mock-Akto-Namespace"
RuleScope = Literal["namespace", "global"]


class MockAktoClient:
    """Admin calls for one namespace of one engine (``namespace=None``: the ``default`` namespace)."""

    def __init__(self, base_url: str, namespace: str | None = None, timeout: float = 10.0,
                 *, admin_token: str | None = None, transport: httpx.BaseTransport | None = None) -> None:
        """``admin_token``: what the engine's admin API requires (``--admin-token``, else its ``--token``);
        default ``$MOCK_AKTO_ADMIN_TOKEN``, else ``$MOCK_AKTO_TOKEN``, else none."""
        self.base_url = base_url.rstrip("/")
        self.namespace = namespace
        self.timeout = timeout
        if admin_token is None:
            admin_token = os.environ.get(ADMIN_TOKEN_ENV) or os.environ.get(TOKEN_ENV) or None
        self._admin_token = admin_token
        headers = {NAMESPACE_HEADER: namespace} if namespace else {}
        if admin_token:
            headers["Authorization"] = f"Bearer {admin_token}"
        # Plain-HTTP engines need no CA bundle; loading one costs ~30 ms per client (one per test).
        verify = not self.base_url.startswith("http://")
        # Idle connections are dropped before a server's keep-alive commonly closes them (uvicorn's 5 s, or
        # an engine run with --keep-alive 5): a POST written as the server closes its connection gets no
        # answer, and httpx does not retry it.
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers, trust_env=False,
                                  transport=transport, verify=verify,
                                  limits=httpx.Limits(keepalive_expiry=IDLE_KEEPALIVE_S))

    def for_namespace(self, namespace: str) -> "MockAktoClient":
        """Another client for the same engine, bound to ``namespace``."""
        return MockAktoClient(self.base_url, namespace, self.timeout, admin_token=self._admin_token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "MockAktoClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, ok: Iterable[int] = (200, 201, 204), **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, "/__admin" + path, **kwargs)
        if response.status_code not in ok:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise AdminError(response.status_code, detail)
        return response

    @staticmethod
    def _params(filters: Mapping[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in filters.items() if value is not None}

    # -- engine -----------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health").json()

    def reset(self, *, everything: bool = False) -> list[str]:
        """Reset this namespace (``everything``: every namespace and the global rules)."""
        params = {"scope": "all"} if everything else {}
        return self._call("POST", "/reset", params=params).json()["reset"]

    # -- policies ---------------------------------------------------------------------------------------

    def policies(self) -> list[Policy]:
        return [Policy.model_validate(p) for p in self._call("GET", "/policies").json()]

    def set_policies(self, policies: Iterable[Policy | Mapping[str, Any]]) -> list[Policy]:
        body = [_policy(p).model_dump(mode="json") for p in policies]
        return [Policy.model_validate(p) for p in self._call("PUT", "/policies", json=body).json()]

    def add_policy(self, policy: Policy | Mapping[str, Any]) -> Policy:
        """Add one policy (replacing one of the same name)."""
        return Policy.model_validate(self._call("POST", "/policies", json=_policy(policy).model_dump(mode="json")).json())

    def delete_policy(self, name: str) -> None:
        self._call("DELETE", f"/policies/{quote(name, safe='')}")  # any name: "/", "?", "#" and "%" too

    def presets(self) -> list[str]:
        return self._call("GET", "/policies/presets").json()

    def load_preset(self, name: str) -> list[Policy]:
        """Replace this namespace's policies with a bundled preset."""
        return [Policy.model_validate(p) for p in self._call("POST", f"/policies/presets/{name}").json()]

    # -- Akto contract profiles ---------------------------------------------------------------------------

    def akto_profiles(self) -> list[AktoProfile]:
        """Every Akto contract profile the engine can play."""
        return [AktoProfile.model_validate(p) for p in self._call("GET", "/akto-profiles").json()]

    def akto_profile(self) -> AktoProfile:
        """The profile this namespace plays."""
        return AktoProfile.model_validate(self._call("GET", "/akto-profile").json())

    def set_akto_profile(self, name: str, *, guardrails_client_timeout_ms: int | None = None) -> AktoProfile:
        """Play profile ``name`` in this namespace until its next reset (``guardrails_client_timeout_ms``:
        another ``GUARDRAILS_CLIENT_TIMEOUT_MS``, at least 500)."""
        body: dict[str, Any] = {"name": name}
        if guardrails_client_timeout_ms is not None:
            body["guardrails_client_timeout_ms"] = guardrails_client_timeout_ms
        return AktoProfile.model_validate(self._call("PUT", "/akto-profile", json=body).json())

    # -- faults -----------------------------------------------------------------------------------------

    def add_fault(self, rule_or_fault: FaultRule | BaseModel | Mapping[str, Any] | str, *,
                  scope: RuleScope = "namespace", **rule_fields: Any) -> FaultRule:
        """Add a fault rule. Accepts a :class:`FaultRule`, a fault (model, dict or bare type name such as
        ``"connection_reset_by_peer"``) plus rule fields (``match=``, ``probability=``, ``first_n=``...)."""
        rule = to_rule(rule_or_fault, **rule_fields)
        body = rule.model_dump(mode="json", by_alias=True, exclude={"matched", "applied"})
        return FaultRule.model_validate(self._call("POST", "/faults/rules", params={"scope": scope}, json=body).json())

    def faults(self, *, scope: RuleScope = "namespace") -> list[FaultRule]:
        return [FaultRule.model_validate(r) for r in self._call("GET", "/faults/rules", params={"scope": scope}).json()]

    def remove_fault(self, rule_id: str, *, scope: RuleScope = "namespace") -> None:
        self._call("DELETE", f"/faults/rules/{rule_id}", params={"scope": scope})

    def clear_faults(self, *, scope: RuleScope = "namespace") -> None:
        self._call("DELETE", "/faults/rules", params={"scope": scope})

    # -- journal ----------------------------------------------------------------------------------------

    def journal(self, **filters: Any) -> list[JournalEntryModel]:
        """Entries; filters: path, connector, app, flag, status, fault, since, limit."""
        data = self._call("GET", "/journal", params=self._params(filters)).json()
        return [JournalEntryModel.model_validate(e) for e in data]

    def count(self, **filters: Any) -> int:
        return self._call("GET", "/journal/count", params=self._params(filters)).json()["count"]

    def wait_for(self, count: int, timeout: float = 10.0, **filters: Any) -> list[JournalEntryModel]:
        """Block until ``count`` matching entries exist (server-side wait, no polling); raises
        :class:`JournalTimeout` carrying what had arrived when ``timeout`` seconds pass."""
        params = self._params(filters) | {"count": count, "timeout_ms": int(timeout * 1000)}
        response = self._call("GET", "/journal/wait", params=params, ok=(200, 408), timeout=timeout + self.timeout)
        data = response.json()
        entries = [JournalEntryModel.model_validate(e) for e in data["entries"]]
        if not data["reached"]:
            seen = ", ".join(f"#{e.seq} {e.method} {e.path} -> {e.status}" for e in entries[-10:]) or "nothing"
            raise JournalTimeout(f"wanted {count} journal entries matching {filters or 'anything'} within "
                                 f"{timeout:g}s, saw {len(entries)}: {seen}", entries)
        return entries

    def clear_journal(self) -> None:
        self._call("DELETE", "/journal")

    def find(self, match: MatcherLike | None = None, *, since: int = 0, limit: int = 1000) -> list[JournalEntryModel]:
        """Journal entries matching a :class:`~mock_akto.matching.Matcher` (or its dict form)."""
        body = {"match": _matcher_json(match), "since": since, "limit": limit}
        return [JournalEntryModel.model_validate(e) for e in self._call("POST", "/journal/find", json=body).json()]

    def verify(self, match: MatcherLike | None = None, count: int | None = None, *, at_least: int | None = None,
               at_most: int | None = None, timeout: float = 0.0, since: int = 0, near_misses: int = 3) -> VerifyResult:
        """Check that ``count`` calls (or ``at_least`` / ``at_most``; nothing: at least one) match, waiting up
        to ``timeout`` seconds on the engine for enough of them. Raises :class:`VerificationError` whose
        message lists the nearest journal entries and which part of the matcher each failed."""
        request = as_verify_request(as_matcher(match), count=count, at_least=at_least, at_most=at_most,
                                    timeout_ms=int(timeout * 1000), since=since, near_misses=near_misses)
        body = request.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        body["match"] = _matcher_json(request.match)
        response = self._call("POST", "/verify", json=body, timeout=timeout + self.timeout)
        result = VerifyResult.model_validate(response.json())
        if not result.ok:
            raise VerificationError(result.message, result)
        return result

    # -- scripted verdicts ------------------------------------------------------------------------------

    def add_verdict(self, script: ScriptedVerdict | Mapping[str, Any] | None = None, **fields: Any) -> ScriptedVerdict:
        """Script answers: a :class:`ScriptedVerdict`, its dict form, or its fields as keywords
        (``match=..., answer={"verdict": {"Allowed": False, ...}}`` or ``sequence=[...]``)."""
        spec = script if isinstance(script, ScriptedVerdict) else ScriptedVerdict.model_validate({**(script or {}), **fields})
        body = spec.model_dump(mode="json", by_alias=True, exclude={"matched", "applied"}, exclude_unset=True)
        return ScriptedVerdict.model_validate(self._call("POST", "/verdicts", json=body).json())

    def verdicts(self) -> list[ScriptedVerdict]:
        return [ScriptedVerdict.model_validate(v) for v in self._call("GET", "/verdicts").json()]

    def remove_verdict(self, script_id: str) -> None:
        self._call("DELETE", f"/verdicts/{script_id}")

    def clear_verdicts(self) -> None:
        self._call("DELETE", "/verdicts")

    # -- ingest records ---------------------------------------------------------------------------------

    def ingest_records(self, **filters: Any) -> list[IngestRecordModel]:
        """Records of ``ingest_data=true`` calls; filters: status_code, connector, app, path, since, limit."""
        if "status_code" in filters and filters["status_code"] is not None:
            filters["status_code"] = str(filters["status_code"])
        data = self._call("GET", "/ingest", params=self._params(filters)).json()
        return [IngestRecordModel.model_validate(r) for r in data]

    def clear_ingest_records(self) -> None:
        self._call("DELETE", "/ingest")

    # -- listeners and namespaces -------------------------------------------------------------------------

    def create_listener(self, namespace: str | None = None, port: int = 0) -> str:
        """Open a loopback port bound to ``namespace`` (default: this client's); returns its base URL."""
        body = {"namespace": namespace or self.namespace, "port": port}
        return self._call("POST", "/listeners", json=body).json()["url"]

    def close_listener(self, port_or_url: int | str) -> None:
        port = port_or_url if isinstance(port_or_url, int) else httpx.URL(port_or_url).port
        self._call("DELETE", f"/listeners/{port}")

    def listeners(self) -> list[dict[str, Any]]:
        return self._call("GET", "/listeners").json()

    def register_api_key(self, api_key: str, namespace: str | None = None) -> None:
        """Calls with ``Authorization: <api_key>`` land in ``namespace`` (default: this client's)."""
        self._call("POST", "/namespaces/api-keys", json={"api_key": api_key, "namespace": namespace or self.namespace})

    def namespaces(self) -> list[dict[str, Any]]:
        return self._call("GET", "/namespaces").json()

    def delete_namespace(self, name: str | None = None) -> None:
        target = name or self.namespace
        if not target:
            raise ValueError("no namespace to delete")
        self._call("DELETE", f"/namespaces/{target}")


def _matcher_json(match: MatcherLike | None) -> dict[str, Any]:
    return as_matcher(match).model_dump(mode="json", by_alias=True, exclude_unset=True)


def _policy(policy: Policy | Mapping[str, Any]) -> Policy:
    return policy if isinstance(policy, Policy) else Policy.model_validate(policy)


def to_rule(rule_or_fault: FaultRule | BaseModel | Mapping[str, Any] | str, **rule_fields: Any) -> FaultRule:
    """A :class:`FaultRule` from the shorthands :meth:`MockAktoClient.add_fault` accepts."""
    if isinstance(rule_or_fault, FaultRule):
        if not rule_fields:
            return rule_or_fault
        return FaultRule.model_validate(rule_or_fault.model_dump(exclude={"matched", "applied"}) | rule_fields)
    if isinstance(rule_or_fault, str):
        data: dict[str, Any] = {"fault": {"type": rule_or_fault}}
    elif isinstance(rule_or_fault, BaseModel):
        data = {"fault": rule_or_fault.model_dump(mode="json")}
    elif "fault" in rule_or_fault or "sequence" in rule_or_fault:
        data = dict(rule_or_fault)
    else:
        data = {"fault": dict(rule_or_fault)}
    return FaultRule.model_validate(data | rule_fields)
