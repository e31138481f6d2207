"""Built-in pattern detectors: the named matchers a policy can list (``detectors: [pii.email, secrets]``).

(``banned_topic`` and ``any`` are policy-level names handled in policies.py: they need no pattern.)

The engine runs every detector on every call, and CPython's regex engine is slow on patterns that do not
start with a literal (about 0.1 µs per character for a big alternation). So a detector is a few small
rules, each run only when a cheap guard passes: one of its lower-case trigger substrings is present, or the
text holds enough digits. Case-insensitive rules are written in lower case and run on the lower-cased text,
which keeps their literal prefix and its fast scan. Patterns are meant for plausible test traffic, not as a
production DLP: precise enough that model names, ids and timestamps do not trip them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

__all__ = ["DETECTORS", "DETECTOR_NAMES", "Detector", "Rule", "ScanBatch", "ScanText", "luhn_valid"]


_DIGITS = "0123456789"


def _count_digits(text: str) -> int:
    """ASCII digits in ``text``. A generator, not ``sum(map(...))``: between the ten C-level counts the
    interpreter may switch threads, so a multi-megabyte scan on a worker thread does not hold the GIL (and
    the engine's event loop) for the whole count."""
    return sum(text.count(digit) for digit in _DIGITS)


class ScanText:
    """One extracted text with what the guards need: its lower-case form, and its digit count on demand."""

    __slots__ = ("text", "lower", "_digits")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lower = text.lower()
        self._digits: int | None = None

    @property
    def digits(self) -> int:
        if self._digits is None:
            self._digits = _count_digits(self.text)
        return self._digits


class ScanBatch:
    """Every text of one payload, with their joined lower-case form and digit count. A guard that fails on
    the whole batch skips a detector for all texts at once (a chat history is many short texts).

    The per-text :class:`ScanText` list is built on first use: a typical clean payload fails every guard at
    batch level and never needs it.
    """

    __slots__ = ("_raw", "_texts", "lower", "digits")

    def __init__(self, texts: Iterable[str]) -> None:
        self._raw = list(texts)
        self._texts: list[ScanText] | None = None
        # One lower() over the joined texts equals joining each lowered text: "\n" is neither cased nor
        # case-ignorable, so even final-sigma rules see the same word boundaries.
        self.lower = "\n".join(self._raw).lower()
        self.digits = _count_digits(self.lower)

    @property
    def texts(self) -> list[ScanText]:
        if self._texts is None:
            self._texts = [ScanText(text) for text in self._raw]
        return self._texts


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern and the lower-case substrings one of which every match contains (empty: always run).

    ``fold_case`` rules are written in lower case and searched in the lower-cased text; redaction, which needs
    positions in the original text, runs the same pattern case-insensitively on it.
    """

    pattern: re.Pattern[str]
    triggers: tuple[str, ...] = ()
    fold_case: bool = False
    any_case: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        flags = self.pattern.flags | re.IGNORECASE if self.fold_case else self.pattern.flags
        object.__setattr__(self, "any_case", re.compile(self.pattern.pattern, flags))

    def triggered(self, scan: ScanText) -> bool:
        if not self.triggers:
            return True
        lower = scan.lower
        for trigger in self.triggers:
            if trigger in lower:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Detector:
    """A named matcher. ``token`` replaces what it finds under ``action: redact``."""

    name: str
    token: str
    rules: tuple[Rule, ...]
    #: The least number of ASCII digits a match holds (phone numbers, cards, SSNs).
    min_digits: int = 0
    #: A check on the matched text a regex cannot express (the Luhn checksum).
    accept: Callable[[str], bool] | None = None
    #: Every rule's triggers, checked in one loop first (None when some rule always runs).
    gate: tuple[str, ...] | None = field(init=False)

    def __post_init__(self) -> None:
        triggers = [rule.triggers for rule in self.rules]
        gate = None if not all(triggers) else tuple(dict.fromkeys(t for group in triggers for t in group))
        object.__setattr__(self, "gate", gate)

    def may_match(self, scan: ScanText | ScanBatch) -> bool:
        """The cheap guard: enough digits and one of the triggers present (False means no match)."""
        if scan.digits < self.min_digits:
            return False
        if self.gate is None:
            return True
        lower = scan.lower
        for trigger in self.gate:
            if trigger in lower:
                return True
        return False

    def search(self, scan: ScanText) -> bool:
        """Whether the text holds at least one match."""
        if not self.may_match(scan):
            return False
        for rule in self.rules:
            if not rule.triggered(scan):
                continue
            if self.accept is not None:
                if any(self.accept(match.group(0)) for match in rule.any_case.finditer(scan.text)):
                    return True
            elif rule.pattern.search(scan.lower if rule.fold_case else scan.text) is not None:
                return True
        return False

    def search_batch(self, batch: ScanBatch) -> bool:
        """Whether any text of the batch holds a match."""
        return self.may_match(batch) and any(self.search(scan) for scan in batch.texts)

    def spans(self, scan: ScanText) -> Iterator[tuple[int, int]]:
        """Start and end of every match in the original text. A pattern's ``v`` group, when it took part,
        narrows the span (``Bearer <token>`` redacts the token and keeps the word)."""
        if not self.may_match(scan):
            return
        for rule in self.rules:
            if not rule.triggered(scan):
                continue
            has_value_group = "v" in rule.any_case.groupindex
            for match in rule.any_case.finditer(scan.text):
                span = match.span("v") if has_value_group and match.group("v") else match.span()
                if span[0] == span[1] or (self.accept is not None and not self.accept(match.group(0))):
                    continue
                yield span


def luhn_valid(number: str) -> bool:
    """The Luhn checksum over the digits of ``number`` (separators ignored), as card numbers carry."""
    digits = [int(c) for c in number if c in "0123456789"]
    if not digits:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _card_number(candidate: str) -> bool:
    """Card networks issue numbers starting 3 (Amex, Diners, JCB), 4 (Visa), 5 (Mastercard) or 6 (Discover);
    the prefix keeps Luhn-valid epoch-millisecond timestamps and order numbers out."""
    digits = sum(c in "0123456789" for c in candidate)
    return 13 <= digits <= 19 and candidate[0] in "3456" and luhn_valid(candidate)


def _lower(pattern: str, *triggers: str) -> Rule:
    """A case-insensitive rule: ``pattern`` is lower case and verbose."""
    return Rule(re.compile(pattern, re.VERBOSE), triggers, fold_case=True)


def _exact(pattern: str, *triggers: str, flags: int = 0) -> Rule:
    return Rule(re.compile(pattern, re.VERBOSE | flags), triggers)


_INSTRUCTIONS = r"(?:instructions?|prompts?|rules|directions|directives|guidelines|messages|context)"
_PRIOR = r"(?:previous|prior|above|earlier|preceding|former|original|system|developer)"

_PROMPT_INJECTION = (
    _lower(rf"ignore\s+(?:(?:all|any|the|your|my|these|those|every|of)\s+)*{_PRIOR}\s+{_INSTRUCTIONS}", "ignore"),
    _lower(rf"disregard\s+(?:(?:all|any|the|your|my|these|those|of)\s+)*(?:{_PRIOR}\s+)?{_INSTRUCTIONS}", "disregard"),
    _lower(rf"forget\s+(?:(?:all|any|the|your|everything|of|about)\s+)*(?:{_PRIOR}\s+)?{_INSTRUCTIONS}", "forget"),
    _lower(
        r"""(?:reveal|show|print|repeat|output|leak|display|dump|tell\s+me)\s+(?:me\s+)?(?:your|the)\s+
            (?:(?:full|entire|hidden|original|initial|secret|exact)\s+)?
            (?:system\s+prompt|(?:system|initial|hidden|original)\s+instructions)""",
        "prompt", "instructions",
    ),
    _lower(r"you\s+are\s+now\s+(?:dan\b|in\s+developer\s+mode|unrestricted|unfiltered|jailbroken|free\s+from)", "now"),
    _lower(
        r"override\s+(?:(?:your|the|all|any)\s+)+(?:(?:safety|system|previous)\s+)?(?:instructions|rules|guidelines|restrictions|prompt)",
        "override",
    ),
    _lower(r"new\s+system\s+prompt\s*:", "prompt"),
)

_JAILBREAK = (
    _lower(r"do\s+anything\s+now\b", "anything"),
    _lower(
        r"""(?:act|pretend|behave|roleplay)\s+(?:as|like|to\s+be)\s+(?:an?\s+)?
            (?:dan|unfiltered|uncensored|unrestricted|evil|jailbroken)\b""",
        "dan", "unfiltered", "uncensored", "unrestricted", "evil", "jailbroken",
    ),
    _lower(
        r"(?:developer|god)\s+mode\s+(?:enabled|on|activated)\b|enable\s+(?:developer|god)\s+mode\b|jailbreak\s+mode\b",
        "mode",
    ),
    _lower(r"you(?:\s+are|'re)\s+(?:now\s+)?jailbroken\b", "jailbroken"),
    _lower(
        r"""(?:without|no)\s+(?:any\s+)?(?:ethical|moral|safety|content)\s+
            (?:guidelines|restrictions|filters|constraints|limits|policies)\b
          | (?:ignore|bypass)\s+(?:(?:your|the|all|any)\s+)?(?:safety|content|ethical)\s+
            (?:guidelines|filters|policies|policy|restrictions)\b""",
        "ethical", "moral", "safety", "content",
    ),
)

_EMAIL = (_exact(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b", "@"),)

_PHONE = (
    _exact(
        r"""
          (?<![\w+.-])(?:\+?1[ .-]?)?(?:\(\d{3}\)\ ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\d-])   # North American
        | (?<![\w+.-])\+[1-9](?:[ .-]?\d){7,14}(?![\d-])                                # international, with +
        """,
        flags=re.ASCII,
    ),
)

_CARD = (
    _exact(
        r"""
          (?<![\d-])(?:
              \d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?   # 4-4-4-4 (Visa, Mastercard, Discover)
            | \d{4}([ -])\d{6}\2\d{5}                         # 4-6-5 (Amex)
            | \d{13,19}                                       # no separators
          )(?![\d-])
        """,
        flags=re.ASCII,
    ),
)

_SSN = (_exact(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])", "-", flags=re.ASCII),)

# Each secret shape starts with its literal (the "not preceded by a letter or digit" check comes right
# after it as a lookbehind), so the regex engine can jump between occurrences of the literal.
_SECRETS = (
    _exact(r"(?i:bearer)\s+(?P<v>[A-Za-z0-9._~+/-]{20,}=*)", "bearer"),  # Authorization: Bearer <token>
    _exact(r"sk-(?<![A-Za-z0-9]sk-)[A-Za-z0-9_-]{20,}", "sk-"),  # OpenAI / Anthropic (sk-proj-, sk-ant-)
    _exact(r"(?<![A-Za-z0-9])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}", "sk_", "rk_", "pk_"),  # Stripe
    _exact(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])", "akia", "asia"),  # AWS access key id
    _exact(r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{36,}", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"),  # GitHub
    _exact(r"github_pat_(?<![A-Za-z0-9]github_pat_)[A-Za-z0-9_]{22,}", "github_pat_"),  # GitHub fine-grained
    _exact(r"xox[abposr]-(?<![A-Za-z0-9]xox.-)[A-Za-z0-9-]{10,}", "xox"),  # Slack
    _exact(r"AIza(?<![A-Za-z0-9]AIza)[0-9A-Za-z_-]{35}", "aiza"),  # Google API key
    _exact(r"eyJ(?<![A-Za-z0-9]eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "eyj"),  # JWT
    _exact(r"-----BEGIN\ [A-Z ]*PRIVATE\ KEY-----[\s\S]*?-----END\ [A-Z ]*PRIVATE\ KEY-----", "private key"),
)

DETECTORS: dict[str, Detector] = {
    detector.name: detector
    for detector in (
        Detector("prompt_injection", "[REDACTED_INJECTION]", _PROMPT_INJECTION),
        Detector("jailbreak", "[REDACTED_JAILBREAK]", _JAILBREAK),
        Detector("pii.email", "[REDACTED_EMAIL]", _EMAIL),
        Detector("pii.phone", "[REDACTED_PHONE]", _PHONE, min_digits=8),
        Detector("pii.card", "[REDACTED_CARD]", _CARD, min_digits=13, accept=_card_number),
        Detector("pii.ssn", "[REDACTED_SSN]", _SSN, min_digits=9),
        Detector("secrets", "[REDACTED_SECRET]", _SECRETS),
    )
}

DETECTOR_NAMES: tuple[str, ...] = tuple(DETECTORS)
