"""``litellm-builtin``: LiteLLM's own ``guardrail: akto`` (users' setup today) in the same real proxy and
configuration as the reference hook, for an honest side-by-side matrix."""

from __future__ import annotations

from harness.connectors.base import Answers
from harness.connectors.litellm import LiteLLMConnector
from harness.connectors.registry import register

#: The guardrail name LiteLLM's built-in Akto integration registers.
BUILTIN_GUARDRAIL = "akto"


@register
class LiteLLMBuiltinConnector(LiteLLMConnector):
    name = "litellm-builtin"
    host = LiteLLMConnector.host
    #: LiteLLM answers a built-in guardrail's block with 400; an unreachable engine under fail_closed with 503.
    answers = Answers(blocked=400, unreachable=503)

    def guardrail(self) -> str:
        return BUILTIN_GUARDRAIL
