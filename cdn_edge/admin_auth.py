"""Operator tokens for licence administration: bearer tokens of the account service.

Checked by `streamer.bearer_tokens`: audience "streamer-admin", with `sub` (the operator),
`exp`, and the scope "licences" in `scope`. An operator revokes any download licence
(support, fraud, a rights holder's takedown); the revocation records who did it.
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

ADMIN_AUDIENCE = "streamer-admin"
LICENCES_SCOPE = "licences"
ADMIN_TOKEN = TokenKind("admin token", ADMIN_AUDIENCE, scope=LICENCES_SCOPE)
MAX_SUBJECT_CHARS = 128
DEV_TOKEN_TTL_S = 3600  # an operator's token: an hour is enough to revoke what needs revoking


class AdminVerifier:
    """Verifies `Authorization: Bearer <admin jwt>`; returns the operator's subject."""

    def __init__(self, key: bytes, clock: Callable[[], float]) -> None:
        self._tokens = BearerTokenVerifier(key, ADMIN_TOKEN, clock)

    def verify_header(self, authorization: str | None) -> str:
        token = bearer_credentials(authorization)
        if token is None:
            raise Unauthorized("send an admin token as 'Authorization: Bearer <token>'")
        try:
            claims = self._tokens.verify(token)
        except BearerTokenRefused as exc:
            raise Unauthorized(str(exc)) from exc
        except BearerScopeMissing as exc:
            raise Forbidden(str(exc)) from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise Unauthorized(f"admin token claim 'sub' is not 1 to {MAX_SUBJECT_CHARS} chars")
        return subject


def issue_admin_token(key: bytes, subject: str, ttl_s: int, now: float) -> str:
    """An admin token as the account service would issue it."""
    if not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise ValueError(f"subject must be 1 to {MAX_SUBJECT_CHARS} characters")
    return sign_bearer_token(key, ADMIN_TOKEN, subject, ttl_s, now)


def issue_dev_admin_token(settings: Settings, user: str, ttl_s: int = DEV_TOKEN_TTL_S) -> str:
    """A development admin token under the configured (or generated) secret: the CLI's
    `streamer token --scope admin --user <operator>`."""
    secrets = load_token_secrets(settings)
    return issue_admin_token(secrets.platform_key, user, ttl_s, time.time())
