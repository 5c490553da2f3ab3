"""The nginx tier's gate in Python: what `streamer_tier.lua` decides for a segment URL.

The Lua gate is the one that runs; this is its specification, built on `PlaybackTokens`, so
one set of test vectors (tests/vectors/session_tokens.json) checks that the Python signer and
verifier and nginx agree. Pure: the time is passed in.

    400 malformed_name   the raw path is not /v1/s/{token}/{rendition}/{file}, file one of
                         init.mp4, seg_NNNNN.m4s, playlist.m3u8
    401 token_invalid    the token is malformed, forged, or its claims are not a session's
    401 token_expired    now >= exp
    403 token_mismatch   an authentic token of another kind (key "k", segment "g")
    403 not_entitled     the rendition is not in the session's offered variants ("var")
    200                  serve tracks/{trk}/{ver}/{rendition}/{file} (404 if it is missing)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdn_edge.errors import MalformedName
from cdn_edge.playback.tokens import PlaybackTokens, SessionClaims
from cdn_edge.policy.names import check_name
from drm import TokenClaimMismatch, TokenError, TokenExpired

# Kept in step with SEGMENT_PATH in streamer_tier.lua.
SEGMENT_PATH = re.compile(
    r"/v1/s/([A-Za-z0-9_.\-]{1,2048})/"
    r"([A-Za-z0-9_][A-Za-z0-9_.]{0,63})/(init\.mp4|seg_[0-9]{5,}\.m4s|playlist\.m3u8)"
)


@dataclass(frozen=True)
class SegmentDecision:
    """The gate's answer: a status, its error code, and what to serve when it is 200."""

    status: int
    code: str = ""  # the JSON body's "error"; "" when allowed
    object_key: str = ""  # tracks/{trk}/{ver}/{rendition}/{file} when allowed
    session: SessionClaims | None = None  # set once the token is authentic and unexpired


def decide_segment(raw_path: str, tokens: PlaybackTokens, now: int) -> SegmentDecision:
    """The gate's decision for a raw request path (query allowed, not percent-decoded)."""
    match = SEGMENT_PATH.fullmatch(raw_path.split("?", 1)[0])
    if match is None:
        return SegmentDecision(400, "malformed_name")
    token, rendition, file = match.groups()
    try:
        session = tokens.verify_session(token, now)
    except TokenClaimMismatch:
        return SegmentDecision(403, "token_mismatch")
    except TokenExpired:
        return SegmentDecision(401, "token_expired")
    except (TokenError, KeyError, ValueError):  # a missing claim; a tier neither free nor premium
        return SegmentDecision(401, "token_invalid")
    try:
        # Authentic claims are ours; still, they become a file path here.
        check_name("track id", session.track_id)
        check_name("version", session.version)
    except MalformedName:
        return SegmentDecision(401, "token_invalid")
    if rendition not in session.variants:
        return SegmentDecision(403, "not_entitled", session=session)
    key = f"tracks/{session.track_id}/{session.version}/{rendition}/{file}"
    return SegmentDecision(200, object_key=key, session=session)
