"""Fakes of the services a connector talks to besides Akto: LLM providers and the TrueFoundry gateway.

Each runs as a real server on loopback (``python -m harness.fakes.<name>``), scriptable at run time, so a
connector under test sees real sockets and real wire formats. The fake Akto engine itself is ``mock_akto``.
"""

#: Seconds a fake keeps an idle keep-alive connection open: longer than client pools keep them (LiteLLM's
#: upstream aiohttp pool 120 s, aiohttp's default 15 s, httpx's 5 s), so a client never writes a request
#: into a connection the fake is closing (no answer, never retried for a POST: LiteLLM answered such a
#: call 500). uvicorn's own default is 5 s.
FAKE_KEEP_ALIVE_S = 150.0
