"""The edge's own URL tokens, stateless and signed with `drm.sign_token`.

    session token  "p"  in the session's path, /v1/s/{token}/   session, track, version, user,
                                               tier, variants, region (for content steering)

One token opens a session's playlists, keys and segments, and nothing else: the tier and the
offered renditions come from its claims, never from the URL. nginx checks the same token
before it serves a segment (cdn_edge/nginx_tier/streamer_tier.lua). Playback never reads a
database: everything an endpoint needs is in the token. Every token names its kind in "t", so
one kind never passes for another (the JWTs of cdn_edge.listener_auth are another format).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from drm import authenticate_token, check_claims, sign_token
from streamer.catalog import Tier

SESSION_TTL_S = 4 * 3600  # plus the track's duration: a long pause, then the rest of the track

# Tokens whose signature verified, with their claims: a player presents its session's token
# on every playlist, key and segment request, so most requests cost a dict lookup and an
# expiry check instead of an HMAC and a JSON parse.
VERIFIED_TOKEN_CACHE = 16_384  # about 16 MB

KIND_SESSION = "p"


@dataclass(frozen=True)
class SessionClaims:
    """What a session token carries."""

    session_id: str
    track_id: str
    version: str
    user_id: str
    tier: Tier
    variants: tuple[str, ...]
    expires_at: int
    region: str = ""  # the listener's region, as its token said; "" in tokens from before


class PlaybackTokens:
    """Signs and verifies session tokens under one key."""

    def __init__(self, key: bytes | tuple[bytes, ...]) -> None:
        # A tuple rotates keys: sign with the first, accept any (see drm.tokens).
        self._key = key
        self._verified: OrderedDict[str, SessionClaims] = OrderedDict()

    def sign_session(self, claims: SessionClaims) -> str:
        return sign_token(
            {
                "t": KIND_SESSION,
                "sid": claims.session_id,
                "trk": claims.track_id,
                "ver": claims.version,
                "sub": claims.user_id,
                "tier": claims.tier,
                "var": ",".join(claims.variants),
                "exp": claims.expires_at,
                "reg": claims.region,
            },
            self._key,
        )

    def verify_session(self, token: str, now: int) -> SessionClaims:
        """Raises drm.TokenError (401, or 403 for a token of another kind)."""
        claims = self._verified.get(token)
        if claims is not None:
            check_claims({"exp": claims.expires_at}, now)  # expiry, on every request
            return claims
        raw = authenticate_token(token, self._key)  # raises: nothing is cached
        check_claims(raw, now, {"t": KIND_SESSION})
        claims = SessionClaims(
            session_id=str(raw["sid"]),
            track_id=str(raw["trk"]),
            version=str(raw["ver"]),
            user_id=str(raw["sub"]),
            tier=_tier(raw["tier"]),
            variants=tuple(str(raw["var"]).split(",")),
            expires_at=int(raw["exp"]),
            region=str(raw.get("reg", "")),
        )
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_TOKEN_CACHE:
            self._verified.popitem(last=False)
        return claims


def _tier(value: str | int) -> Tier:
    # Authentic tokens are ours, so this only fails on a bug; still, never trust a cast.
    if value == "free":
        return "free"
    if value == "premium":
        return "premium"
    raise ValueError(f"token tier {value!r} is neither free nor premium")
