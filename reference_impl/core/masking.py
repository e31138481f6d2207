"""Applying the engine's ``ModifiedPayload`` to the real traffic, leaf for leaf.

The rule (the same for every connector): the engine returns the text it evaluated with redactions made in
place. We decode both the text we sent and the one we got back the same way (JSON strings unwrapped,
``{"body": ...}`` unwrapped), walk their string leaves, and require the same leaf paths on both sides.
Each changed leaf becomes a ``path -> new value`` change that the host adapter applies to its own request
object, so every field the engine never saw (``model``, ``temperature``, tools ...) is kept as it was.

Anything else (different structure, non-JSON text, a changed non-string leaf) is a :class:`MaskingError`:
the connector must not guess, and blocks instead of forwarding unmasked text.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Path = tuple[str | int, ...]

#: What a connector tells the client when it blocks because a ``ModifiedPayload`` cannot be applied.
MASKING_FAILED_REASON = "Content masked by Akto guardrail policy could not be applied"


class MaskingError(ValueError):
    """The engine's modified payload cannot be mapped onto the traffic safely."""


def decode_layers(text: str) -> Any:
    """Decode JSON text, unwrapping JSON-in-a-string and ``{"body": ...}`` wrappers (LiteLLM's encoding)."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        raise MaskingError("payload is not JSON") from None
    for _ in range(4):  # bounded: a payload is at most double-encoded plus a body wrapper
        if isinstance(value, dict) and set(value) == {"body"}:
            value = value["body"]
            continue
        if isinstance(value, str):
            try:
                value = json.loads(value)
                continue
            except ValueError:
                break
        break
    return value


def string_leaves(value: Any, path: Path = ()) -> dict[Path, Any]:
    """Every scalar leaf of a JSON value by its path (strings are what masking may change)."""
    if isinstance(value, dict):
        leaves: dict[Path, Any] = {}
        for key, item in value.items():
            leaves.update(string_leaves(item, (*path, key)))
        return leaves
    if isinstance(value, list):
        leaves = {}
        for index, item in enumerate(value):
            leaves.update(string_leaves(item, (*path, index)))
        return leaves
    return {path: value}


def masked_changes(sent_payload: str, modified_payload: str) -> dict[Path, str]:
    """The string leaves the engine changed, as ``path -> masked value``.

    Paths are relative to the decoded payload (e.g. ``("messages", 0, "content")``).
    """
    before = string_leaves(decode_layers(sent_payload))
    after = string_leaves(decode_layers(modified_payload))
    if before.keys() != after.keys():
        raise MaskingError("modified payload has a different structure from the payload sent")
    changes: dict[Path, str] = {}
    for path, old in before.items():
        new = after[path]
        if new == old:
            continue
        if not isinstance(old, str) or not isinstance(new, str):
            raise MaskingError(f"modified payload changed a non-text value at {_show(path)}")
        changes[path] = new
    return changes


def apply_changes(document: Any, changes: dict[Path, str], prefix: Path = ()) -> Any:
    """A copy of ``document`` with each change applied at ``prefix + path``."""
    result = copy.deepcopy(document)
    for path, value in changes.items():
        full = (*prefix, *path)
        if not full:
            return value
        parent = result
        try:
            for step in full[:-1]:
                parent = parent[step]
            if not isinstance(parent[full[-1]], str):
                raise MaskingError(f"no text at {_show(full)} in the traffic")
            parent[full[-1]] = value
        except (KeyError, IndexError, TypeError):
            raise MaskingError(f"no text at {_show(full)} in the traffic") from None
    return result


def _show(path: Path) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path) or "(root)"
