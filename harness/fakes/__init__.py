"""Fakes of the services a connector talks to besides Akto: LLM providers and the TrueFoundry gateway.

Each runs as a real server on loopback (``python -m harness.fakes.<name>``), scriptable at run time, so a
connector under test sees real sockets and real wire formats. The fake Akto engine itself is ``mock_akto``.
"""
