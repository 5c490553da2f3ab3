"""Ad admin tokens: bearer tokens of the account service for the campaign API.

Checked by `streamer.bearer_tokens` like analytics tokens: audience "streamer-ads", `sub` (the
operator, for the log), `exp`, and the scope "ads:admin" in `scope` (space-separated, RFC 8693
section 4.2). A listener, ingest or analytics token is refused by its audience: only the
platform's ad operations manage campaigns.
"""

from __future__ import annotations

import time
from collections.abc import Callable

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

ADS_ADMIN_AUDIENCE = "streamer-ads"
ADS_ADMIN_SCOPE = "ads:admin"
ADS_ADMIN_TOKEN = TokenKind("ad admin token", ADS_ADMIN_AUDIENCE, scope=ADS_ADMIN_SCOPE)
DEV_TOKEN_TTL_S = 24 * 3600
MAX_SUBJECT_CHARS = 128


class AdsAdminVerifier:
    """Verifies `Authorization: Bearer <ad admin jwt>`; the operator's subject."""

    def __init__(self, key: bytes, clock: Callable[[], float]) -> None:
        self._tokens = BearerTokenVerifier(key, ADS_ADMIN_TOKEN, clock)

    def verify_header(self, authorization: str | None) -> str:
        token = bearer_credentials(authorization)
        if token is None:
            raise Unauthorized("send an ad admin token as 'Authorization: Bearer <token>'")
        try:
            claims = self._tokens.verify(token)
        except BearerTokenRefused as exc:
            raise Unauthorized(str(exc)) from exc
        except BearerScopeMissing as exc:
            raise Forbidden(str(exc)) from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise Unauthorized(f"ad admin token claim 'sub' is not 1 to {MAX_SUBJECT_CHARS} chars")
        return subject


def issue_ads_admin_token(key: bytes, subject: str, ttl_s: int, now: float) -> str:
    """An ad admin token as the account service would issue it."""
    if not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise ValueError(f"subject must be 1 to {MAX_SUBJECT_CHARS} characters")
    return sign_bearer_token(key, ADS_ADMIN_TOKEN, subject, ttl_s, now)


def issue_dev_ads_admin_token(settings: Settings, user: str, ttl_s: int = DEV_TOKEN_TTL_S) -> str:
    """A development ad admin token under the configured (or generated) secret:
    `streamer token --scope ads-admin --user <operator>`."""
    secrets = load_token_secrets(settings)
    return issue_ads_admin_token(secrets.platform_key, user, ttl_s, time.time())
