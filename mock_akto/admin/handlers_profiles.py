"""Admin handlers for Akto contract profiles: which version of Akto's contract a namespace plays."""

from ..profiles import PROFILES, AktoProfile, ProfileChoice, UnknownProfile
from .deps import NS, invalid_field


async def list_profiles() -> list[AktoProfile]:
    """Every profile the engine can play (``current`` first: the default)."""
    return list(PROFILES.values())


async def get_profile(ns: NS) -> AktoProfile:
    """The profile this namespace plays now."""
    return ns.profile


async def set_profile(ns: NS, choice: ProfileChoice) -> AktoProfile:
    """Play another profile (optionally with another ``GUARDRAILS_CLIENT_TIMEOUT_MS``) until the next reset."""
    try:
        ns.profile = choice.resolve()
    except UnknownProfile as exc:
        raise invalid_field("name", choice.name, str(exc)) from None
    return ns.profile
