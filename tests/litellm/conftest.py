"""LiteLLM tests: the session's fake LLM, the scenario instance pool, and the LiteLLM proxy factory."""

from harness.fixtures_llm import fake_llm  # noqa: F401
from harness.litellm_proxy import litellm_proxy_factory  # noqa: F401
from harness.scenarios.pytest_support import scenario_pool  # noqa: F401
