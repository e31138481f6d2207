"""Wrappers that run a connector's real host as a child process on loopback: a LiteLLM proxy, mitmdump
(plus the test-only router that sends provider hosts to a local fake), and the TrueFoundry endpoint."""
