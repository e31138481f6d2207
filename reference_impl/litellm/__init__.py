"""Akto guardrail for the LiteLLM proxy: configure ``guardrail: reference_impl.litellm.guardrail.AktoGuardrail``.

The class is not imported here on purpose: importing litellm starts threads, so the package stays cheap to
import for the parts that do not need it (envelope building, start-up checks).
"""
