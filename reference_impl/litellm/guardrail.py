"""The reference Akto guardrail for the LiteLLM proxy: a thin adapter over ``reference_impl.core``.

Loaded from config.yaml as two entries (see ``reference_impl/README.md``)::

    guardrails:
      - guardrail_name: akto-validate
        litellm_params:
          guardrail: reference_impl.litellm.guardrail.AktoGuardrail
          mode: pre_call
          akto_base_url: os.environ/AKTO_GUARDRAIL_API_BASE
          akto_api_key: os.environ/AKTO_API_KEY
          default_on: true
      - guardrail_name: akto-ingest
        litellm_params:
          guardrail: reference_impl.litellm.guardrail.AktoGuardrail
          mode: post_call
          ...

Why classic hooks (``async_pre_call_hook`` / ``async_post_call_success_hook`` / the streaming iterator
hook) and not LiteLLM's unified ``apply_guardrail``: the unified path runs the response check on sampled
stream chunks and holds the stream while it waits; we want the post_call entry to never delay anything,
and the pre_call entry to see (and mask) the request dict itself.

Decisions (docs/litellm.md): one awaited engine call per request; every failure goes through
``core.on_failure`` (a 401/403 from the engine never fails open); ``Modified`` is applied leaf for leaf
with ``core.masking`` or the request is blocked; ingestion is fire-and-forget and bounded.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Mapping, NoReturn
from urllib.parse import urlsplit

from fastapi import HTTPException
from litellm.integrations.custom_guardrail import CustomGuardrail
from litellm.types.guardrails import GuardrailEventHooks

from akto_wire import Envelope, Verdict

from ..core import ConfigError, EngineClient, EngineFailure, EngineSettings, on_failure
from ..core.masking import MaskingError, apply_changes, masked_changes
from .envelope import (
    blocked_envelope,
    has_text,
    request_body,
    request_envelope,
    response_body,
    response_envelope,
)
from .startup import GuardrailStartupError, check_sibling_entries
from .stream import StreamCollector
from ..core.http1_transport import Http1Transport

log = logging.getLogger("akto.litellm")

DEFAULT_BLOCK_REASON = "Blocked by Akto Guardrails"
MASKING_FAILED_REASON = "Content masked by Akto guardrail policy could not be applied"


def load_settings(params: Mapping[str, Any]) -> EngineSettings:
    """Validated settings from the entry's ``litellm_params`` (env fallbacks included).

    Raises :class:`ConfigError` naming the parameter, which makes the proxy refuse to start.
    """
    settings = EngineSettings.from_params(params, connector="litellm")
    if settings.akto_api_key is None or not settings.akto_api_key.get_secret_value():
        # Worded without a quote after the name: LiteLLM's log redaction eats "api_key': ...".
        raise ConfigError("akto connector setting akto_api_key is required (or set AKTO_API_KEY)")
    return settings


def plain_http_off_host(url: str) -> bool:
    """True for ``http://`` to anything but loopback (where a sidecar engine on plain HTTP is normal)."""
    host = urlsplit(url).hostname or ""
    return url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1")


class GuardrailUnavailable(Exception):
    """The fail_closed answer (``status_code``, 503, with ``message`` as the body's error message).

    Why not FastAPI's ``HTTPException`` (which the block, a 403, still uses): LiteLLM 1.106.2 sends every
    5xx ``HTTPException`` a guardrail raises through its proxy-only failure logging, which formats the
    traceback twice and runs its secret-redaction regexes over it (about 4 ms of the proxy's CPU per 503,
    half of its cost; docs/litellm.md, "The fail_closed 503"). Any other exception that carries
    ``status_code`` is answered with that status and its ``message`` by the same handler, without that step.
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class AktoGuardrail(CustomGuardrail):
    """One config entry: ``mode: pre_call`` validates (and may block or mask), ``mode: post_call`` ingests."""

    def __init__(self, **params: Any) -> None:
        # A ValueError here would make LiteLLM start WITHOUT this guardrail (see startup.py).
        try:
            check_sibling_entries(type(self).__name__, load_settings)
            self.settings = load_settings(params)
        except ConfigError as exc:
            raise GuardrailStartupError(f"guardrail {params.get('guardrail_name')!r}: {exc}") from None
        self.engine = EngineClient(self.settings, transport=Http1Transport.for_settings(self.settings))
        super().__init__(
            guardrail_name=params.get("guardrail_name"),
            supported_event_hooks=[GuardrailEventHooks.pre_call, GuardrailEventHooks.post_call],
            event_hook=params.get("event_hook"),
            default_on=bool(params.get("default_on", False)),
        )
        log.info(
            "akto: %s (%s) -> %s, fallback %s, timeout %gs",
            self.guardrail_name, self.event_hook, self.settings.akto_base_url,
            self.settings.unreachable_fallback.value, self.settings.guardrail_timeout,
        )
        if plain_http_off_host(self.settings.akto_base_url):
            log.warning("akto: %s is plain HTTP to another host: the API key and the traffic travel unencrypted",
                        self.settings.akto_base_url)

    async def aclose(self) -> None:
        """Drain background ingestion (bounded) and close the connection pool."""
        await self.engine.aclose()

    # --- pre_call: one awaited check -------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        if not has_text(data):
            return data
        envelope = request_envelope(data, self.settings)
        # The deadline starts when the proxy received the request (LiteLLM stamps it), not when this hook
        # runs: under load the proxy queues requests before its hooks run.
        arrived_at = (data.get("proxy_server_request") or {}).get("arrival_time")
        budget = self.engine.budget(arrived_at if isinstance(arrived_at, (int, float)) else None)
        try:
            verdict = await self.engine.check(envelope, direction="request", ingest=False, budget=budget)
        except EngineFailure as failure:
            decision = on_failure(failure, self.settings.unreachable_fallback)
            key = f"request {failure.kind.value}"
            if decision.allow:
                self.engine.failure_log.warning(key, "akto: engine call failed (%s), failing open: %s", failure.kind.value, failure)
                return data
            self.engine.failure_log.error(key, "akto: engine call failed (%s), answering %d: %s", failure.kind.value,
                                          decision.status, failure)
            raise GuardrailUnavailable(decision.status, decision.message) from None
        if verdict.blocks:
            self._block(data, verdict.reason or DEFAULT_BLOCK_REASON)
        if not verdict.allowed:
            log.info("akto: %r verdict lets the request through: %s", verdict.behaviour.value, verdict.reason)
        if verdict.modified:
            return self._masked(data, envelope, verdict)
        return data

    def _block(self, data: Mapping[str, Any], reason: str) -> NoReturn:
        """Record the blocked request in the background, then answer 403 with the reason."""
        self.engine.ingest_in_background(blocked_envelope(data, reason, self.settings), "blocked-ingest")
        raise HTTPException(status_code=403, detail=reason)

    def _masked(self, data: dict, envelope: Envelope, verdict: Verdict) -> dict:
        """Apply the engine's redactions to the request fields it saw; block when they cannot be mapped."""
        try:
            changes = masked_changes(envelope.requestPayload, verdict.modified_payload)
            data.update(apply_changes(request_body(data), changes))
        except MaskingError as exc:
            log.warning("akto: cannot apply the engine's masking (%s); blocking", exc)
            self._block(data, MASKING_FAILED_REASON)
        return data

    # --- post_call: fire-and-forget ingest -------------------------------------------------------------

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> None:
        self._ingest(data, response_body(response))

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: AsyncIterator[Any], request_data: dict
    ) -> AsyncIterator[Any]:
        """Pass every chunk on at once; ingest the assembled response after the last one."""
        collector = StreamCollector()
        async for chunk in response:
            collector.add(chunk)
            yield chunk
        self._ingest(request_data, collector.body())

    def _ingest(self, data: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        envelope = response_envelope(data, body, self.settings)
        self.engine.ingest_in_background(envelope, "post-call ingest", guardrails=True)
