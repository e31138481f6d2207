"""Making a bad guardrail config stop the LiteLLM proxy instead of silently dropping the guardrail.

Why this exists: LiteLLM 1.106.2 loads config guardrails inside ``try: ... except (ValueError, TypeError)``
(``proxy/guardrails/init_guardrails.py``) and on such an error logs "proxy is starting WITHOUT this
guardrail" and carries on. Both LiteLLM's own validation of the parameters it knows (``unreachable_fallback``
must be ``fail_open``/``fail_closed``, ``guardrail_timeout`` an integer, ``akto_account_id`` a string) and a
``ValueError`` from our constructor would therefore leave the proxy running with no guardrail at all.

So (1) our constructor raises :class:`GuardrailStartupError`, a ``RuntimeError`` LiteLLM does not swallow,
which aborts the proxy's start-up; and (2) the first time any entry loads, every entry of the config file
that names the same class is validated, so a sibling entry LiteLLM already skipped stops the proxy too.
The one case left is a config whose *only* entry naming this class is rejected by LiteLLM before any of our
code is imported: see docs/litellm.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml
from pydantic import ValidationError

from ..core import ConfigError

ENV_PREFIX = "os.environ/"


class GuardrailStartupError(RuntimeError):
    """The guardrail config is invalid; raised at start-up so the proxy exits instead of running unguarded."""


def config_file_path() -> str | None:
    """The config file the running proxy loaded (None outside the proxy, e.g. in unit tests).

    Looked up in ``sys.modules`` rather than imported: importing LiteLLM's proxy server takes seconds, and
    when it is not loaded we are not running inside the proxy anyway.
    """
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    return getattr(proxy_server, "user_config_file_path", None) if proxy_server is not None else None


def entries_naming(config: Mapping[str, Any], class_name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(guardrail_name, litellm_params)`` of every guardrail entry whose class path ends with ``class_name``."""
    for entry in config.get("guardrails") or ():
        params = entry.get("litellm_params") if isinstance(entry, Mapping) else None
        if isinstance(params, Mapping) and str(params.get("guardrail", "")).endswith(class_name):
            yield str(entry.get("guardrail_name", "?")), dict(params)


def resolve_env(params: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``os.environ/NAME`` values resolved the way LiteLLM does it (unset: None)."""
    return {
        key: env.get(value[len(ENV_PREFIX):]) if isinstance(value, str) and value.startswith(ENV_PREFIX) else value
        for key, value in params.items()
    }


def problems_in_file(
    path: str | os.PathLike[str],
    class_name: str,
    validate: Callable[[Mapping[str, Any]], object],
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """What is wrong with each entry naming ``class_name``: LiteLLM's own parameter rules, then ``validate``."""
    from litellm.types.guardrails import LitellmParams

    env = os.environ if env is None else env
    config = yaml.safe_load(Path(path).read_text()) or {}
    problems: list[str] = []
    for name, raw in entries_naming(config, class_name):
        params = resolve_env(raw, env)
        try:
            LitellmParams(**params)
            validate(params)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            problems.append(f"guardrail {name!r}: parameter {field!r}: {first['msg']}")
        except ConfigError as exc:
            problems.append(f"guardrail {name!r}: {exc}")
    return problems


_checked_files: set[str] = set()


def check_sibling_entries(class_name: str, validate: Callable[[Mapping[str, Any]], object]) -> None:
    """Once per config file: raise :class:`GuardrailStartupError` if any entry naming the class is invalid."""
    path = config_file_path()
    if not path or path in _checked_files or not Path(path).is_file():
        return
    _checked_files.add(path)
    problems = problems_in_file(path, class_name, validate)
    if problems:
        raise GuardrailStartupError("invalid Akto guardrail config in " + str(path) + ": " + "; ".join(problems))
