"""The shared bearer-token verifier and signer (streamer.bearer_tokens), below any app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

from streamer.bearer_tokens import (
    CLOCK_LEEWAY_S,
    BearerTokenVerifier,
    TokenKind,
    bearer_credentials,
    sign_bearer_token,
)
from streamer.errors import BearerScopeMissing, BearerTokenExpired, BearerTokenRefused

NOW = 1_700_000_000
KEY = b"k" * 32
KIND = TokenKind("test token", "streamer-test", scope="read", claims=("tier",))
verifier = BearerTokenVerifier(KEY, KIND, lambda: float(NOW))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hs512(payload: dict[str, Any]) -> str:
    """HS512 under the right key, signed by hand (PyJWT warns on the key's length)."""
    header = _b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{_b64(hmac.digest(KEY, signing_input.encode(), hashlib.sha512))}"


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"sub": "s", "aud": "streamer-test", "scope": "read", "tier": "free", "exp": NOW + 60}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_signed_tokens_round_trip_with_their_claims() -> None:
    token = sign_bearer_token(KEY, KIND, "s", 60, NOW, {"tier": "free"})
    assert verifier.verify(token) == {
        "sub": "s",
        "aud": "streamer-test",
        "scope": "read",
        "tier": "free",
        "iat": NOW,
        "exp": NOW + 60,
    }
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


@pytest.mark.parametrize(
    ("token", "error", "message"),
    [
        (jwt.encode(claims(), "", algorithm="none"), BearerTokenRefused, "alg value"),
        (_hs512(claims()), BearerTokenRefused, "alg value"),
        (jwt.encode(claims(), b"o" * 32, "HS256"), BearerTokenRefused, "Signature"),
        (jwt.encode(claims(aud="streamer-edge"), KEY, "HS256"), BearerTokenRefused, "Audience"),
        (jwt.encode(claims(tier=None), KEY, "HS256"), BearerTokenRefused, "tier"),
        (jwt.encode(claims(sub=None), KEY, "HS256"), BearerTokenRefused, "sub"),
        (jwt.encode(claims(exp=None), KEY, "HS256"), BearerTokenRefused, "exp"),
        (jwt.encode(claims(exp="soon"), KEY, "HS256"), BearerTokenRefused, "'exp' is not"),
        # Python's JSON reader takes these: NaN would never expire, huge ints overflow floats.
        (jwt.encode(claims(exp=float("nan")), KEY, "HS256"), BearerTokenRefused, "'exp' is not"),
        (jwt.encode(claims(exp=float("inf")), KEY, "HS256"), BearerTokenRefused, "'exp' is not"),
        (jwt.encode(claims(exp=-(10**300)), KEY, "HS256"), BearerTokenRefused, "'exp' is not"),
        (jwt.encode(claims(exp=10**300), KEY, "HS256"), BearerTokenRefused, "'exp' is not"),
        (jwt.encode(claims(nbf=float("nan")), KEY, "HS256"), BearerTokenRefused, "not valid yet"),
        (jwt.encode(claims(exp=NOW - CLOCK_LEEWAY_S), KEY, "HS256"), BearerTokenExpired, "30 s"),
        (jwt.encode(claims(nbf=NOW + 31), KEY, "HS256"), BearerTokenRefused, "not valid yet"),
        (jwt.encode(claims(nbf="later"), KEY, "HS256"), BearerTokenRefused, "not valid yet"),
        (jwt.encode(claims(scope="write"), KEY, "HS256"), BearerScopeMissing, "'read' scope"),
        (jwt.encode(claims(scope=None), KEY, "HS256"), BearerScopeMissing, "'read' scope"),
        ("not.a.jwt", BearerTokenRefused, "test token refused"),
    ],
)
def test_refusals_name_the_failed_check(token: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as info:
        verifier.verify(token)
    assert type(info.value) is error


def test_statuses_and_reasons() -> None:
    with pytest.raises(BearerTokenExpired) as expired:
        verifier.verify(jwt.encode(claims(exp=NOW - 100), KEY, "HS256"))
    assert expired.value.http_status == 401
    assert str(expired.value) == "test token expired 100 s ago"
    assert expired.value.reason == "expired 100 s ago"
    with pytest.raises(BearerScopeMissing) as scope:
        verifier.verify(jwt.encode(claims(scope="write"), KEY, "HS256"))
    assert scope.value.http_status == 403


def test_the_leeway_is_symmetric() -> None:
    edge = CLOCK_LEEWAY_S - 1
    assert verifier.verify(jwt.encode(claims(exp=NOW - edge), KEY, "HS256"))["sub"] == "s"
    assert verifier.verify(jwt.encode(claims(nbf=NOW + CLOCK_LEEWAY_S), KEY, "HS256"))


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic dTpw", None),
        ("abc", None),
    ],
)
def test_bearer_credentials(header: str | None, token: str | None) -> None:
    assert bearer_credentials(header) == token
