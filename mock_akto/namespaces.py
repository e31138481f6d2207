"""Namespaces: many parallel tests share one engine without seeing each other.

Each namespace owns its policies, fault rules, journal and ingest records; the global rule book applies
to all of them. A call is resolved to a namespace by, first match wins (docs/architecture.md): the
listener port it arrived on, a ``/ns/<name>/`` path prefix, the ``X-Mock-Akto-Namespace`` header, an API
key registered for the namespace, then ``default``. Namespaces are created on first use, so a connector
pointed at ``.../ns/my-test`` just works.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from .activity import ActivityPulse
from .config import DEFAULT_MAX_API_KEYS, DEFAULT_MAX_NAMESPACES
from .errors import LimitReached, NamespaceError
from .journal import DEFAULT_MAX_ENTRIES, DEFAULT_MAX_PAYLOAD_BYTES, BoundedLog, IngestRecord, JournalEntry, MemoryBudget
from .policies import PolicySet, default_policies
from .profiles import DEFAULT_PROFILE, PROFILES, AktoProfile
from .rules import FaultRule, RuleBook
from .scripted import ScriptBook, ScriptedVerdict

DEFAULT_NAMESPACE = "default"
NAMESPACE_HEADER = b"x-mock-akto-namespace"
NS_PREFIX = "/ns/"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
#: Where non-JSON header text is split into the words that could be keys.
_WORDS = re.compile(r"[\s\"',;{}\[\]]+")


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise NamespaceError(f"invalid namespace name {name!r}: use 1-80 of A-Z a-z 0-9 _ . -")
    return name


class Memo:
    """A bounded dict of computed answers, kept for keys seen at least twice.

    Admission on second sight: under a load of distinct payloads (every prompt different) nothing repeats,
    and keeping every answer would only churn memory and the garbage collector; remembering the hashes of
    keys seen once (plain ints, cheap) lets a repeated payload in from its second call. Full, it is emptied
    rather than evicted one by one (a load test repeats a few payloads, so it refills at once; LRU
    bookkeeping would cost every call).
    """

    #: Most answers kept (and most hashes of keys seen once).
    MAX_ITEMS = 512
    #: Most characters they may hold (keys and answers): a stream of distinct megabyte payloads must not pin
    #: gigabytes. An answer bigger than an eighth of it is not kept at all.
    MAX_CHARS = 32 * 1024 * 1024

    def __init__(self) -> None:
        self._items: dict[object, object] = {}
        self._seen_once: set[int] = set()
        self.chars = 0

    def get(self, key: object) -> Any:
        return self._items.get(key)

    def remember(self, key: object, answer: object, size: int) -> None:
        """Keep ``answer`` if ``key`` was seen before; ``size`` is about how many characters both hold."""
        if size > self.MAX_CHARS // 8:
            return
        seen = hash(key)
        if seen not in self._seen_once:
            if len(self._seen_once) >= self.MAX_ITEMS:
                self._seen_once.clear()
            self._seen_once.add(seen)
            return
        if len(self._items) >= self.MAX_ITEMS or self.chars + size > self.MAX_CHARS:
            self._items.clear()
            self.chars = 0
        self._items[key] = answer
        self.chars += size

    def clear(self) -> None:
        self._items.clear()
        self._seen_once.clear()
        self.chars = 0

    def __len__(self) -> int:
        return len(self._items)


class Namespace:
    """One isolated slice of the engine.

    ``down`` is cached listener state read on the hot path. Two memos keep the policies and the parser off
    the hot path of a load test: a PolicySet is frozen and its evaluation pure, so the same payload under
    the same policies gets the same verdict (``answers``, keyed by flags, payloads and app: connectors put a
    fresh timestamp in every envelope), and the same exact call gets the same reply (``replies``, keyed by
    route, method, query string and body bytes: a repeated body is not even parsed). Replacing
    ``policies`` empties both.
    """

    def __init__(self, name: str, policies: PolicySet, journal: BoundedLog[JournalEntry],
                 ingest: BoundedLog[IngestRecord], profile: AktoProfile | None = None) -> None:
        self.name = name
        self._policies = policies
        self._profile = profile or PROFILES[DEFAULT_PROFILE]
        self.rules = RuleBook()
        self.scripts = ScriptBook()
        self.journal = journal
        self.ingest = ingest
        self.down = False
        self.created = time.time()
        self.answers = Memo()
        self.replies = Memo()

    @property
    def policies(self) -> PolicySet:
        return self._policies

    @policies.setter
    def policies(self, policies: PolicySet) -> None:
        self._policies = policies
        self.forget_answers()

    @property
    def profile(self) -> AktoProfile:
        """The Akto contract version this namespace plays (:mod:`mock_akto.profiles`)."""
        return self._profile

    @profile.setter
    def profile(self, profile: AktoProfile) -> None:
        self._profile = profile
        self.forget_answers()  # a memoised reply was decided under the old profile

    def forget_answers(self) -> None:
        """Empty both memos (what decides an answer changed: policies, or the keys masked in the journal)."""
        self.answers.clear()
        self.replies.clear()

    def reset(self, policies: PolicySet, profile: AktoProfile) -> None:
        """Back to a fresh namespace (start-up policies and profile, no rules or scripts, empty journal and records)."""
        self.policies = policies
        self._profile = profile
        self.rules.clear()
        self.scripts.clear()
        self.journal.clear()
        self.ingest.clear()


@dataclass
class JournalLimits:
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    ingest_max_entries: int = DEFAULT_MAX_ENTRIES
    #: Shared by every ring of the engine (None: only each ring's own bounds).
    budget: MemoryBudget | None = None


class NamespaceRegistry:
    """All namespaces, the global rule book, listener ports and registered API keys.

    ``base_policies`` is what every new (or reset) namespace starts from: the configured policies file,
    or the built-in defaults (frozen, so namespaces share it until one replaces its own); ``base_profile``
    likewise (``--akto-profile``, default ``current``).
    """

    def __init__(self, *, base_policies: PolicySet | None = None, limits: JournalLimits | None = None,
                 max_namespaces: int = DEFAULT_MAX_NAMESPACES, max_api_keys: int = DEFAULT_MAX_API_KEYS,
                 base_rules: Iterable[FaultRule] = (), base_scripts: Iterable[ScriptedVerdict] = (),
                 base_profile: AktoProfile | None = None) -> None:
        self.base_policies = base_policies if base_policies is not None else default_policies()
        #: The start-up state (``serve --state``): every new or reset namespace gets its own armed copies.
        self.base_rules = list(base_rules)
        self.base_scripts = list(base_scripts)
        self.base_profile = base_profile or PROFILES[DEFAULT_PROFILE]
        self.limits = limits or JournalLimits()
        self.max_namespaces = max_namespaces
        self.max_api_keys = max_api_keys
        self.global_rules = RuleBook()
        self.global_down = False
        self._namespaces: dict[str, Namespace] = {}
        self._ports: dict[int, str] = {}
        self._api_keys: dict[str, str] = {}
        #: Fired whenever any namespace's journal changes (the live activity page's wake-up).
        self.activity = ActivityPulse()
        self.get(DEFAULT_NAMESPACE)

    # -- lookup ---------------------------------------------------------------------------------------

    def get(self, name: str) -> Namespace:
        """The namespace called ``name``, created on first use (:class:`NamespaceError` past the limit)."""
        ns = self._namespaces.get(name)
        if ns is None:
            check_name(name)
            if len(self._namespaces) >= self.max_namespaces:
                raise NamespaceError(
                    f"cannot create namespace {name!r}: the engine already holds {len(self._namespaces)} "
                    f"(its limit, --max-namespaces); remove some with DELETE /__admin/namespaces/<name>")
            ns = Namespace(
                name=name,
                policies=self._fresh_policies(),
                journal=BoundedLog(self.limits.max_entries, self.limits.max_payload_bytes, self.limits.budget,
                                   self.activity.fire),
                ingest=BoundedLog(self.limits.ingest_max_entries, self.limits.max_payload_bytes, self.limits.budget),
                profile=self.base_profile,
            )
            self._seed(ns)
            self._namespaces[name] = ns
        return ns

    def find(self, name: str) -> Namespace | None:
        return self._namespaces.get(name)

    def all(self) -> list[Namespace]:
        return list(self._namespaces.values())

    def resolve(self, port: int | None, prefix: str | None, header: str | None, api_key: str | None) -> Namespace:
        """Apply the resolution order; raises :class:`NamespaceError` for a malformed explicit name."""
        name = self._ports.get(port) if port is not None else None
        if name is None:
            name = prefix or header
        if name is None and api_key:
            name = self._api_keys.get(api_key)
            if name is None and api_key[:7].lower() == "bearer ":
                name = self._api_keys.get(api_key[7:].strip())
        return self.get(name or DEFAULT_NAMESPACE)

    def is_down(self, ns: Namespace) -> bool:
        return ns.down or self.global_down

    # -- ports and keys -------------------------------------------------------------------------------

    def bind_port(self, port: int, name: str) -> None:
        self._ports[port] = self.get(name).name

    def unbind_port(self, port: int) -> None:
        self._ports.pop(port, None)

    def ports_of(self, name: str) -> list[int]:
        return [port for port, owner in self._ports.items() if owner == name]

    def bound_ports(self) -> dict[int, str]:
        return dict(self._ports)

    def register_api_key(self, api_key: str, name: str) -> None:
        """Calls carrying ``api_key`` as their ``Authorization`` value land in namespace ``name``."""
        if not api_key:
            raise NamespaceError("api_key must not be empty")
        if api_key not in self._api_keys and len(self._api_keys) >= self.max_api_keys:
            raise LimitReached(f"the engine already holds {len(self._api_keys)} API keys (its limit, max_api_keys); "
                               f"remove a namespace to drop its keys")
        self._api_keys[api_key] = self.get(name).name
        self._forget_answers()  # memoised replies hold journal headers masked with the old set of keys

    def api_key_owners(self) -> dict[str, str]:
        """A copy of the registered API keys and the namespace each lands in (for a scan worker's snapshot)."""
        return dict(self._api_keys)

    def adopt_api_keys(self, owners: dict[str, str]) -> None:
        """Take ``owners`` (from :meth:`api_key_owners` of the engine's registry) as this registry's keys:
        a scan worker process masks journaled headers with the engine's keys."""
        self._api_keys = owners

    def is_registered_key(self, api_key: str) -> bool:
        """Whether ``api_key`` (raw, or as ``Bearer <key>``) was registered for some namespace."""
        if api_key in self._api_keys:
            return True
        return api_key[:7].lower() == "bearer " and api_key[7:].strip() in self._api_keys

    def mask_api_keys(self, request_headers: str) -> str:
        """``request_headers`` (the envelope's JSON text) with every registered key in it replaced by ``***``.

        Dict lookups of the header values (raw, or after ``Bearer``), never a scan of every key: with
        50,000 keys a scan made each call take 246 ms instead of 0.41 ms. Text that is not a JSON object
        is looked at word by word.
        """
        keys = self._api_keys
        if not keys:
            return request_headers
        try:
            parsed = orjson.loads(request_headers)
        except orjson.JSONDecodeError:
            parsed = None
        if type(parsed) is dict:
            candidates: Iterable[Any] = parsed.values()
        else:
            candidates = _WORDS.split(request_headers)
        for value in candidates:
            if type(value) is not str:
                continue
            for candidate in (value, value[7:].strip() if value[:7].lower() == "bearer " else ""):
                if candidate and candidate in keys:
                    request_headers = request_headers.replace(candidate, "***")
        return request_headers

    def api_key_count(self, name: str) -> int:
        return sum(1 for owner in self._api_keys.values() if owner == name)

    # -- lifecycle ------------------------------------------------------------------------------------

    def reset(self, name: str) -> Namespace:
        ns = self.get(name)
        ns.reset(self._fresh_policies(), self.base_profile)
        self._seed(ns)
        return ns

    def _seed(self, ns: Namespace) -> None:
        for rule in self.base_rules:
            ns.rules.add(rule)
        for script in self.base_scripts:
            ns.scripts.add(script)

    def remove(self, name: str) -> bool:
        """Forget a namespace (and its keys); ``default`` is only reset. Its ports must be closed first."""
        if name == DEFAULT_NAMESPACE:
            self.reset(name)
            return True
        self._api_keys = {key: owner for key, owner in self._api_keys.items() if owner != name}
        self._forget_answers()
        ns = self._namespaces.pop(name, None)
        if ns is None:
            return False
        ns.journal.clear()  # gives its characters back to the engine-wide budget
        ns.ingest.clear()
        return True

    def refresh_down(self, now: float | None = None) -> list[Namespace]:
        """Recompute each namespace's ``down`` from the rule books; the namespaces whose state changed."""
        now = time.monotonic() if now is None else now
        self.global_down = self.global_rules.has_down(now) is not None
        changed = []
        for ns in self._namespaces.values():
            down = ns.rules.has_down(now) is not None
            if down != ns.down:
                ns.down = down
                changed.append(ns)
        return changed

    def _forget_answers(self) -> None:
        for ns in self._namespaces.values():
            ns.forget_answers()

    def _fresh_policies(self) -> PolicySet:
        return self.base_policies  # a PolicySet is frozen: sharing it is safe
