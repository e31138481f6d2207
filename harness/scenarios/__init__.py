"""Declarative contract scenarios: one YAML per behaviour, run against every connector in its real host.

``model`` (the pydantic Scenario), ``runner`` (run one scenario against one connector instance),
``connectors`` (the small adapter interface and the adapters), ``report`` (JUnit XML, Markdown matrix),
``cli`` (``akto-harness scenarios run``).
"""
