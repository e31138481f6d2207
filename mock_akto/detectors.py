"""Built-in pattern detectors: the named matchers a policy can list (``detectors: [pii.email, secrets]``).

(``banned_topic`` and ``any`` are policy-level names handled in policies.py: they need no pattern.)

Each detector is one compiled regex plus cheap guards that skip the regex when the text cannot match
(no ``@`` means no email, no run of digits means no card), because the engine runs them on every call.
Patterns are written for plausible traffic in tests, not as a production DLP: precise enough that model
names, ids and timestamps do not trip them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

__all__ = ["Detector", "ScanText", "DETECTORS", "DETECTOR_NAMES", "luhn_valid"]

_DIGIT_RUN = re.compile(r"\d{3}")


class ScanText:
    """One extracted text with what every detector's guard needs, computed once per evaluation."""

    __slots__ = ("text", "lower", "has_digits")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lower = text.lower()
        self.has_digits = _DIGIT_RUN.search(text) is not None


def luhn_valid(number: str) -> bool:
    """The Luhn checksum over the digits of ``number`` (separators ignored), as card numbers carry."""
    digits = [int(c) for c in number if c.isdigit()]
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
    digits = sum(c.isdigit() for c in candidate)
    return 13 <= digits <= 19 and candidate[0] in "3456" and luhn_valid(candidate)


@dataclass(frozen=True, slots=True)
class Detector:
    """A named matcher. ``token`` replaces what it finds under ``action: redact``."""

    name: str
    pattern: re.Pattern[str]
    token: str
    #: Lower-case substrings, one of which every match contains; the regex only runs when one is present.
    triggers: tuple[str, ...] = ()
    needs_digits: bool = False
    #: A check on the matched text the regex cannot express (the Luhn checksum).
    accept: Callable[[str], bool] | None = None

    def _may_match(self, scan: ScanText) -> bool:
        if self.needs_digits and not scan.has_digits:
            return False
        if not self.triggers:
            return True
        lower = scan.lower
        for trigger in self.triggers:
            if trigger in lower:
                return True
        return False

    def search(self, scan: ScanText) -> bool:
        """Whether the text holds at least one match."""
        if not self._may_match(scan):
            return False
        if self.accept is None:
            return self.pattern.search(scan.text) is not None
        return any(True for _ in self.spans(scan))

    def spans(self, scan: ScanText) -> Iterator[tuple[int, int]]:
        """Start and end of every match; a pattern's ``v`` group, when it took part, narrows the span
        (``Bearer <token>`` redacts the token and keeps the word)."""
        if not self._may_match(scan):
            return
        for match in self.pattern.finditer(scan.text):
            span = match.span("v") if "v" in self.pattern.groupindex and match.group("v") else match.span()
            if span[0] == span[1]:
                continue
            if self.accept is not None and not self.accept(match.group(0)):
                continue
            yield span


_INJECTION = re.compile(
    r"""
      \bignore\s+(?:(?:all|any|the|your|my|these|those|every|of)\s+)*
          (?:previous|prior|above|earlier|preceding|former|original|system|developer)\s+
          (?:instructions?|prompts?|rules|directions|directives|guidelines|messages|context)
    | \bdisregard\s+(?:(?:all|any|the|your|my|these|those|of)\s+)*
          (?:(?:previous|prior|above|earlier|preceding|system|developer)\s+)?
          (?:instructions?|prompts?|rules|directions|guidelines)
    | \bforget\s+(?:(?:all|any|the|your|everything|of|about)\s+)*
          (?:(?:previous|prior|above|earlier|system)\s+)?(?:instructions?|prompts?|rules|guidelines)
    | \b(?:reveal|show|print|repeat|output|leak|display|dump|tell\s+me)\s+(?:me\s+)?(?:your|the)\s+
          (?:(?:full|entire|hidden|original|initial|secret|exact)\s+)?
          (?:system\s+prompt|(?:system|initial|hidden|original)\s+instructions)
    | \byou\s+are\s+now\s+(?:DAN\b|in\s+developer\s+mode|unrestricted|unfiltered|jailbroken|free\s+from)
    | \boverride\s+(?:(?:your|the|all|any)\s+)+(?:(?:safety|system|previous)\s+)?
          (?:instructions|rules|guidelines|restrictions|prompt)
    | \bnew\s+system\s+prompt\s*:
    """,
    re.IGNORECASE | re.VERBOSE,
)

_JAILBREAK = re.compile(
    r"""
      \bdo\s+anything\s+now\b
    | \b(?:act|pretend|behave|roleplay)\s+(?:as|like|to\s+be)\s+(?:an?\s+)?
          (?:DAN|unfiltered|uncensored|unrestricted|evil|jailbroken)\b
    | \b(?:developer|god)\s+mode\s+(?:enabled|on|activated)\b
    | \benable\s+(?:developer|god)\s+mode\b
    | \bjailbreak\s+mode\b
    | \byou(?:\s+are|'re)\s+(?:now\s+)?jailbroken\b
    | \b(?:without|no)\s+(?:any\s+)?(?:ethical|moral|safety|content)\s+
          (?:guidelines|restrictions|filters|constraints|limits|policies)\b
    | \b(?:ignore|bypass)\s+(?:(?:your|the|all|any)\s+)?(?:safety|content|ethical)\s+
          (?:guidelines|filters|policies|policy|restrictions)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")

_PHONE = re.compile(
    r"""
      (?<![\w+.-])(?:\+?1[ .-]?)?(?:\(\d{3}\)\ ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\d-])   # North American
    | (?<![\w+.-])\+[1-9](?:[ .-]?\d){7,14}(?![\d-])                                # international, with +
    """,
    re.VERBOSE,
)

_CARD = re.compile(
    r"""
      (?<![\d-])(?:
          \d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?   # 4-4-4-4 (Visa, Mastercard, Discover)
        | \d{4}([ -])\d{6}\2\d{5}                         # 4-6-5 (Amex)
        | \d{13,19}                                       # no separators
      )(?![\d-])
    """,
    re.VERBOSE,
)

_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")

_SECRETS = re.compile(
    r"""
      (?i:\bbearer)\s+(?P<v>[A-Za-z0-9._~+/-]{20,}=*)              # Authorization: Bearer <token>
    | (?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}                          # OpenAI / Anthropic (sk-proj-, sk-ant-)
    | (?<![A-Za-z0-9])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}    # Stripe
    | (?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])             # AWS access key id
    | (?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{36,}                     # GitHub tokens
    | (?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{22,}                   # GitHub fine-grained tokens
    | (?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}                  # Slack
    | (?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}                          # Google API key
    | (?<![A-Za-z0-9])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}   # JWT
    | -----BEGIN\ [A-Z ]*PRIVATE\ KEY-----[\s\S]*?-----END\ [A-Z ]*PRIVATE\ KEY-----
    """,
    re.VERBOSE,
)

DETECTORS: dict[str, Detector] = {
    detector.name: detector
    for detector in (
        Detector(
            "prompt_injection",
            _INJECTION,
            "[REDACTED_INJECTION]",
            triggers=("ignore", "disregard", "forget", "prompt", "instructions", "now", "override"),
        ),
        Detector(
            "jailbreak",
            _JAILBREAK,
            "[REDACTED_JAILBREAK]",
            triggers=("anything", "act", "pretend", "behave", "roleplay", "mode", "jailb", "ethical", "moral",
                      "safety", "content"),
        ),
        Detector("pii.email", _EMAIL, "[REDACTED_EMAIL]", triggers=("@",)),
        Detector("pii.phone", _PHONE, "[REDACTED_PHONE]", needs_digits=True),
        Detector("pii.card", _CARD, "[REDACTED_CARD]", needs_digits=True, accept=_card_number),
        Detector("pii.ssn", _SSN, "[REDACTED_SSN]", triggers=("-",), needs_digits=True),
        Detector(
            "secrets",
            _SECRETS,
            "[REDACTED_SECRET]",
            triggers=("bearer", "sk-", "sk_", "rk_", "pk_", "akia", "asia", "ghp_", "gho_", "ghu_", "ghs_",
                      "ghr_", "github_pat_", "xox", "aiza", "eyj", "private key"),
        ),
    )
}

DETECTOR_NAMES: tuple[str, ...] = tuple(DETECTORS)
