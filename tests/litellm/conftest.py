"""LiteLLM tests: every fixture comes from the akto_harness plugin (harness/pytest_plugin.py)."""
