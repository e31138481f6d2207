"""Who may call the TrueFoundry endpoint: the JWT TrueFoundry sends in ``Authorization``.

Akto's ingestion service reads the *raw* header value as a JWT and so rejects TrueFoundry's "Custom Bearer
Auth" (``Bearer <jwt>``) with 401 (../shared/contracts/truefoundry.md section 6.4). We accept both forms:
the raw token (what the native Akto provider and the "Headers" route send) and ``Bearer <token>`` (what
Custom Bearer Auth sends), so either dashboard setup works.

Validation: the token must be signed with the configured key (HS256 shared secret, or an RS256 public key
like Akto's ``RSA_PUBLIC_KEY``), carry an ``accountId`` claim (Akto requires it), be unexpired when it has
``exp``, and not be listed as revoked. The algorithm comes from the configured key, never from the token.
No key configured means no authentication (Akto's default, ``AKTO_DI_AUTHENTICATE`` unset).
Error messages never contain the token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jwt

REQUIRED_CLAIM = "accountId"


class Unauthorized(Exception):
    """The caller is not authenticated; the message is safe to show and to log."""


def token_from_header(value: str | None) -> str:
    """The token from an ``Authorization`` value, raw or ``Bearer <token>`` (scheme in any case)."""
    value = (value or "").strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    if not value:
        raise Unauthorized("missing Authorization token")
    return value


@dataclass(frozen=True)
class TokenVerifier:
    """Checks the caller's JWT. Configure exactly one of ``hs256_secret`` and ``rs256_public_key``."""

    hs256_secret: str | None = field(default=None, repr=False)
    rs256_public_key: str | None = None
    revoked: frozenset[str] = field(default_factory=frozenset, repr=False)

    def __post_init__(self) -> None:
        if self.hs256_secret and self.rs256_public_key:
            raise ValueError("configure either an HS256 secret or an RS256 public key, not both")

    @property
    def enabled(self) -> bool:
        return bool(self.hs256_secret or self.rs256_public_key)

    def verify(self, authorization: str | None) -> None:
        """Raise :class:`Unauthorized` unless ``authorization`` carries a valid, unrevoked token."""
        if not self.enabled and not self.revoked:
            return
        token = token_from_header(authorization)
        if token in self.revoked:
            raise Unauthorized("token revoked")
        if not self.enabled:
            return
        key, algorithm = (self.hs256_secret, "HS256") if self.hs256_secret else (self.rs256_public_key, "RS256")
        try:
            jwt.decode(token, key, algorithms=[algorithm], options={"require": [REQUIRED_CLAIM]})
        except jwt.MissingRequiredClaimError:
            raise Unauthorized(f"token has no {REQUIRED_CLAIM} claim") from None
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("token signature does not verify") from None
        except jwt.DecodeError:
            raise Unauthorized("token is not a well-formed JWT") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {type(exc).__name__}") from None
