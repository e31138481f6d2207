"""Test-only mitmproxy addon: records what a host-deciding addon sees of each flow, in its request and
response hooks, as JSON lines in ``$RECORD_HOSTS_FILE``. Loaded before the router, as an addon under test is."""

from __future__ import annotations

import json
import os

from mitmproxy import http


def _record(hook: str, flow: http.HTTPFlow) -> None:
    seen = {
        "hook": hook,
        "http_version": flow.request.http_version,
        "host": flow.request.host,
        "pretty_host": flow.request.pretty_host,
        "host_header": flow.request.host_header,
        "authority": flow.request.authority,
        "scheme": flow.request.scheme,
    }
    with open(os.environ["RECORD_HOSTS_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(seen) + "\n")


class RecordHosts:
    def request(self, flow: http.HTTPFlow) -> None:
        _record("request", flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        _record("responseheaders", flow)

    def response(self, flow: http.HTTPFlow) -> None:
        _record("response", flow)


addons = [RecordHosts()]
