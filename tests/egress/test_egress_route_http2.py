"""The test router (harness/hosts/mitm_route.py) must not change what the addon under test sees.

An addon that decides by host in its response hooks (Akto's published addon does) must see the provider
host there too, also when the client speaks HTTP/2 (where the host is the ``:authority``) and the router
sends the flow to a plain-HTTP fake. A real HTTP/2 client goes through a real mitmdump here: the ``h2``
library over TLS, offering only ``h2`` (httpx offers ``http/1.1`` first through a proxy tunnel, and
mitmproxy honours the client's order, so httpx would never speak HTTP/2 to it).
"""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import h2.connection
import h2.events
import pytest

from harness.fakes.llm import FakeLLMServer
from harness.hosts.mitmdump import ROUTE_ADDON, MitmDump
from harness.process import LOOPBACK

pytestmark = pytest.mark.timeout(60)

RECORDER = Path(__file__).parent / "addons" / "record_hosts.py"
PROVIDER = "api.openai.com"


def http2_get(proxy_port: int, ca_cert: Path, host: str, path: str, timeout: float = 15.0) -> int:
    """``GET https://host/path`` over HTTP/2 through the proxy (CONNECT, then TLS offering only h2): the status."""
    with socket.create_connection((LOOPBACK, proxy_port), timeout=timeout) as raw:
        raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = raw.recv(4096)
            if not chunk:
                raise ConnectionError(f"proxy closed during CONNECT: {reply!r}")
            reply += chunk
        assert reply.split(b" ", 2)[1] == b"200", reply
        context = ssl.create_default_context(cafile=str(ca_cert))
        context.set_alpn_protocols(["h2"])
        with context.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.selected_alpn_protocol() == "h2", "the proxy must speak HTTP/2 for this test to mean anything"
            conn = h2.connection.H2Connection()
            conn.initiate_connection()
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, [(":method", "GET"), (":authority", host), (":scheme", "https"), (":path", path)],
                              end_stream=True)
            tls.sendall(conn.data_to_send())
            status = 0
            while True:
                data = tls.recv(65536)
                if not data:
                    raise ConnectionError("the proxy closed the connection before the response ended")
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = int(dict(event.headers)[b":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamReset):
                        raise ConnectionError(f"stream reset: {event.error_code!r}")
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                        return status
                tls.sendall(conn.data_to_send())


def test_an_http2_flow_routed_to_a_plain_fake_keeps_the_provider_host_for_other_addons(
    fake_llm: FakeLLMServer, fake_llm_client, mitm_confdir: Path, tmp_path: Path,
) -> None:
    record = tmp_path / "hosts.jsonl"
    options = {"route_map": f"{PROVIDER}=http://{LOOPBACK}:{fake_llm.port}", "connection_strategy": "lazy"}
    with MitmDump([RECORDER, ROUTE_ADDON], options=options, env={"RECORD_HOSTS_FILE": str(record)},
                  confdir=mitm_confdir) as mitm:
        status = http2_get(mitm.port, mitm.ca_cert, PROVIDER, "/v1/models")
    assert status == 200
    assert fake_llm_client.last_request().path == "/v1/models", "the router sent the flow to the local fake"
    seen = {entry["hook"]: entry for entry in map(json.loads, record.read_text().splitlines())}
    assert set(seen) == {"request", "responseheaders", "response"}, seen
    assert seen["request"]["http_version"] == "HTTP/2.0"
    for hook in ("responseheaders", "response"):
        assert seen[hook]["pretty_host"] == PROVIDER, f"{hook} hook: {seen[hook]}"
        assert seen[hook]["authority"] == PROVIDER, f"{hook} hook: {seen[hook]}"
