"""Egress addon tests: a real mitmdump, real clients, the fake engine and the fake providers on loopback.

Every fixture comes from the akto_harness plugin (harness/pytest_plugin.py)."""
