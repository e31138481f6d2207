"""Akto contract profiles: which version of Akto's contract the engine plays, per namespace.

Akto's contract moves (../shared/contracts, named here by source), and connectors meet every version in
the field. A profile is one typed value holding each behaviour that changed; :data:`PROFILES` is the only
list of them, read by the engine (``--akto-profile``), the admin API (``/__admin/akto-profile``), the
Python client and the CLI (``mock-akto profile``). ``current`` is the default.

What each switch changes:

``legacy_payload``
    ``/api/validate/request`` with the older ``payload`` field instead of ``requestPayload``. ``ignored``
    (guardrails-service today, contract 1.2: it binds ``requestPayload`` only): 200 ``Allowed: true``,
    ``Reason: "No request body provided"``, a silent allow. ``evaluated``: the field is read as the request.
``gateway_fail_open``
    What the ingestion gateway (``/api/http-proxy``) does when guardrails-service is slower than
    ``guardrails_client_timeout_ms`` (``GUARDRAILS_CLIENT_TIMEOUT_MS``, default 3000, minimum 500) or fails
    (contract 1.1 and 1.4). ``on`` (since 2026-06-29): at the timeout, HTTP 200 with ``Allowed: true``,
    ``failOpen: true`` and ``error``. ``legacy`` (January to June 2026): the lower-case-only
    ``allowed: false`` map. ``off``: the gateway waits as long as guardrails-service takes, so the
    connector's own timeout decides (a deployment whose ``GUARDRAILS_CLIENT_TIMEOUT_MS`` exceeds it).
    Only the ``slow_guardrails`` fault models guardrails-service; ``fixed_delay`` and the other faults act on
    the ingestion service's own answer (network, gateway) and mean the same under every profile.
``truefoundry_sync``
    ``/api/http-proxy/truefoundry`` (truefoundry.md 7). ``ignored`` (since 2026-02-17, commit 42a1f3fa43):
    every input call is checked now. ``honoured`` (2026-02-09 to 02-17, commit fb77965779): only
    ``sync=true`` checks now; ``sync`` false or absent makes an input call a no-op and an output call an
    asynchronous check and ingestion.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigurationError

DEFAULT_PROFILE = "current"
#: ``GUARDRAILS_CLIENT_TIMEOUT_MS``: its default and the minimum the gateway accepts (contract 1.1).
DEFAULT_GUARDRAILS_CLIENT_TIMEOUT_MS = 3000
MIN_GUARDRAILS_CLIENT_TIMEOUT_MS = 500
MAX_GUARDRAILS_CLIENT_TIMEOUT_MS = 3_600_000

LegacyPayload = Literal["ignored", "evaluated"]
GatewayFailOpen = Literal["on", "legacy", "off"]
TrueFoundrySync = Literal["ignored", "honoured"]
TimeoutMs = Field(DEFAULT_GUARDRAILS_CLIENT_TIMEOUT_MS, ge=MIN_GUARDRAILS_CLIENT_TIMEOUT_MS,
                  le=MAX_GUARDRAILS_CLIENT_TIMEOUT_MS,
                  description="GUARDRAILS_CLIENT_TIMEOUT_MS: how long the gateway waits for guardrails-service")


class UnknownProfile(ConfigurationError):
    """A profile name that is not in :data:`PROFILES` (the message lists the known ones)."""


class AktoProfile(BaseModel):
    """One version of Akto's contract, as the engine plays it (see the module docstring for each switch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    #: Where the behaviour is documented (contract section, commit, date).
    source: str
    legacy_payload: LegacyPayload = "ignored"
    gateway_fail_open: GatewayFailOpen = "on"
    guardrails_client_timeout_ms: int = TimeoutMs
    truefoundry_sync: TrueFoundrySync = "ignored"

    @property
    def gateway_timeout_s(self) -> float | None:
        """Seconds after which the gateway gives up on guardrails-service; None when it waits (``off``)."""
        return None if self.gateway_fail_open == "off" else self.guardrails_client_timeout_ms / 1000


_CURRENT = AktoProfile(
    name=DEFAULT_PROFILE,
    description="Akto today: requestPayload only, gateway fail-open after 3 s, TrueFoundry sync ignored",
    source="contracts 1.1-1.4 (gateway fail-open since 2026-06-29); truefoundry.md 7.1 (42a1f3fa43, 2026-02-17)",
)

#: Every profile by name: the only list (engine, admin API, client and CLI all read it).
PROFILES: dict[str, AktoProfile] = {p.name: p for p in (
    _CURRENT,
    _CURRENT.model_copy(update={
        "name": "gateway-fail-open-off",
        "description": "as current, but the gateway waits for a slow guardrails-service: the connector's timeout decides",
        "source": "contract 1.1 (GUARDRAILS_CLIENT_TIMEOUT_MS set above the connector's timeout)",
        "gateway_fail_open": "off"}),
    _CURRENT.model_copy(update={
        "name": "gateway-2026-h1",
        "description": "gateway of January to June 2026: on a slow guardrails-service, lower-case allowed:false",
        "source": "contract 1.4 (older code, Jan-Jun 2026)",
        "gateway_fail_open": "legacy"}),
    _CURRENT.model_copy(update={
        "name": "validate-legacy-payload",
        "description": "a guardrails-service that reads the older `payload` field of /api/validate/request",
        "source": "contract 1.2 (`payload` is legacy; today only /validate/response reads it)",
        "legacy_payload": "evaluated"}),
    _CURRENT.model_copy(update={
        "name": "truefoundry-2026-02",
        "description": "TrueFoundry endpoint of 2026-02-09..17: only sync=true checks input; absent means async",
        "source": "truefoundry.md 7.2 (fb77965779, 2026-02-09, to 42a1f3fa43)",
        "truefoundry_sync": "honoured"}),
)}


class ProfileChoice(BaseModel):
    """What a caller picks (admin API body, scenario field): a profile by name, optionally with another
    ``GUARDRAILS_CLIENT_TIMEOUT_MS`` (tests use the minimum, 500 ms, to stay fast)."""

    model_config = ConfigDict(extra="forbid")

    name: str = DEFAULT_PROFILE
    guardrails_client_timeout_ms: int | None = Field(None, ge=MIN_GUARDRAILS_CLIENT_TIMEOUT_MS,
                                                     le=MAX_GUARDRAILS_CLIENT_TIMEOUT_MS)

    def resolve(self) -> AktoProfile:
        """The profile this choice means (:class:`UnknownProfile` for a name not in :data:`PROFILES`)."""
        profile = get_profile(self.name)
        if self.guardrails_client_timeout_ms is not None:
            profile = profile.model_copy(update={"guardrails_client_timeout_ms": self.guardrails_client_timeout_ms})
        return profile


def get_profile(name: str) -> AktoProfile:
    """The profile called ``name``; :class:`UnknownProfile` naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(f"unknown Akto profile {name!r} (known: {', '.join(PROFILES)})") from None
