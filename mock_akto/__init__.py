"""mock-akto: a scriptable fake of Akto's guardrail engine, for testing connectors over real sockets.

The names below are the public API (everything else is internal and may move). They load on first use,
so ``import mock_akto`` costs nothing and never imports the server stack (uvicorn, FastAPI)::

    from mock_akto import EngineConfig, EngineServer, FixedDelay, MockAktoClient

    with EngineServer(EngineConfig()) as engine:
        client = MockAktoClient(engine.url)
        client.add_fault(FixedDelay(ms=800))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Each public name and the module that defines it: the only list (``__all__`` is built from it).
_PUBLIC: dict[str, str] = {
    # running an engine
    "EngineConfig": "config",
    "EngineServer": "server",
    "build_app": "app",
    # scripting it
    "MockAktoClient": "client",
    "Policy": "policies",
    "PolicySet": "policies",
    "load_policies": "policies",
    "load_preset": "policies",
    "available_presets": "policies",
    "FaultRule": "rules",
    "Match": "matching",
    "Matcher": "matching",
    "Condition": "matching",
    "ScriptedVerdict": "scripted",
    "VerdictStep": "scripted",
    "VerifyResult": "verify",
    "Fault": "faults",
    "FAULTS": "faults",
    "parse_fault": "faults",
    "FixedDelay": "faults",
    "UniformDelay": "faults",
    "LognormalDelay": "faults",
    "ChunkedDribble": "faults",
    "Hang": "faults",
    "Down": "faults",
    "ConnectionResetByPeer": "faults",
    "EmptyResponse": "faults",
    "RandomDataThenClose": "faults",
    "TruncatedBody": "faults",
    "Status": "faults",
    "NonJsonBody": "faults",
    "HtmlBody": "faults",
    "WrongContentType": "faults",
    "SchemaBreak": "faults",
    "FailOpenVerdict": "faults",
    "SlowGuardrails": "faults",
    # which Akto contract version it plays
    "AktoProfile": "profiles",
    "PROFILES": "profiles",
    "ProfileChoice": "profiles",
    "UnknownProfile": "profiles",
    # what it saw
    "JournalEntryModel": "journal",
    "IngestRecordModel": "journal",
    # errors
    "MockAktoError": "errors",
    "BadRequest": "errors",
    "BodyTooLarge": "errors",
    "ClientGone": "errors",
    "ConfigurationError": "errors",
    "NamespaceError": "errors",
    "PolicyLoadError": "errors",
    "PresetFileError": "errors",
    "RegexTimeout": "errors",
    "ListenerError": "errors",
    "LimitReached": "errors",
    "AdminError": "errors",
    "JournalTimeout": "errors",
    "VerificationError": "errors",
    "CliError": "errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see; tests/engine/test_public_api.py keeps it equal to _PUBLIC
    from .app import build_app
    from .client import MockAktoClient
    from .config import EngineConfig
    from .errors import (AdminError, BadRequest, BodyTooLarge, CliError, ClientGone, ConfigurationError,
                         JournalTimeout, LimitReached, ListenerError, MockAktoError, NamespaceError, PolicyLoadError,
                         PresetFileError, RegexTimeout, VerificationError)
    from .faults import (FAULTS, ChunkedDribble, ConnectionResetByPeer, Down, EmptyResponse, FailOpenVerdict,
                         Fault, FixedDelay, Hang, HtmlBody, LognormalDelay, NonJsonBody, RandomDataThenClose,
                         SchemaBreak, SlowGuardrails, Status, TruncatedBody, UniformDelay, WrongContentType,
                         parse_fault)
    from .journal import IngestRecordModel, JournalEntryModel
    from .matching import Condition, Match, Matcher
    from .policies import Policy, PolicySet, available_presets, load_policies, load_preset
    from .profiles import PROFILES, AktoProfile, ProfileChoice, UnknownProfile
    from .rules import FaultRule
    from .scripted import ScriptedVerdict, VerdictStep
    from .server import EngineServer
    from .verify import VerifyResult
