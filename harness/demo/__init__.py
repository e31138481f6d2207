"""``make demo`` (``python -m harness.demo``): the fake engine and the reference connectors on loopback."""
