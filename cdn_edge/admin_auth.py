"""Operator tokens: bearer tokens of the account service for the edge's admin APIs.

One kind of token for every operator action, told apart by scope (space-separated `scope`,
RFC 8693 section 4.2): "licences" revokes download licences (support, fraud, a rights
holder's takedown), "ads:admin" manages ad campaigns. Checked by `streamer.bearer_tokens`:
audience "streamer-admin", `sub` (the operator, recorded with what they did) and `exp`.
Listener, analytics and ingest tokens are refused by their audience; an operator token
without an API's scope gets 403 from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

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
ADS_SCOPE = "ads:admin"
SCOPES = (LICENCES_SCOPE, ADS_SCOPE)
MAX_SUBJECT_CHARS = 128
DEV_TOKEN_TTL_S = 3600  # an operator's session: an hour is enough for what needs doing


def _kind(scope: str) -> TokenKind:
    return TokenKind("admin token", ADMIN_AUDIENCE, scope=scope)


class AdminVerifier:
    """Verifies `Authorization: Bearer <admin jwt>` for one scope; returns the operator."""

    def __init__(self, key: bytes, clock: Callable[[], float], scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown admin scope {scope!r}; one of {', '.join(SCOPES)}")
        self._tokens = BearerTokenVerifier(key, _kind(scope), clock)

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


def issue_admin_token(
    key: bytes, subject: str, ttl_s: int, now: float, scopes: Sequence[str] = (LICENCES_SCOPE,)
) -> str:
    """An admin token for `scopes`, as the account service would issue it."""
    if not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise ValueError(f"subject must be 1 to {MAX_SUBJECT_CHARS} characters")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {list(scopes)}")
    return sign_bearer_token(
        key, _kind(scopes[0]), subject, ttl_s, now, {"scope": " ".join(scopes)}
    )


def issue_dev_admin_token(
    settings: Settings, user: str, scopes: Sequence[str], ttl_s: int = DEV_TOKEN_TTL_S
) -> str:
    """A development admin token under the configured (or generated) secret: the CLI's
    `streamer token --scope admin|ads-admin --user <operator>`."""
    secrets = load_token_secrets(settings)
    return issue_admin_token(secrets.platform_key, user, ttl_s, time.time(), scopes)
