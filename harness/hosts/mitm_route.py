"""Test-only mitmproxy addon: send provider traffic to a local fake while clients use the real URLs.

Load it after the addon under test (``-s addon.py -s harness/hosts/mitm_route.py``) with
``--set route_map=HOST=TARGET,...``. Two kinds of target:

* ``api.openai.com=127.0.0.1:PORT``: only the TCP destination changes (like an /etc/hosts entry), in
  ``server_connect``. URL, Host header, scheme and TLS server name stay as the client sent them, so the addon
  under test sees production traffic. The fake must speak TLS with a certificate for the provider's name;
  trust its CA with ``--set ssl_verify_upstream_trusted_ca=ca.pem``.
* ``api.openai.com=http://127.0.0.1:PORT``: for a plain-HTTP fake. The flow's connection target (scheme,
  host, port) is changed in the ``request`` hook, after the addon under test has seen it (hence: load this
  addon last). The Host header and HTTP/2 ``:authority`` stay as the client sent them, so ``pretty_host`` is
  still the provider in every later hook; ``request.host`` is the fake's address from then on. mitmdump must
  run with ``--set connection_strategy=lazy`` so that nothing dials the real host.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy import server_hooks

log = logging.getLogger("akto.harness.route")


Route = tuple[str, int, bool]  # ip, port, plain HTTP


def parse_route_map(text: str) -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, sep, target = item.partition("=")
        plain = target.startswith("http://")
        ip, colon, port = target.removeprefix("http://").rpartition(":")
        if not sep or not colon or not port.isdigit() or not host.strip() or not ip:
            raise exceptions.OptionsError(f"route_map: {item!r} is not host=ip:port or host=http://ip:port")
        routes[host.strip().lower()] = (ip, int(port), plain)
    return routes


class RouteToLocal:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("route_map", str, "", "host=ip:port or host=http://ip:port, ... (tests only)")

    def configure(self, updated: set[str]) -> None:
        if "route_map" in updated:
            self.routes = parse_route_map(ctx.options.route_map)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        route = self.routes.get(address[0].lower()) if address else None
        if route is not None and not route[2]:
            data.server.address = route[:2]
            log.debug("route: %s:%s -> %s:%s", *address, *route[:2])

    def request(self, flow: http.HTTPFlow) -> None:
        host = flow.request.pretty_host.lower()
        route = self.routes.get(host)
        if route is None or not route[2] or flow.response is not None:
            return
        # mitmdump dials (request.host, request.port), with TLS when the scheme is https: change just those.
        # The public host/port setters also rewrite the Host header and, on HTTP/2, the :authority, which an
        # addon that decides by host reads again in its response hooks (Akto's does); the data fields do not.
        flow.request.scheme = "http"
        flow.request.data.host, flow.request.data.port = route[0], route[1]


addons = [RouteToLocal()]
