"""A LiteLLM guardrail that does nothing: the bench's measure of what LiteLLM itself charges for having two
guardrail entries configured (hook dispatch, metrics), before any engine call is made."""

from __future__ import annotations

from typing import Any

from litellm.integrations.custom_guardrail import CustomGuardrail
from litellm.types.guardrails import GuardrailEventHooks


class NullGuardrail(CustomGuardrail):
    def __init__(self, **params: Any) -> None:
        super().__init__(
            guardrail_name=params.get("guardrail_name"),
            supported_event_hooks=[GuardrailEventHooks.pre_call, GuardrailEventHooks.post_call],
            event_hook=params.get("event_hook"),
            default_on=bool(params.get("default_on", False)),
        )

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        return data

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> None:
        return None
