"""Akto guardrails for outbound AI traffic, as a mitmproxy addon: ``mitmdump -s reference_impl/egress/addon.py``.

mitmproxy loads ``addon.py`` by file path, as a script outside this package, so it imports its siblings
by absolute name. Nothing is imported here: the payload, settings and stream modules run (and are tested)
in an environment without mitmproxy.
"""
