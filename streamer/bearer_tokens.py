"""Bearer tokens of the account service: one verifier and one signer for every kind.

Listener, analytics and ingest tokens are JWTs (RFC 7519) signed with HS256 (RFC 7518 section
3.2) under `TokenSecrets.platform_key`. A kind differs only in its audience (`aud` keeps the
kinds apart), the scope it needs (space-separated `scope`, RFC 8693 section 4.2) and the claims
it requires; each app maps the claims to its own grant and the errors to its own statuses.
Time comes from an injected clock, not from PyJWT, so tests need no sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from streamer.errors import BearerScopeMissing, BearerTokenExpired, BearerTokenRefused

# The only algorithm accepted. PyJWT refuses any `alg` not in this list, `none` included
# (RFC 8725 section 3.1: the verifier, not the token, chooses the algorithm).
ALGORITHM = "HS256"
# Tolerated drift between the account service's clock and ours, the same for every kind: NTP
# keeps hosts within a second, but a token minted just before a request must not bounce off a
# host that runs a little ahead, and 30 s is short against token lifetimes of minutes to a day.
CLOCK_LEEWAY_S = 30
# Claims every kind requires; `exp` bounds every token's life.
BASE_CLAIMS = ("sub", "exp", "aud")
# Time claims beyond this are malformed: the largest integer every JSON implementation keeps
# exactly (I-JSON, RFC 7493 section 2.2), far past any real expiry.
MAX_UNIX_SECONDS = 2**53


@dataclass(frozen=True)
class TokenKind:
    """What one kind of bearer token is addressed to and must carry."""

    name: str  # in messages: "listener token refused: ..."
    audience: str
    scope: str | None = None  # a scope the token's `scope` claim must list
    claims: tuple[str, ...] = ()  # required beyond BASE_CLAIMS


def bearer_credentials(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750 section 2.1), or None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class BearerTokenVerifier:
    """Checks signature, algorithm, audience, required claims, expiry and scope of one kind."""

    def __init__(self, key: bytes, kind: TokenKind, clock: Callable[[], float]) -> None:
        self._key = key
        self._kind = kind
        self._clock = clock

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; raises BearerTokenRefused (401) or BearerScopeMissing (403)."""
        name = self._kind.name
        if not token.isascii():  # a JWT is base64url; PyJWT raises UnicodeEncodeError on more
            reason = "it is not ASCII"
            raise BearerTokenRefused(f"{name} refused: {reason}", reason)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self._kind.audience,
                options={
                    "require": [*BASE_CLAIMS, *self._kind.claims],
                    # exp and nbf are checked below against the injected clock; iat is
                    # informational.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            # PyJWT's messages name the failed check, never the token.
            raise BearerTokenRefused(f"{name} refused: {exc}", str(exc)) from exc
        now = self._clock()
        exp = claims["exp"]
        if not _is_number(exp):
            reason = "claim 'exp' is not a number of unix seconds"
            raise BearerTokenRefused(f"{name} {reason}", reason)
        if now >= exp + CLOCK_LEEWAY_S:
            reason = f"expired {int(now - exp)} s ago"
            raise BearerTokenExpired(f"{name} {reason}", reason)
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or now + CLOCK_LEEWAY_S < nbf):
            reason = "not valid yet (nbf)"
            raise BearerTokenRefused(f"{name} is {reason}", reason)
        scope = self._kind.scope
        if scope is not None and scope not in str(claims.get("scope", "")).split():
            raise BearerScopeMissing(f"the token lacks the {scope!r} scope")
        return claims


def sign_bearer_token(
    key: bytes,
    kind: TokenKind,
    subject: str,
    ttl_s: int,
    now: float,
    extra: Mapping[str, object] | None = None,
) -> str:
    """A token of `kind` for `subject`, as the account service issues them."""
    issued = int(now)
    claims: dict[str, object] = {"sub": subject, "aud": kind.audience}
    if kind.scope is not None:
        claims["scope"] = kind.scope
    claims.update(extra or {})
    claims.update(iat=issued, exp=issued + ttl_s)
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def _is_number(value: object) -> bool:
    """A JSON number usable as unix seconds. Python's JSON reader accepts NaN, Infinity and
    integers of any size; NaN compares false with everything, so an `exp` of NaN would never
    expire, and a huge int overflows float arithmetic. Both are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return -MAX_UNIX_SECONDS <= value <= MAX_UNIX_SECONDS
