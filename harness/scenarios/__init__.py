"""Declarative contract scenarios: one YAML per behaviour, run against every connector in its real host.

``model`` (the pydantic Scenario), ``runner`` (run one scenario against one connector instance),
``report`` (JUnit XML, Markdown matrix), ``cli`` (``akto-harness scenarios run``), ``pytest_support``.
The connectors themselves are in :mod:`harness.connectors` (one registry).
"""
