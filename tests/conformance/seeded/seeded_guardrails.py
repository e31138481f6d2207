"""Deliberately faulty LiteLLM guardrails, ONE field bug each: test material for the kill-rate test
(tests/conformance/test_kill_rate.py). Never an example to copy.

Each class is the reference hook (``reference_impl.litellm.guardrail.AktoGuardrail``) with one seam
overridden; :class:`Seeded` re-states the reference pre-call hook with those seams (``envelope``,
``verdict``, ``failure_decision``, ``blocks``, ``apply_masking``). The bugs come from
/work/shared/field-lessons.md and the contract notes; each docstring names the bug.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from fastapi import HTTPException

from akto_wire import HTTP_PROXY_PATH, Envelope, Verdict
from reference_impl.core import EngineFailure, on_failure
from reference_impl.core.failmode import FailMode, FailureDecision, FailureKind
from reference_impl.core.masking import MaskingError, apply_changes, masked_changes
from reference_impl.litellm.envelope import has_text, request_body, request_envelope
from reference_impl.litellm.guardrail import DEFAULT_BLOCK_REASON, AktoGuardrail


class Seeded(AktoGuardrail):
    """The reference pre-call hook with seams; with no seam overridden it behaves like the reference."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        if not has_text(data):
            return data
        envelope = self.envelope(data)
        try:
            verdict = await self.verdict(envelope)
        except EngineFailure as failure:
            decision = self.failure_decision(failure)
            if decision.allow:
                return data
            raise HTTPException(status_code=decision.status, detail=decision.message) from None
        if self.blocks(verdict):
            self._block(data, verdict.reason or DEFAULT_BLOCK_REASON)
        if verdict.modified:
            return self.apply_masking(data, envelope, verdict)
        return data

    def envelope(self, data: dict) -> Envelope:
        return request_envelope(data, self.settings)

    async def verdict(self, envelope: Envelope) -> Verdict:
        return await self.engine.check(envelope, direction="request", ingest=False)

    def failure_decision(self, failure: EngineFailure) -> FailureDecision:
        return on_failure(failure, self.settings.unreachable_fallback)

    def blocks(self, verdict: Verdict) -> bool:
        return verdict.blocks

    def apply_masking(self, data: dict, envelope: Envelope, verdict: Verdict) -> dict:
        return self._masked(data, envelope, verdict)

    # --- helpers for the verdict-reading bugs: the raw answer, then a sloppy reader ---------------------

    async def raw_answer(self, envelope: Envelope, *, deadline: bool = True, **flags: bool) -> httpx.Response:
        url = self.engine._url(HTTP_PROXY_PATH, self.engine.query(guardrails=True, **flags))
        content = envelope.model_dump_json().encode()
        try:
            if not deadline:
                return await self.engine._http.post(url, content=content)
            async with asyncio.timeout(self.settings.guardrail_timeout):
                return await self.engine._http.post(url, content=content)
        except (TimeoutError, httpx.TimeoutException):
            raise EngineFailure(FailureKind.TIMEOUT, "engine timed out") from None
        except httpx.TransportError as exc:
            raise EngineFailure(FailureKind.UNREACHABLE, f"engine unreachable: {exc}") from None

    @staticmethod
    def result_of(response: httpx.Response) -> dict:
        if response.status_code >= 400:
            kind = FailureKind.AUTH if response.status_code in (401, 403) else FailureKind.SERVER_ERROR
            raise EngineFailure(kind, f"engine answered {response.status_code}", status=response.status_code)
        try:
            result = response.json()["data"]["guardrailsResult"]
        except (ValueError, KeyError, TypeError):
            raise EngineFailure(FailureKind.UNREADABLE, "no verdict") from None
        if not isinstance(result, dict):
            raise EngineFailure(FailureKind.UNREADABLE, "no verdict")
        return result

    @staticmethod
    def sloppy(result: dict, **overrides: Any) -> Verdict:
        """A verdict built without validation (what a hand-written client does)."""
        fields = {"allowed": result.get("Allowed"), "reason": result.get("Reason") or "",
                  "modified": bool(result.get("Modified")), "modified_payload": result.get("ModifiedPayload") or "",
                  "behaviour": str(result.get("behaviour") or result.get("Behaviour") or "").lower()}
        fields.update(overrides)
        return Verdict.model_validate({"Allowed": bool(fields["allowed"]), "Reason": fields["reason"],
                                       "Modified": fields["modified"], "ModifiedPayload": fields["modified_payload"],
                                       "behaviour": fields["behaviour"]})


# ------------------------------------------------------------------------------------ fail-mode bugs


class FailsOpenOnTimeout(Seeded):
    """A timeout lets the request through even under fail_closed (LiteLLM PR #32026: the timeout class
    slipped past the fail-mode handler)."""

    def failure_decision(self, failure: EngineFailure) -> FailureDecision:
        if failure.kind is FailureKind.TIMEOUT:
            return FailureDecision(allow=True, status=200, message="timeout")
        return super().failure_decision(failure)


class FailsOpenOnAuth(Seeded):
    """An engine 401 follows the fail mode, so fail_open silently switches guardrails off on a bad key
    (LiteLLM PR #38568)."""

    def failure_decision(self, failure: EngineFailure) -> FailureDecision:
        if failure.kind is FailureKind.AUTH and self.settings.unreachable_fallback is FailMode.FAIL_OPEN:
            return FailureDecision(allow=True, status=200, message="auth")
        return super().failure_decision(failure)


class ServerErrorFailsOpen(Seeded):
    """A 5xx from the engine is treated as "no opinion" and let through under fail_closed."""

    def failure_decision(self, failure: EngineFailure) -> FailureDecision:
        if failure.kind is FailureKind.SERVER_ERROR:
            return FailureDecision(allow=True, status=200, message="5xx")
        return super().failure_decision(failure)


class UnreachableIsBlock(Seeded):
    """An unreachable engine is answered like a policy block (403), so clients see a block that never happened."""

    def failure_decision(self, failure: EngineFailure) -> FailureDecision:
        if failure.kind is FailureKind.UNREACHABLE:
            return FailureDecision(allow=False, status=403, message=DEFAULT_BLOCK_REASON)
        return super().failure_decision(failure)


class IgnoresFailOpen(Seeded):
    """``unreachable_fallback: fail_open`` is never read: every engine failure fails closed."""

    def failure_decision(self, failure: EngineFailure) -> FailureDecision:
        return on_failure(failure, FailMode.FAIL_CLOSED)


class NoTimeout(Seeded):
    """No timeout at all on the engine call: a slow engine holds every request as long as it likes."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        response = await self.raw_answer(envelope, deadline=False)
        return Verdict.model_validate(self.result_of(response))

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.engine._http.timeout = httpx.Timeout(None)


class PerReadTimeout(Seeded):
    """The timeout is per socket read, not a total deadline: an answer that trickles in is waited for."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        response = await self.raw_answer(envelope, deadline=False)
        return Verdict.model_validate(self.result_of(response))


# ------------------------------------------------------------------------------------- verdict bugs


class MissingAllowedIsAllow(Seeded):
    """``Allowed`` read with a default of true: an answer without it is an allow."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        result = self.result_of(await self.raw_answer(envelope))
        return self.sloppy(result, allowed=result.get("Allowed", result.get("allowed", True)))


class StringBooleans(Seeded):
    """Booleans are read by truthiness: ``"false"`` is an allow."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        return self.sloppy(self.result_of(await self.raw_answer(envelope)))


class IgnoresContentType(Seeded):
    """The content type is never checked: a verdict labelled text/html is read as if it were JSON."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        return Verdict.model_validate(self.result_of(await self.raw_answer(envelope)))


class ReadsOnlyCapitalisedBehaviour(Seeded):
    """Reads ``Behaviour`` only; today's engines send lower-case ``behaviour``, so alerts read as blocks."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        result = self.result_of(await self.raw_answer(envelope))
        return self.sloppy(result, behaviour=str(result.get("Behaviour") or "").lower())


class ReadsOnlyLowercaseBehaviour(Seeded):
    """Reads lower-case ``behaviour`` only (like Akto's egress proxy); the key's casing is unconfirmed
    (contracts, guardrails-service), and an answer spelling it ``Behaviour`` turns alerts into blocks."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        result = self.result_of(await self.raw_answer(envelope))
        return self.sloppy(result, behaviour=str(result.get("behaviour") or "").lower())


class GatewayFailOpenIsAllow(Seeded):
    """The gateway's made-up fail-open verdict (``failOpen: true``, no guardrail ran) is read as a real allow,
    so fail_closed lets unchecked traffic through while guardrails-service is down."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        return Verdict.model_validate(self.result_of(await self.raw_answer(envelope)))


class LegacyPayloadField(Seeded):
    """Sends the legacy ``payload`` field instead of ``requestPayload`` (the current service ignores it)."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        body = {k: v for k, v in json.loads(envelope.model_dump_json()).items() if k != "requestPayload"}
        body["payload"] = envelope.requestPayload
        url = self.engine._url(HTTP_PROXY_PATH, self.engine.query(guardrails=True))
        async with asyncio.timeout(self.settings.guardrail_timeout):
            response = await self.engine._http.post(url, json=body)
        return Verdict.model_validate(self.result_of(response))


class IngestsOnTheCheck(Seeded):
    """Asks for ``ingest_data=true`` on the pre-call check too, so every request is recorded twice."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        return await self.engine.check(envelope, direction="request", ingest=True)


# ------------------------------------------------------------------------------------ decision bugs


class AlertIsBlock(Seeded):
    """Blocks on ``Allowed: false`` alone, so an ``alert`` verdict blocks."""

    def blocks(self, verdict: Verdict) -> bool:
        return not verdict.allowed


class WarnIsBlock(Seeded):
    """Treats ``warn`` like ``block``."""

    def blocks(self, verdict: Verdict) -> bool:
        return verdict.blocks or verdict.behaviour.value == "warn"


class RetriesBlock(Seeded):
    """Retries the engine call when the verdict is a block (as if a block were a transient error)."""

    async def verdict(self, envelope: Envelope) -> Verdict:
        verdict = await super().verdict(envelope)
        for _ in range(2):
            if not verdict.blocks:
                break
            verdict = await super().verdict(envelope)
        return verdict


class BlocksStreamBeforeChecking(Seeded):
    """A streamed request is refused before the engine is even asked."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        if data.get("stream"):
            raise HTTPException(status_code=403, detail=DEFAULT_BLOCK_REASON)
        return await super().async_pre_call_hook(user_api_key_dict, cache, data, call_type)


class DropsBlockedIngest(Seeded):
    """Answers the block but never sends the blocked-ingest record (statusCode 403, the x-blocked-by marker)."""

    def _block(self, data: Any, reason: str) -> Any:
        raise HTTPException(status_code=403, detail=reason)


class NoPostCallIngest(Seeded):
    """The post-call entry never records the exchange."""

    def _ingest(self, data: Any, body: Any) -> None:
        return None


# -------------------------------------------------------------------------------------- masking bugs


class IgnoresModified(Seeded):
    """``Modified: true`` is ignored: the unmasked request goes to the LLM."""

    def apply_masking(self, data: dict, envelope: Envelope, verdict: Verdict) -> dict:
        return data


class PastesModifiedPayload(Seeded):
    """Pastes the decoded ``ModifiedPayload`` over the whole request dict instead of the fields it came from."""

    def apply_masking(self, data: dict, envelope: Envelope, verdict: Verdict) -> dict:
        try:
            pasted = json.loads(verdict.modified_payload)
        except ValueError:
            return data
        if isinstance(pasted, dict):
            data.update(pasted)
        return data


class ForwardsUnmappableMask(Seeded):
    """When the masking cannot be applied, the unmasked request is forwarded instead of blocked."""

    def apply_masking(self, data: dict, envelope: Envelope, verdict: Verdict) -> dict:
        try:
            changes = masked_changes(envelope.requestPayload, verdict.modified_payload)
            data.update(apply_changes(request_body(data), changes))
        except MaskingError:
            pass
        return data


# ------------------------------------------------------------------------------------- envelope bugs


class LeaksAuthorization(Seeded):
    """Copies every client header into ``requestHeaders``, the proxy key in ``Authorization`` included."""

    def envelope(self, data: dict) -> Envelope:
        envelope = super().envelope(data)
        headers = json.loads(envelope.requestHeaders)
        client = (data.get("proxy_server_request") or {}).get("headers") or {}
        headers.update({str(k).lower(): str(v) for k, v in client.items()})
        return envelope.model_copy(update={"requestHeaders": json.dumps(headers)})


class HardCodedAccountIds(AktoGuardrail):
    """Ignores ``akto_account_id`` / ``akto_vxlan_id``: every envelope says account 1000000, vxlan 0."""

    def __init__(self, **params: Any) -> None:
        params = {k: v for k, v in params.items() if k not in ("akto_account_id", "akto_vxlan_id")}
        super().__init__(**params)
