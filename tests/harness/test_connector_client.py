"""The harness's client side of a connector: what its clock counts."""

from __future__ import annotations

import ssl

from harness.connectors.http import tls_context


def test_the_client_tls_context_is_built_once_and_verifies() -> None:
    # Built per request, it cost 20-70 ms of the client's clock (issue 11: LiteLLM fail_open at 1.26 s
    # for a 1 s timeout, 1.00-1.02 s of it in the proxy); reused, it must still verify.
    context = tls_context()
    assert tls_context() is context
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
