"""The token decoders: session tokens (drm.tokens, PlaybackTokens) and the three JWT
verifiers (listener, analytics, ingest). Any text, edits of genuine tokens, and JWTs of any
header and claims, signed with the right key or not: each is accepted or refused with the
verifier's own 4xx error, nothing else."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.counting import SCALES, budget, tried
from tests.fuzz.strategies import JSON, SCALARS
from tests.fuzz.targets import (
    AnalyticsVerifier,
    ApiError,
    EdgeError,
    ListenerVerifier,
    PlaybackTokens,
    SessionClaims,
    TokenError,
    authenticate_token,
    ingest_token_verifier,
)
from tests.security import forgery

KEY = b"fuzz-platform-key-" + b"k" * 32
PLAYBACK_KEY = b"fuzz-playback-key-" + b"p" * 32
NOW = 1_700_000_000
B64URL = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
)


def _genuine_session() -> str:
    claims = SessionClaims("sid-1", "TRK1", "v1", "u1", "premium", ("aac_96", "flac"), NOW + 60)
    return PlaybackTokens(PLAYBACK_KEY).sign_session(claims)


@st.composite
def session_texts(draw: st.DrawFn) -> str:
    """Edits of a genuine session token, base64url soup with dots, or any text."""
    token = _genuine_session()
    kind = draw(st.integers(0, 3))
    if kind == 0:
        at = draw(st.integers(0, len(token)))
        cut = draw(st.integers(0, 4))
        return token[:at] + draw(st.text(max_size=4)) + token[at + cut :]
    if kind == 1:
        parts = draw(st.lists(B64URL, min_size=1, max_size=4))
        return ".".join(parts)
    if kind == 2:
        claims = draw(st.dictionaries(st.text(max_size=6), SCALARS, max_size=6))
        payload = forgery.b64url(json.dumps(claims).encode())
        return payload + "." + token.split(".")[1]
    return draw(st.text(max_size=300))


@pytest.mark.parametrize("scale", SCALES)
def test_session_tokens(scale: int) -> None:
    tokens = PlaybackTokens(PLAYBACK_KEY)

    @budget(500, scale)
    @given(session_texts())
    def check(text: str) -> None:
        tried("session tokens (drm.authenticate_token, PlaybackTokens)")
        for verify in (
            lambda: authenticate_token(text, PLAYBACK_KEY),
            lambda: tokens.verify_session(text, NOW),
        ):
            try:
                verify()
            except TokenError as exc:
                assert 400 <= exc.http_status < 500 and str(exc)

    check()


HEADERS = st.fixed_dictionaries(
    {"alg": st.sampled_from(["HS256", "HS384", "none", "RS256", "", "hs256"]) | JSON},
    optional={"typ": JSON, "kid": JSON, "crit": JSON, "b64": JSON, "jku": JSON},
)
CLAIMS = st.fixed_dictionaries(
    {},
    optional={
        "sub": st.sampled_from(["alice", "", "a" * 200, "../x"]) | JSON,
        "aud": st.sampled_from(["streamer-edge", "streamer-ingest", "streamer-analytics"])
        | st.lists(st.sampled_from(["streamer-edge", "streamer-ingest", "x"]))
        | JSON,
        "exp": st.integers(NOW - 100, NOW + 10**6) | JSON,
        "nbf": st.integers(NOW - 100, NOW + 10**6) | JSON,
        "iat": JSON,
        "tier": st.sampled_from(["free", "premium", "gold"]) | JSON,
        "region": st.sampled_from(["SE", "", "s e"]) | JSON,
        "scope": st.sampled_from(["ingest", "analytics", "ingest analytics"]) | JSON,
        "tracks": st.just("*") | JSON,
    },
)


@st.composite
def jwts(draw: st.DrawFn) -> str:
    """A JWT of any header and claims, signed with the platform key (as the account service
    might, quirks and all), with another key, or not at all; or any text."""
    header = draw(HEADERS)
    claims = draw(CLAIMS)
    kind = draw(st.integers(0, 3))
    try:
        head = forgery.b64url(json.dumps(header).encode())
        body = forgery.b64url(json.dumps(claims).encode())
    except (TypeError, ValueError):
        return draw(st.text(max_size=100))
    if kind == 0:
        return forgery.jwt_hmac(claims, KEY)  # right key, any claims
    if kind == 1:
        return f"{head}.{body}.{draw(B64URL)}"
    if kind == 2:
        return f"{head}.{body}.{forgery.b64url(draw(st.binary(max_size=40)))}"
    return draw(st.text(max_size=200))


AUTHORIZATION = st.builds(lambda scheme, token: f"{scheme}{token}",
                          st.sampled_from(["Bearer ", "bearer ", "Basic ", "", "Bearer  "]),
                          jwts())  # fmt: skip


@pytest.mark.parametrize("scale", SCALES)
def test_jwt_verifiers(scale: int) -> None:
    clock = lambda: float(NOW)  # noqa: E731
    listener, analytics = ListenerVerifier(KEY, clock), AnalyticsVerifier(KEY, clock)
    ingest = ingest_token_verifier(KEY, clock)

    @budget(600, scale)
    @given(AUTHORIZATION | st.none())
    def check(authorization: str | None) -> None:
        tried("JWTs (listener, analytics and ingest verifiers)")
        outcomes: list[Any] = []
        for verify in (listener.verify_header, analytics.verify_header):
            try:
                outcomes.append(verify(authorization))
            except EdgeError as exc:
                assert exc.http_status in (401, 403) and str(exc)
        try:
            token = (authorization or "").partition(" ")[2].strip()
            outcomes.append(ingest(token))
        except ApiError as exc:
            assert exc.status in (401, 403) and str(exc)

    check()


def test_clock_is_the_injected_one() -> None:
    # The verifiers above run at NOW; a token issued now must verify, or the property is empty.
    token = forgery.jwt_hmac(
        {"sub": "a", "tier": "free", "region": "SE", "aud": "streamer-edge", "exp": NOW + 60}, KEY
    )
    assert ListenerVerifier(KEY, lambda: float(NOW)).verify(token).user_id == "a"
    assert time.time() > NOW
