"""The edge's own URL tokens, stateless and signed with `drm.sign_token`.

    session token  "p"  in the playlist path   session, track, version, user, tier, variants,
                                               region (for content steering)
    segment token  "g"  ?s= on segment URIs    session, track, version, tier; one time window

Key URIs carry the session token (see `cdn_edge.keys_api`), so that one key has one URI in
all of a session's playlists. Playback never reads a database: everything an endpoint needs is
in its token. Every token names its kind in "t", so one kind never passes for another.

Segment token expiry is rounded up to a window, so segment URLs, and so a re-fetched media
playlist, stay identical within an hour, as Apple's HLS authoring spec asks of signed segment
URLs.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass

from drm import authenticate_token, check_claims, sign_token
from streamer.catalog import Tier

SESSION_TTL_S = 4 * 3600  # plus the track's duration: a long pause, then the rest of the track
SEGMENT_WINDOW_S = 3600  # signed segment URLs are stable within this window

SIGNED_TOKEN_CACHE = 16_384  # about 3 MB; a minute's worth of playlist fetches on a busy edge
# Tokens whose signature verified, with their claims: a listener presents the same segment and
# key tokens again and again. Expiry and the URL's claims are still checked on every request.
AUTHENTICATED_TOKEN_CACHE = 16_384  # about 16 MB

KIND_SESSION = "p"
KIND_SEGMENT = "g"


def _round_up(value: float, step: int) -> int:
    return math.ceil(value / step) * step


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


@dataclass(frozen=True)
class SegmentClaims:
    session_id: str
    track_id: str
    version: str
    tier: Tier
    expires_at: int


class PlaybackTokens:
    """Signs and verifies the three token kinds under one key."""

    def __init__(self, key: bytes | tuple[bytes, ...]) -> None:
        # A tuple rotates keys: sign with the first, accept any (see drm.tokens).
        self._key = key
        # Segment tokens are pure functions of claims and a rounded expiry, and a player asks
        # for every media playlist within the same window: signing each token once saves most
        # of a playlist's cost.
        self._sign_cached = functools.lru_cache(maxsize=SIGNED_TOKEN_CACHE)(self._sign)
        self._authenticated: OrderedDict[str, dict[str, str | int]] = OrderedDict()

    def _verify(self, token: str, now: int, expect: dict[str, str | int]) -> dict[str, str | int]:
        """The claims of an authentic, unexpired token matching `expect` (drm.TokenError)."""
        claims = self._authenticated.get(token)
        if claims is None:
            claims = authenticate_token(token, self._key)  # raises: nothing is cached
            self._authenticated[token] = claims
            if len(self._authenticated) > AUTHENTICATED_TOKEN_CACHE:
                self._authenticated.popitem(last=False)
        check_claims(claims, now, expect)
        return claims

    def _sign(self, claims: tuple[tuple[str, str | int], ...]) -> str:
        return sign_token(dict(claims), self._key)

    # Session tokens

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
        c = self._verify(token, now, {"t": KIND_SESSION})
        return SessionClaims(
            session_id=str(c["sid"]),
            track_id=str(c["trk"]),
            version=str(c["ver"]),
            user_id=str(c["sub"]),
            tier=_tier(c["tier"]),
            variants=tuple(str(c["var"]).split(",")),
            expires_at=int(c["exp"]),
            region=str(c.get("reg", "")),
        )

    # Segment tokens

    def sign_segment(self, session: SessionClaims, duration_s: float, now: int) -> str:
        # Valid to the end of the next window and, for long tracks, their length beyond it.
        window_end = _round_up(now + 1, SEGMENT_WINDOW_S)
        exp = window_end + _round_up(max(duration_s, SEGMENT_WINDOW_S), SEGMENT_WINDOW_S)
        return self._sign_cached(
            (
                ("t", KIND_SEGMENT),
                ("sid", session.session_id),
                ("trk", session.track_id),
                ("ver", session.version),
                ("tier", session.tier),
                ("exp", min(exp, session.expires_at)),
            )
        )

    def verify_segment(self, token: str, track_id: str, version: str, now: int) -> SegmentClaims:
        """Raises drm.TokenError; TokenClaimMismatch (403) for another track or version."""
        c = self._verify(token, now, {"t": KIND_SEGMENT, "trk": track_id, "ver": version})
        return SegmentClaims(
            session_id=str(c["sid"]),
            track_id=track_id,
            version=version,
            tier=_tier(c["tier"]),
            expires_at=int(c["exp"]),
        )


def _tier(value: str | int) -> Tier:
    # Authentic tokens are ours, so this only fails on a bug; still, never trust a cast.
    if value == "free":
        return "free"
    if value == "premium":
        return "premium"
    raise ValueError(f"token tier {value!r} is neither free nor premium")
