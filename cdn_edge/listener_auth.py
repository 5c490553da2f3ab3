"""Listener identity: the account service's bearer token, a JWT verified with PyJWT.

The token is HS256 (RFC 7518 section 3.2) under `TokenSecrets.platform_key`, addressed to the
audience "streamer-edge", and must carry `sub` (user id), `tier` ("free" | "premium"),
`region` and `exp`. Time comes from the injected clock, not from PyJWT, so tests need no sleep.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import jwt

from cdn_edge.errors import Unauthorized
from cdn_edge.policy.negotiation import TIER_RANK, Listener
from streamer.catalog import Tier
from streamer.settings import Settings
from streamer.token_secrets import load_token_secrets

LISTENER_AUDIENCE = "streamer-edge"
LISTENER_ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "tier", "region", "exp", "aud")
CLOCK_SKEW_S = 30  # tolerated drift between the account service's clock and ours
DEV_TOKEN_TTL_S = 24 * 3600
_USER_ID = re.compile(r"[A-Za-z0-9_.@:\-]{1,128}")
_REGION = re.compile(r"[A-Za-z0-9_\-]{1,16}")  # ISO 3166 codes and a few platform names


class ListenerVerifier:
    """Verifies `Authorization: Bearer <jwt>` headers and returns the listener they name."""

    def __init__(self, key: bytes, clock: Callable[[], float]) -> None:
        self._key = key
        self._clock = clock

    def verify_header(self, authorization: str | None) -> Listener:
        if not authorization:
            raise Unauthorized("send the listener token as 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <listener token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> Listener:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[LISTENER_ALGORITHM],
                audience=LISTENER_AUDIENCE,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    # exp and nbf are checked below against the injected clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            # PyJWT's messages name the failed check, never the token.
            raise Unauthorized(f"listener token refused: {exc}") from exc
        now = self._clock()
        exp = claims["exp"]
        if not _is_number(exp):
            raise Unauthorized("listener token claim 'exp' is not a number of unix seconds")
        if now >= exp + CLOCK_SKEW_S:
            raise Unauthorized(f"listener token expired {int(now - exp)} s ago")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or now + CLOCK_SKEW_S < nbf):
            raise Unauthorized("listener token is not valid yet (nbf)")
        sub, tier, region = claims["sub"], claims["tier"], claims["region"]
        if not isinstance(sub, str) or not _USER_ID.fullmatch(sub):
            raise Unauthorized("listener token claim 'sub' is not a user id of 1 to 128 chars")
        if tier not in TIER_RANK:
            raise Unauthorized(f"listener token claim 'tier' must be one of {sorted(TIER_RANK)}")
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise Unauthorized("listener token claim 'region' is not a region code")
        return Listener(user_id=sub, tier=tier, region=region)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
    claims = {
        "sub": user,
        "tier": tier,
        "region": region,
        "aud": LISTENER_AUDIENCE,
        "iat": int(now),
        "exp": int(now) + ttl_s,
    }
    return jwt.encode(claims, key, algorithm=LISTENER_ALGORITHM)


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
