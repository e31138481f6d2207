"""The aiohttp transport under the shared engine client classifies every broken engine answer exactly
as httpx's own transport does: same EngineFailure kind for each real socket-level fault of the engine."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from akto_wire import Envelope
from reference_impl.core.aiohttp_transport import AiohttpTransport
from reference_impl.core import EngineClient, EngineFailure, EngineSettings, FailureKind

pytestmark = pytest.mark.timeout(60)

ENVELOPE = Envelope.build(request_payload='{"messages": [{"role": "user", "content": "hello"}]}',
                          request_headers={"host": "app.truefoundry.com"})


async def _check(url: str, transport: str, timeout: float) -> Any:
    settings = EngineSettings(akto_base_url=url, guardrail_timeout=timeout, connector="truefoundry")
    client = EngineClient(settings, transport=AiohttpTransport() if transport == "aiohttp" else None)
    try:
        return await client.check(ENVELOPE)
    except EngineFailure as failure:
        return failure.kind
    finally:
        await client.aclose()


@pytest.mark.parametrize("fault, kind", [
    (None, None),
    ({"type": "connection_reset_by_peer"}, FailureKind.UNREACHABLE),
    ({"type": "empty_response"}, FailureKind.UNREACHABLE),
    ({"type": "random_data_then_close", "bytes": 64, "seed": 1}, FailureKind.UNREACHABLE),
    ({"type": "truncated_body", "fraction": 0.5}, FailureKind.UNREACHABLE),
    ({"type": "down"}, FailureKind.UNREACHABLE),
    ({"type": "hang", "max_ms": 5000}, FailureKind.TIMEOUT),
    ({"type": "chunked_dribble", "chunks": 20, "total_ms": 3000}, FailureKind.TIMEOUT),
    ({"type": "status", "status": 502}, FailureKind.SERVER_ERROR),
    ({"type": "status", "status": 401}, FailureKind.AUTH),
    ({"type": "html_body"}, FailureKind.UNREADABLE),
    ({"type": "non_json_body"}, FailureKind.UNREADABLE),
])
def test_both_transports_classify_alike(akto: Any, fault: dict[str, Any] | None, kind: FailureKind | None) -> None:
    if fault is not None:
        akto.client.add_fault(fault)
    results = {name: asyncio.run(_check(akto.url, name, timeout=0.5)) for name in ("httpx", "aiohttp")}
    if kind is None:
        assert all(r.allowed for r in results.values()), results
    else:
        assert results == {"httpx": kind, "aiohttp": kind}
