"""A TrueFoundry AI gateway simulator: it calls custom guardrail URLs the way TrueFoundry's gateway does.

``python -m harness.fakes.truefoundry_gateway --port P --llm-url URL`` serves it; :mod:`.client` starts and
drives it from tests; :mod:`.guardrails` is the per-call contract; :mod:`.matrix` is the expected-outcome
table the TrueFoundry scenarios and docs are rendered from.
"""
