"""How long a client may reuse an idle HTTP/1.1 connection to a service on the guardrail path.

Not a field of the contract but a fact every client of it needs: a server closes idle keep-alive
connections after its own timeout (uvicorn's default, which hosts LiteLLM's proxy and most Python
guardrail endpoints: 5 s; the engine's is not in Akto's contract). A POST written into a connection the
server is closing gets no answer and is never retried (it may have been processed), so the call fails as
"unreachable" for no fault of anyone's. Our clients (the connectors' engine clients, the fake engine's
admin client, the load users, the TrueFoundry gateway simulator) close idle connections past this instead.
"""

#: Below uvicorn's 5 s keep-alive by more than a busy event loop is late.
IDLE_KEEPALIVE_S = 4.0
