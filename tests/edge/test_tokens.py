"""Token tables: listener JWTs (PyJWT), the edge's own playback tokens, and secrets."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import jwt
import pytest

from cdn_edge.errors import Unauthorized
from cdn_edge.listener_auth import (
    LISTENER_AUDIENCE,
    ListenerVerifier,
    issue_dev_token,
    issue_listener_token,
)
from cdn_edge.playback.tokens import PlaybackTokens, SessionClaims
from cdn_edge.policy.negotiation import Listener
from drm import (
    TokenClaimMismatch,
    TokenExpired,
    TokenMalformed,
    TokenSignatureInvalid,
    sign_token,
)
from streamer.bearer_tokens import CLOCK_LEEWAY_S
from streamer.errors import ConfigError
from streamer.settings import Settings
from streamer.token_secrets import TOKEN_SECRET_FILE, derive_secrets, load_token_secrets

NOW = 1_700_000_000
KEY = derive_secrets(b"k" * 32).platform_key
OTHER_KEY = derive_secrets(b"o" * 32).platform_key


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sub": "u1",
        "tier": "premium",
        "region": "SE",
        "aud": LISTENER_AUDIENCE,
        "exp": NOW + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def encode(payload: dict[str, object], key: bytes = KEY, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


verifier = ListenerVerifier(KEY, lambda: float(NOW))


def test_valid_token() -> None:
    assert verifier.verify(encode(claims())) == Listener("u1", "premium", "SE")
    assert verifier.verify_header(f"Bearer {encode(claims(tier='free'))}").tier == "free"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (encode(claims(exp=NOW - CLOCK_LEEWAY_S)), "expired"),
        (encode(claims(exp=NOW - 3600)), "expired"),
        (encode(claims(), key=OTHER_KEY), "Signature verification failed"),
        (encode(claims(aud="another-service")), "Audience"),
        (encode(claims(aud=None)), "aud"),
        (encode(claims(sub=None)), "sub"),
        (encode(claims(tier=None)), "tier"),
        (encode(claims(region=None)), "region"),
        (encode(claims(exp=None)), "exp"),
        (encode(claims(tier="platinum")), "tier"),
        (encode(claims(sub="../../etc")), "sub"),
        (encode(claims(region="x" * 40)), "region"),
        (encode(claims(nbf=NOW + 3600)), "not valid yet"),
        (encode(claims(exp="tomorrow")), "exp"),
        (encode(claims(), key=KEY * 2, alg="HS512"), "alg value is not allowed"),
        (jwt.encode(claims(), "", algorithm="none"), "alg value is not allowed"),
        ("not.a.jwt", "refused"),
        ("", "refused"),
    ],
)
def test_refused_listener_tokens(token: str, message: str) -> None:
    with pytest.raises(Unauthorized, match=message) as info:
        verifier.verify(token)
    assert info.value.http_status == 401


def test_expiry_allows_clock_skew() -> None:
    assert verifier.verify(encode(claims(exp=NOW - CLOCK_LEEWAY_S + 1))).user_id == "u1"


@pytest.mark.parametrize("header", [None, "", "Basic dTpw", "Bearer", "Bearer   ", "token"])
def test_bad_authorization_headers(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        verifier.verify_header(header)


def test_issued_token_round_trips() -> None:
    token = issue_listener_token(KEY, "u-9", "free", "DE", 60, NOW)
    assert verifier.verify(token) == Listener("u-9", "free", "DE")


@pytest.mark.parametrize(
    ("user", "tier", "region"),
    [("", "free", "SE"), ("u", "gold", "SE"), ("u", "free", "S E"), ("a b", "free", "SE")],
)
def test_issue_refuses_bad_claims(user: str, tier: str, region: str) -> None:
    with pytest.raises(ValueError):
        issue_listener_token(KEY, user, tier, region, 60, NOW)  # type: ignore[arg-type]


# Secrets


def test_dev_secret_created_once_and_reused(settings: Settings) -> None:
    first = load_token_secrets(settings)
    path = settings.secrets_dir / TOKEN_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token_secrets(settings) == first
    token = issue_dev_token(settings, "dev", "premium")
    assert ListenerVerifier(first.platform_key, lambda: float(NOW)).verify(token).tier == "premium"


def test_configured_secret_is_used_and_checked(settings: Settings) -> None:
    configured = dataclasses.replace(settings, token_secret="s" * 40)
    assert load_token_secrets(configured) == derive_secrets(b"s" * 40)
    assert not (settings.secrets_dir / TOKEN_SECRET_FILE).exists()
    with pytest.raises(ConfigError, match="STREAMER_TOKEN_SECRET"):
        load_token_secrets(dataclasses.replace(settings, token_secret="short"))


def test_derived_keys_differ_and_hide_in_repr() -> None:
    secrets = derive_secrets(b"m" * 32)
    assert secrets.platform_key != secrets.playback_key
    assert len(secrets.platform_key) == 32
    assert "platform_key" not in repr(secrets)


def test_corrupt_secret_file_is_a_config_error(tmp_path: Path, settings: Settings) -> None:
    path = settings.secrets_dir / TOKEN_SECRET_FILE
    path.parent.mkdir(parents=True)
    path.write_text("abc\n")
    with pytest.raises(ConfigError, match="fewer than"):
        load_token_secrets(settings)


# Playback tokens

TOKENS = PlaybackTokens(b"p" * 32)
SESSION = SessionClaims("sid1", "trk1", "v1", "u1", "free", ("aac_160", "aac_96"), NOW + 7200)


def test_session_token_round_trips() -> None:
    token = TOKENS.sign_session(SESSION)
    assert TOKENS.verify_session(token, NOW) == SESSION
    with pytest.raises(TokenExpired):
        TOKENS.verify_session(token, SESSION.expires_at)


def test_token_kinds_do_not_cross() -> None:
    # A genuine token of another kind, under the same secret, opens no session.
    other_kind = sign_token({"t": "g", "sid": "sid1", "exp": NOW + 60}, b"p" * 32)
    with pytest.raises(TokenClaimMismatch):
        TOKENS.verify_session(other_kind, NOW)


def test_forged_and_garbled_playback_tokens() -> None:
    token = PlaybackTokens(b"q" * 32).sign_session(SESSION)
    with pytest.raises(TokenSignatureInvalid):
        TOKENS.verify_session(token, NOW)
    with pytest.raises(TokenMalformed):
        TOKENS.verify_session("garbage", NOW)


def test_authenticated_tokens_are_remembered_boundedly_and_rechecked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("cdn_edge.playback.tokens.VERIFIED_TOKEN_CACHE", 2)
    tokens = PlaybackTokens(b"p" * 32)
    sessions = [dataclasses.replace(SESSION, session_id=f"sid{i}") for i in range(4)]
    for session in sessions:
        assert tokens.verify_session(tokens.sign_session(session), NOW) == session
    assert len(tokens._verified) == 2  # the oldest were forgotten
    remembered = tokens.sign_session(sessions[-1])
    assert remembered in tokens._verified
    with pytest.raises(TokenExpired):  # expiry is checked on every use, cached or not
        tokens.verify_session(remembered, SESSION.expires_at)
    forged = PlaybackTokens(b"q" * 32).sign_session(SESSION)
    with pytest.raises(TokenSignatureInvalid):
        tokens.verify_session(forged, NOW)
    assert forged not in tokens._verified
