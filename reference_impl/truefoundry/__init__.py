"""Akto's TrueFoundry guardrail endpoint as an ASGI service: ``python -m reference_impl.truefoundry --help``."""
