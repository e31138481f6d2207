"""YAML with line numbers: load a document and remember where every mapping key and list item was written.

A budget file that fails validation must say *where*: pydantic reports a location such as
``("budgets", 2, "p99")``; :func:`line_of` turns it into the line a person edits.
"""

from __future__ import annotations

from typing import Any

import yaml

Location = tuple[int | str, ...]


class YamlError(ValueError):
    """A file that is not YAML, or not the shape we need, with the line (1-based) where it went wrong."""


def load_with_lines(text: str, source: str) -> tuple[Any, dict[Location, int]]:
    """The document as plain Python data, and the 1-based line of every key / item by its location."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise YamlError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    lines: dict[Location, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, where: Location, lines: dict[Location, int]) -> None:
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*where, key.value)
            _walk(value, here, lines)
            lines[here] = key.start_mark.line + 1  # the key's own line, where a person looks for it
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*where, index), lines)


def line_of(location: Location, lines: dict[Location, int]) -> int | None:
    """The line of ``location``, or of its nearest written parent (a missing field points at its item)."""
    for cut in range(len(location), -1, -1):
        line = lines.get(tuple(location[:cut]))
        if line is not None:
            return line
    return None
