"""Test-only mitmproxy addon: connect to a local fake instead of the real provider, flow untouched.

Load it after the addon under test (``-s addon.py -s harness/mitm_route.py``) with
``--set route_map=api.openai.com=127.0.0.1:PORT,api.anthropic.com=127.0.0.1:PORT``. Only the TCP
destination changes (like an /etc/hosts entry), in ``server_connect``: the request keeps its URL, Host
header, scheme and TLS server name, so the addon under test sees exactly what it would see in production
(unlike ``map_remote``, which rewrites the Host). The fake must then speak TLS with a certificate for the
provider's host name; trust its CA with ``--set ssl_verify_upstream_trusted_ca=ca.pem``.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, exceptions
from mitmproxy.proxy import server_hooks

log = logging.getLogger("akto.harness.route")


def parse_route_map(text: str) -> dict[str, tuple[str, int]]:
    routes: dict[str, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, sep, target = item.partition("=")
        ip, colon, port = target.rpartition(":")
        if not sep or not colon or not port.isdigit() or not host.strip() or not ip:
            raise exceptions.OptionsError(f"route_map: {item!r} is not host=ip:port")
        routes[host.strip().lower()] = (ip, int(port))
    return routes


class RouteToLocal:
    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, int]] = {}

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("route_map", str, "", "host=ip:port,... : connect there instead (tests only)")

    def configure(self, updated: set[str]) -> None:
        if "route_map" in updated:
            self.routes = parse_route_map(ctx.options.route_map)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        if address and address[0].lower() in self.routes:
            data.server.address = self.routes[address[0].lower()]
            log.debug("route: %s:%s -> %s:%s", *address, *data.server.address)


addons = [RouteToLocal()]
