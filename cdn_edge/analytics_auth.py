"""Creator analytics tokens: bearer tokens of the account service, like listener tokens.

Checked by `streamer.bearer_tokens`: audience "streamer-analytics", with `sub` (the creator),
`exp` and the scope "analytics" in `scope` (space-separated, RFC 8693 section 4.2). A token
reads the tracks its creator submitted (the track record's `metadata.submitted_by`, set by the
ingest API from the ingest token's subject), or every track when it carries `"tracks": "*"`
(royalty accounting, operators).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cdn_edge.errors import Forbidden, Unauthorized
from streamer.bearer_tokens import (
    BearerTokenVerifier,
    TokenKind,
    bearer_credentials,
    sign_bearer_token,
)
from streamer.errors import BearerScopeMissing, BearerTokenRefused
from streamer.settings import Settings
from streamer.token_secrets import load_token_secrets

ANALYTICS_AUDIENCE = "streamer-analytics"
ANALYTICS_SCOPE = "analytics"
ANALYTICS_TOKEN = TokenKind("analytics token", ANALYTICS_AUDIENCE, scope=ANALYTICS_SCOPE)
ALL_TRACKS = "*"
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
        self._tokens = BearerTokenVerifier(key, ANALYTICS_TOKEN, clock)

    def verify_header(self, authorization: str | None) -> AnalyticsGrant:
        token = bearer_credentials(authorization)
        if token is None:
            raise Unauthorized("send an analytics token as 'Authorization: Bearer <token>'")
        return self.verify(token)

    def verify(self, token: str) -> AnalyticsGrant:
        try:
            claims = self._tokens.verify(token)
        except BearerTokenRefused as exc:
            raise Unauthorized(str(exc)) from exc
        except BearerScopeMissing as exc:
            raise Forbidden(str(exc)) from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise Unauthorized(f"analytics token claim 'sub' is not 1 to {MAX_SUBJECT_CHARS} chars")
        return AnalyticsGrant(subject, claims.get("tracks") == ALL_TRACKS)


def issue_analytics_token(
    key: bytes, subject: str, ttl_s: int, now: float, *, all_tracks: bool = False
) -> str:
    """An analytics token as the account service would issue it."""
    if not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise ValueError(f"subject must be 1 to {MAX_SUBJECT_CHARS} characters")
    extra = {"tracks": ALL_TRACKS} if all_tracks else None
    return sign_bearer_token(key, ANALYTICS_TOKEN, subject, ttl_s, now, extra)


def issue_dev_analytics_token(
    settings: Settings, user: str, ttl_s: int = DEV_TOKEN_TTL_S, *, all_tracks: bool = False
) -> str:
    """A development analytics token under the configured (or generated) secret: the CLI's
    `streamer token --scope analytics --user <creator>`."""
    secrets = load_token_secrets(settings)
    return issue_analytics_token(
        secrets.platform_key, user, ttl_s, time.time(), all_tracks=all_tracks
    )
