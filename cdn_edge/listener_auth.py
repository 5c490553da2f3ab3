"""Listener identity: the account service's bearer token, checked by `streamer.bearer_tokens`.

The token is addressed to the audience "streamer-edge" and must carry `sub` (user id), `tier`
("free" | "premium"), `region` and `exp`; signature, algorithm, expiry and clock leeway are the
shared verifier's. This module maps the claims to a `Listener` and refusals to 401.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from cdn_edge.errors import Unauthorized
from cdn_edge.policy.negotiation import TIER_RANK, Listener
from streamer.bearer_tokens import (
    BearerTokenVerifier,
    TokenKind,
    bearer_credentials,
    sign_bearer_token,
)
from streamer.catalog import Tier
from streamer.errors import BearerTokenRefused
from streamer.settings import Settings
from streamer.token_secrets import load_token_secrets

LISTENER_AUDIENCE = "streamer-edge"
LISTENER_TOKEN = TokenKind("listener token", LISTENER_AUDIENCE, claims=("tier", "region"))
DEV_TOKEN_TTL_S = 24 * 3600
_USER_ID = re.compile(r"[A-Za-z0-9_.@:\-]{1,128}")
_REGION = re.compile(r"[A-Za-z0-9_\-]{1,16}")  # ISO 3166 codes and a few platform names


class ListenerVerifier:
    """Verifies `Authorization: Bearer <jwt>` headers and returns the listener they name."""

    def __init__(self, key: bytes, clock: Callable[[], float]) -> None:
        self._tokens = BearerTokenVerifier(key, LISTENER_TOKEN, clock)

    def verify_header(self, authorization: str | None) -> Listener:
        if not authorization:
            raise Unauthorized("send the listener token as 'Authorization: Bearer <token>'")
        token = bearer_credentials(authorization)
        if token is None:
            raise Unauthorized("the Authorization header must be 'Bearer <listener token>'")
        return self.verify(token)

    def verify(self, token: str) -> Listener:
        try:
            claims = self._tokens.verify(token)
        except BearerTokenRefused as exc:
            raise Unauthorized(str(exc)) from exc
        sub, tier, region = claims["sub"], claims["tier"], claims["region"]
        if not isinstance(sub, str) or not _USER_ID.fullmatch(sub):
            raise Unauthorized("listener token claim 'sub' is not a user id of 1 to 128 chars")
        if not isinstance(tier, str) or tier not in TIER_RANK:
            raise Unauthorized(f"listener token claim 'tier' must be one of {sorted(TIER_RANK)}")
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise Unauthorized("listener token claim 'region' is not a region code")
        return Listener(user_id=sub, tier=tier, region=region)


def issue_listener_token(
    key: bytes, user: str, tier: Tier, region: str, ttl_s: int, now: float
) -> str:
    """A listener token as the account service would issue it."""
    if tier not in TIER_RANK:
        raise ValueError(f"tier must be one of {sorted(TIER_RANK)}, got {tier!r}")
    if not _USER_ID.fullmatch(user):
        raise ValueError(f"user id {user!r} is not 1 to 128 of letters, digits, '_.@:-'")
    if not _REGION.fullmatch(region):
        raise ValueError(f"region {region!r} is not 1 to 16 of letters, digits, '_-'")
    return sign_bearer_token(
        key, LISTENER_TOKEN, user, ttl_s, now, {"tier": tier, "region": region}
    )


def issue_dev_token(
    settings: Settings,
    user: str,
    tier: Tier,
    region: str = "SE",
    ttl_s: int = DEV_TOKEN_TTL_S,
) -> str:
    """A development listener token under the configured (or generated) secret: the CLI's."""
    secrets = load_token_secrets(settings)
    return issue_listener_token(secrets.platform_key, user, tier, region, ttl_s, time.time())
