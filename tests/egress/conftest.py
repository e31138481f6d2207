"""Egress addon tests: a real mitmdump, real clients, the fake engine and the fake providers on loopback."""

from harness.fixtures_llm import *  # noqa: F401,F403  (fake_llm: a plain-HTTP server for non-AI traffic)
from harness.fixtures_mitm import *  # noqa: F401,F403
from harness.scenarios.pytest_support import scenario_pool  # noqa: F401,E402
