"""Redaction in place: the evaluated field text with each matched substring swapped for a token.

Connectors decode ``ModifiedPayload`` the way they encoded the field (LiteLLM v4 compares string leaves,
custom_hooks takes ``body``, the egress addon forwards it verbatim), so the payload must keep its structure
leaf for leaf: only the matched text changes. The matches come from decoded text, while the field may be
JSON (or JSON inside JSON), so a match is looked for as written and in its JSON-escaped forms, and the
result is checked to still decode to the same shape; a replacement that would break it (a match that
straddles an escape sequence, a key or a number) is skipped rather than corrupting the payload.

The cost stays near linear in the field's size whatever a client sends (the engine is single-threaded, so
a slow redaction stalls every other call): many matches are replaced in one pass of a prefix-tree regex
rather than one scan of the field per match, breaking replacements are found by halving, and the shape
check walks with its own stack, so deeply nested JSON cannot exhaust the interpreter's recursion limit.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from mock_akto.extract import decode_json_container

__all__ = ["redact_in_place"]

#: Printable ASCII without ``"`` and ``\``: text JSON encoders write as is, at any depth of encoding.
_NOTHING_TO_ESCAPE = re.compile(r'[ !#-\[\]-~]*')
#: Up to this many forms, one ``str.replace`` each is cheaper than building a regex.
_FEW_FORMS = 32
#: Longer regex sources are dropped from re's cache after use (they are built from one payload).
_CACHEABLE_PATTERN = 4096


def redact_in_place(field_text: str, replacements: Mapping[str, str]) -> str:
    """``field_text`` with every occurrence of each key of ``replacements`` replaced by its value.

    Longer matches go first so a match inside another one cannot split it.
    """
    if not replacements:
        return field_text
    originals = sorted(replacements, key=len, reverse=True)
    redacted = _replace(field_text, originals, replacements)
    if redacted == field_text:
        return field_text
    tree = decode_json_container(field_text)
    if tree is None or _same_shape(tree, decode_json_container(redacted)):
        return redacted
    # Some replacement broke the structure: keep the groups that do not, halving those that do (a few
    # breaking matches among thousands cost a few passes each, not one pass per match).
    redacted = field_text
    groups = [originals]
    while groups:
        group = groups.pop()
        candidate = _replace(redacted, group, replacements)
        if candidate == redacted:
            continue
        if _same_shape(tree, decode_json_container(candidate)):
            redacted = candidate
        elif len(group) > 1:
            groups += [group[len(group) // 2:], group[:len(group) // 2]]
    return redacted


def _replace(text: str, originals: list[str], replacements: Mapping[str, str]) -> str:
    """``text`` with every form of each original replaced by its token, longest first."""
    token_of = {form: replacements[original] for original in originals for form in _encoded_forms(original) if form}
    if len(token_of) > _FEW_FORMS:
        # Many forms: one pass of a prefix-tree regex rather than one scan of the whole field per form.
        try:
            source = _prefix_tree(sorted(token_of), 0)
            pattern = re.compile(source)
        except (RecursionError, re.error, OverflowError):
            pass  # nested too deep for the regex compiler: fall back to one scan per form
        else:
            if len(source) > _CACHEABLE_PATTERN:
                re.purge()  # re caches what it compiles; a pattern built from one payload must not stay
            return pattern.sub(lambda match: token_of[match.group(0)], text)
    for form in sorted(token_of, key=len, reverse=True):
        if form in text:
            text = text.replace(form, token_of[form])
    return text


def _prefix_tree(words: list[str], offset: int) -> str:
    """A regex matching the longest of the sorted, distinct ``words`` (which share their first ``offset``
    characters) from ``offset`` on. Shaped as a prefix tree, the regex engine tries one branch per next
    character, where a flat alternation would try every word at every position of the text."""
    ends_here = len(words[0]) == offset  # sorted: a word that ends here comes first
    rest = words[1:] if ends_here else words
    branches = []
    start = 0
    while start < len(rest):
        char = rest[start][offset]
        end = start + 1
        while end < len(rest) and rest[end][offset] == char:
            end += 1
        first, last = rest[start], rest[end - 1]
        common = len(first) if end - start == 1 else _common_prefix_end(first, last, offset)
        branches.append(re.escape(first[offset:common]) + _prefix_tree(rest[start:end], common))
        start = end
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if ends_here else body


def _common_prefix_end(first: str, last: str, start: int) -> int:
    """Where the common prefix of two sorted words ends (that of every word between them too)."""
    end = min(len(first), len(last))
    while start < end and first[start] == last[start]:
        start += 1
    return start


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


def _same_shape(original: Any, redacted: Any) -> bool:
    """Same keys, list lengths and non-string values; strings may differ, but a string that held JSON
    must still hold JSON of the same shape. Walks with its own stack: payloads may nest deeper than
    Python's recursion limit."""
    pending = [(original, redacted)]
    while pending:
        original, redacted = pending.pop()
        if isinstance(original, str):
            if not isinstance(redacted, str):
                return False
            inner = decode_json_container(original)
            if inner is None:
                if decode_json_container(redacted) is not None:
                    return False
            else:
                pending.append((inner, decode_json_container(redacted)))
        elif isinstance(original, dict):
            if not isinstance(redacted, dict) or original.keys() != redacted.keys():
                return False
            pending.extend((value, redacted[key]) for key, value in original.items())
        elif isinstance(original, list):
            if not isinstance(redacted, list) or len(original) != len(redacted):
                return False
            pending.extend(zip(original, redacted))
        elif type(original) is not type(redacted) or original != redacted:
            return False
    return True
