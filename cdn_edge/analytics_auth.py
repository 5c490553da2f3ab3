"""Creator analytics tokens: JWTs of the account service, like listener tokens.

HS256 (RFC 7518 section 3.2) under `TokenSecrets.platform_key`, audience "streamer-analytics",
with `sub` (the creator), `exp` and the scope "analytics" in `scope` (space-separated, RFC 8693
section 4.2). A token reads the tracks its creator submitted (the track record's
`metadata.submitted_by`, set by the ingest API from the ingest token's subject), or every
track when it carries `"tracks": "*"` (royalty accounting, operators).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from cdn_edge.errors import Forbidden, Unauthorized
from streamer.settings import Settings
from streamer.token_secrets import load_token_secrets

ANALYTICS_AUDIENCE = "streamer-analytics"
ANALYTICS_SCOPE = "analytics"
ANALYTICS_ALGORITHM = "HS256"
ALL_TRACKS = "*"
CLOCK_SKEW_S = 30  # as for listener tokens
DEV_TOKEN_TTL_S = 24 * 3600
MAX_SUBJECT_CHARS = 128


@dataclass(frozen=True)
class AnalyticsGrant:
    """Who asks for analytics, and whether they may read every track."""

    subject: str
    all_tracks: bool = False

    def may_read(self, submitted_by: object) -> bool:
        return self.all_tracks or submitted_by == self.subject


class AnalyticsVerifier:
    """Verifies `Authorization: Bearer <analytics jwt>` against the injected clock."""

    def __init__(self, key: bytes, clock: Callable[[], float]) -> None:
        self._key = key
        self._clock = clock

    def verify_header(self, authorization: str | None) -> AnalyticsGrant:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send an analytics token as 'Authorization: Bearer <token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> AnalyticsGrant:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ANALYTICS_ALGORITHM],
                audience=ANALYTICS_AUDIENCE,
                options={
                    "require": ["sub", "exp", "aud"],
                    "verify_exp": False,  # checked below against the injected clock
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"analytics token refused: {exc}") from exc
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise Unauthorized("analytics token claim 'exp' is not a number of unix seconds")
        now = self._clock()
        if now >= exp + CLOCK_SKEW_S:
            raise Unauthorized(f"analytics token expired {int(now - exp)} s ago")
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise Unauthorized(f"analytics token claim 'sub' is not 1 to {MAX_SUBJECT_CHARS} chars")
        if ANALYTICS_SCOPE not in str(claims.get("scope", "")).split():
            raise Forbidden(f"the token lacks the {ANALYTICS_SCOPE!r} scope")
        return AnalyticsGrant(subject, claims.get("tracks") == ALL_TRACKS)


def issue_analytics_token(
    key: bytes, subject: str, ttl_s: int, now: float, *, all_tracks: bool = False
) -> str:
    """An analytics token as the account service would issue it."""
    if not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise ValueError(f"subject must be 1 to {MAX_SUBJECT_CHARS} characters")
    claims: dict[str, object] = {
        "sub": subject,
        "aud": ANALYTICS_AUDIENCE,
        "scope": ANALYTICS_SCOPE,
        "iat": int(now),
        "exp": int(now) + ttl_s,
    }
    if all_tracks:
        claims["tracks"] = ALL_TRACKS
    return jwt.encode(claims, key, algorithm=ANALYTICS_ALGORITHM)


def issue_dev_analytics_token(
    settings: Settings, user: str, ttl_s: int = DEV_TOKEN_TTL_S, *, all_tracks: bool = False
) -> str:
    """A development analytics token under the configured (or generated) secret: the CLI's
    `streamer token --scope analytics --user <creator>`."""
    secrets = load_token_secrets(settings)
    return issue_analytics_token(
        secrets.platform_key, user, ttl_s, time.time(), all_tracks=all_tracks
    )
