"""Shipped locustfiles: run each with plain ``locust -f <path>`` (``akto-harness load path NAME`` prints it).

``engine.py`` the engine direct (closed loop) · ``engine_open.py`` the same at a constant arrival rate (open
model) · ``connector.py`` through a connector in its real host · ``target.py`` any URL with a body template · ``target_open.py`` the same at a constant arrival rate.
"""
