"""Every exception the engine and its client raise, in one tree (as ``httpx/_exceptions.py`` draws it).

Catch :class:`MockAktoError` for "anything mock-akto refused". Each class also keeps the standard base its
callers have always caught (``ValueError`` for bad input, ``RuntimeError`` for a state the engine cannot
act in, ``TimeoutError`` for a wait that ran out), so ``except ValueError`` keeps working::

    MockAktoError
    ├── BadRequest            an Akto call's body cannot be used (the contract answers 400 / 422)
    ├── BodyTooLarge          an Akto call's body is above ``max_body_bytes`` (413)
    ├── ClientGone            the client disconnected while its body was being read
    ├── ConfigurationError    (ValueError) a name, file or preset the engine cannot use
    │   ├── NamespaceError    an invalid namespace name, or one too many namespaces
    │   ├── PolicyLoadError   a policy file or preset that does not load
    │   ├── PresetFileError   an apply file (policies and faults) that does not load
    │   └── LimitReached      one listener or API key too many (the admin API answers 400)
    ├── RegexTimeout          (RuntimeError) a policy's regex ran past its time budget on a payload
    ├── ListenerError         (RuntimeError) an extra listener could not be opened
    ├── AdminError            (RuntimeError) the admin API refused a client call; ``status``, ``detail``
    ├── JournalTimeout        (TimeoutError) a journal wait ended before N entries; ``entries``
    ├── VerificationError     (AssertionError) a verification failed; ``result`` carries the near-misses
    └── CliError              a ``mock-akto`` command failure, one line on stderr; ``code``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .journal import JournalEntryModel


class MockAktoError(Exception):
    """Base of every exception mock-akto raises on purpose."""


# -- the Akto routes (hot path) ---------------------------------------------------------------------------


class BadRequest(MockAktoError):
    """The body cannot be used: ``message`` says why (shown to the client, so never echo a token)."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.message = message
        self.error = error


class BodyTooLarge(MockAktoError):
    """The body passed the engine's ``max_body_bytes`` (answered 413, the rest drained unread)."""


class ClientGone(MockAktoError):
    """The client went away before its whole body arrived (nothing to answer)."""


# -- configuration: names, files, presets ---------------------------------------------------------------


class ConfigurationError(MockAktoError, ValueError):
    """Input the engine cannot use; the message names the file, field or name."""


class NamespaceError(ConfigurationError):
    """A namespace name that cannot be used (shown to the caller as a 4xx)."""


class PolicyLoadError(ConfigurationError):
    """A policy file or preset that cannot be used; the message names the file and the field."""


class PresetFileError(ConfigurationError):
    """An apply file that cannot be used; the message names the file and the field."""


# -- running state ---------------------------------------------------------------------------------------


class RegexTimeout(MockAktoError, RuntimeError):
    """A policy's regex ran past its time budget on a payload (catastrophic backtracking)."""

    def __init__(self, policy: str, pattern: str, timeout_s: float) -> None:
        super().__init__(f"policy {policy!r}: regex {pattern!r} ran longer than {timeout_s * 1000:.0f} ms "
                         "on this payload (catastrophic backtracking?); simplify the pattern")


class ListenerError(MockAktoError, RuntimeError):
    """A listener could not be opened (no running server, or the port is taken)."""


class LimitReached(ConfigurationError):
    """An admin call would take the engine past one of its limits (listeners, API keys); says which."""


# -- the Python client and the command line --------------------------------------------------------------


class AdminError(MockAktoError, RuntimeError):
    """The admin API refused a call; ``status`` and ``detail`` are what it said."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"admin API answered {status}: {detail}")
        self.status = status
        self.detail = detail


class JournalTimeout(MockAktoError, TimeoutError):
    """:meth:`MockAktoClient.wait_for` ran out of time; ``entries`` is what had arrived."""

    def __init__(self, message: str, entries: list[JournalEntryModel]) -> None:
        super().__init__(message)
        self.entries = entries


class VerificationError(MockAktoError, AssertionError):
    """:meth:`MockAktoClient.verify` found the wrong number of matching calls; the message names the nearest
    journal entries and what each failed; ``result`` is the engine's whole answer."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


class CliError(MockAktoError):
    """A failure to report as one line on stderr; ``code`` 2 for bad input, 1 for engine trouble."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
