"""Redaction in place: the evaluated field text with each matched substring swapped for a token.

Connectors decode ``ModifiedPayload`` the way they encoded the field (LiteLLM v4 compares string leaves,
custom_hooks takes ``body``, the egress addon forwards it verbatim), so the payload must keep its structure
leaf for leaf: only the matched text changes. The matches come from decoded text, while the field may be
JSON (or JSON inside JSON), so a match is looked for as written and in its JSON-escaped forms, and the
result is checked to still decode to the same shape; a replacement that would break it (a match that
straddles an escape sequence, a key or a number) is skipped rather than corrupting the payload.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from mock_akto.extract import MAX_DEPTH, decode_json_container

__all__ = ["redact_in_place"]

#: Printable ASCII without ``"`` and ``\``: text JSON encoders write as is, at any depth of encoding.
_NOTHING_TO_ESCAPE = re.compile(r'[ !#-\[\]-~]*')


def redact_in_place(field_text: str, replacements: Mapping[str, str]) -> str:
    """``field_text`` with every occurrence of each key of ``replacements`` replaced by its value.

    Longer matches go first so a match inside another one cannot split it.
    """
    if not replacements:
        return field_text
    originals = sorted(replacements, key=len, reverse=True)
    redacted = field_text
    for original in originals:
        redacted = _replace_all_forms(redacted, original, replacements[original])
    if redacted == field_text:
        return field_text
    tree = decode_json_container(field_text)
    if tree is None or _same_shape(tree, decode_json_container(redacted), 0):
        return redacted
    # Some replacement broke the structure: keep only those that do not.
    redacted = field_text
    for original in originals:
        candidate = _replace_all_forms(redacted, original, replacements[original])
        if candidate != redacted and _same_shape(tree, decode_json_container(candidate), 0):
            redacted = candidate
    return redacted


def _replace_all_forms(text: str, original: str, token: str) -> str:
    for form in _encoded_forms(original):
        if form in text:
            text = text.replace(form, token)
    return text


def _encoded_forms(original: str) -> list[str]:
    """How ``original`` can appear in the field: as is, JSON-escaped once (single-encoded payloads) and
    twice (LiteLLM's double-encoded body), with and without ``\\uXXXX`` escapes for non-ASCII."""
    if _NOTHING_TO_ESCAPE.fullmatch(original):
        return [original]
    forms = dict.fromkeys([original])
    layer = [original]
    for _ in range(2):
        layer = [
            json.dumps(text, ensure_ascii=ascii_only)[1:-1] for text in layer for ascii_only in (True, False)
        ]
        forms.update(dict.fromkeys(layer))
    return list(forms)


def _same_shape(original: Any, redacted: Any, depth: int) -> bool:
    """Same keys, list lengths and non-string values; strings may differ, but a string that held JSON
    must still hold JSON of the same shape."""
    if depth > MAX_DEPTH:
        return original == redacted
    if isinstance(original, str):
        if not isinstance(redacted, str):
            return False
        inner = decode_json_container(original)
        if inner is None:
            return decode_json_container(redacted) is None
        return _same_shape(inner, decode_json_container(redacted), depth + 1)
    if isinstance(original, dict):
        return (
            isinstance(redacted, dict)
            and original.keys() == redacted.keys()
            and all(_same_shape(value, redacted[key], depth + 1) for key, value in original.items())
        )
    if isinstance(original, list):
        return (
            isinstance(redacted, list)
            and len(original) == len(redacted)
            and all(_same_shape(a, b, depth + 1) for a, b in zip(original, redacted))
        )
    return type(original) is type(redacted) and original == redacted
