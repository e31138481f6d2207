"""Admin handlers for the namespace's policies and the bundled policy presets."""

from typing import Annotated

from fastapi import Body, HTTPException

from ..errors import PolicyLoadError
from ..policies import Policy, available_presets, load_preset
from .deps import NS, policy_set


async def list_policies(ns: NS) -> list[Policy]:
    return list(ns.policies.policies)


async def replace_policies(ns: NS, policies: Annotated[list[Policy], Body()]) -> list[Policy]:
    ns.policies = policy_set(policies)
    return list(ns.policies.policies)


async def add_policy(ns: NS, policy: Policy) -> Policy:
    """Add a policy (one with the same name is replaced in place)."""
    current_policies = list(ns.policies.policies)
    for index, existing in enumerate(current_policies):
        if existing.name == policy.name:
            current_policies[index] = policy
            break
    else:
        current_policies.append(policy)
    ns.policies = policy_set(current_policies)
    return policy


async def delete_policy(ns: NS, name: str) -> None:
    kept = [p for p in ns.policies.policies if p.name != name]
    if len(kept) == len(ns.policies.policies):
        raise HTTPException(404, f"no policy named {name!r} in namespace {ns.name!r}")
    ns.policies = policy_set(kept)


async def list_presets() -> list[str]:
    return available_presets()


async def use_preset(ns: NS, name: str) -> list[Policy]:
    """Replace the namespace's policies with a bundled preset (mock_akto/presets/<name>.yaml)."""
    try:
        ns.policies = load_preset(name)
    except PolicyLoadError as exc:
        raise HTTPException(404, str(exc)) from None
    return list(ns.policies.policies)
