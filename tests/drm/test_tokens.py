import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drm import (
    InvalidClaims,
    KeyLengthError,
    TokenClaimMismatch,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenSignatureInvalid,
    sign_token,
    verify_token,
)

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))
NOW = 1_700_000_000
CLAIMS: dict[str, str | int] = {"sid": "s-123", "track": "t-42", "exp": NOW + 60}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip() -> None:
    token = sign_token(CLAIMS, SECRET)
    assert verify_token(token, SECRET, NOW) == CLAIMS


def test_format_is_url_safe_and_deterministic() -> None:
    token = sign_token(CLAIMS, SECRET)
    payload, signature = token.split(".")
    assert len(signature) == 43  # the full 32-byte HMAC
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert base64.urlsafe_b64decode(payload + "==") == (
        b'{"exp":1700000060,"sid":"s-123","track":"t-42"}'
    )
    reordered: dict[str, str | int] = {"exp": NOW + 60, "track": "t-42", "sid": "s-123"}
    assert sign_token(reordered, SECRET) == token


claim_values = st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**63))


@given(st.dictionaries(st.text(min_size=1, max_size=10), claim_values, max_size=5))
def test_round_trip_any_claims(extra: dict[str, str | int]) -> None:
    claims = {**extra, "exp": NOW + 1}
    assert verify_token(sign_token(claims, SECRET), SECRET, NOW) == claims


def test_expiry_boundary() -> None:
    token = sign_token(CLAIMS, SECRET)
    exp = NOW + 60
    assert verify_token(token, SECRET, exp - 1) == CLAIMS
    with pytest.raises(TokenExpired) as info:
        verify_token(token, SECRET, exp)
    assert info.value.http_status == 401
    assert info.value.exp == exp
    with pytest.raises(TokenExpired):
        verify_token(token, SECRET, exp + 3600)


def test_tampered_payload() -> None:
    payload, signature = sign_token(CLAIMS, SECRET).split(".")
    forged = _b64(json.dumps({**CLAIMS, "track": "t-43"}, sort_keys=True).encode())
    with pytest.raises(TokenSignatureInvalid):
        verify_token(f"{forged}.{signature}", SECRET, NOW)
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    with pytest.raises(TokenSignatureInvalid):
        verify_token(f"{flipped}.{signature}", SECRET, NOW)


def test_tampered_signature() -> None:
    payload, signature = sign_token(CLAIMS, SECRET).split(".")
    for i in (0, 20, 42):
        swapped = "A" if signature[i] != "A" else "B"
        forged = signature[:i] + swapped + signature[i + 1 :]
        with pytest.raises(TokenSignatureInvalid):
            verify_token(f"{payload}.{forged}", SECRET, NOW)


def test_non_canonical_signature_spelling_rejected() -> None:
    # 43 base64 characters carry 258 bits; the last 2 must be zero in the canonical spelling.
    payload, signature = sign_token(CLAIMS, SECRET).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    variant = signature[:-1] + alphabet[last | 1]
    assert variant != signature
    with pytest.raises(TokenSignatureInvalid):
        verify_token(f"{payload}.{variant}", SECRET, NOW)


def test_wrong_secret() -> None:
    with pytest.raises(TokenSignatureInvalid):
        verify_token(sign_token(CLAIMS, SECRET), OTHER, NOW)


def test_rotation() -> None:
    old_token = sign_token(CLAIMS, SECRET)
    new_token = sign_token(CLAIMS, (OTHER, SECRET))
    assert new_token == sign_token(CLAIMS, OTHER)  # signs with the first secret
    assert verify_token(old_token, (OTHER, SECRET), NOW) == CLAIMS
    assert verify_token(new_token, (OTHER, SECRET), NOW) == CLAIMS
    with pytest.raises(TokenSignatureInvalid):
        verify_token(new_token, (SECRET,), NOW)


def test_claim_match_and_mismatch() -> None:
    token = sign_token({**CLAIMS, "seg": 5}, SECRET)
    assert verify_token(token, SECRET, NOW, expect={"sid": "s-123", "seg": 5})["seg"] == 5
    with pytest.raises(TokenClaimMismatch) as info:
        verify_token(token, SECRET, NOW, expect={"sid": "s-123", "track": "t-99"})
    assert info.value.http_status == 403
    assert info.value.claim == "track"
    assert str(info.value) == "token claim 'track' does not match the request"
    assert "t-42" not in str(info.value)


def test_claim_mismatch_is_type_strict() -> None:
    token = sign_token({**CLAIMS, "seg": 5}, SECRET)
    with pytest.raises(TokenClaimMismatch):
        verify_token(token, SECRET, NOW, expect={"seg": "5"})


def test_missing_expected_claim() -> None:
    with pytest.raises(TokenClaimMismatch, match="'tier' is missing"):
        verify_token(sign_token(CLAIMS, SECRET), SECRET, NOW, expect={"tier": "aac_160"})


def test_expiry_checked_before_claims() -> None:
    token = sign_token(CLAIMS, SECRET)
    with pytest.raises(TokenExpired):
        verify_token(token, SECRET, NOW + 60, expect={"track": "other"})


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "abc.",
        ".abc",
        "a.b.c",
        "abc." + "A" * 42,
        "abc." + "A" * 44,
        "ab+c." + "A" * 43,
        "abc=." + "A" * 43,
        "a" * 3000 + "." + "A" * 43,
    ],
)
def test_malformed(token: str) -> None:
    with pytest.raises(TokenMalformed):
        verify_token(token, SECRET, NOW)


def test_malformed_non_string() -> None:
    with pytest.raises(TokenMalformed):
        verify_token(b"abc", SECRET, NOW)  # type: ignore[arg-type]


def _sign_raw(payload_json: bytes) -> str:
    # A correctly signed token around an arbitrary payload, to exercise the checks after the MAC.
    import hashlib
    import hmac

    payload = _b64(payload_json)
    return f"{payload}.{_b64(hmac.new(SECRET, payload.encode(), hashlib.sha256).digest())}"


def test_independent_signature_computation() -> None:
    token = sign_token(CLAIMS, SECRET)
    payload_json = json.dumps(CLAIMS, sort_keys=True, separators=(",", ":")).encode()
    assert token == _sign_raw(payload_json)


@pytest.mark.parametrize(
    "payload_json",
    [b"not json", b"[1,2]", b'{"exp":1.5e9}', b'{"sid":"x"}', b'{"exp":true}', b'{"a":[],"exp":9}'],
)
def test_signed_but_malformed_payload(payload_json: bytes) -> None:
    with pytest.raises(TokenMalformed):
        verify_token(_sign_raw(payload_json), SECRET, NOW)


@pytest.mark.parametrize(
    "claims",
    [
        {"sid": "x"},
        {"exp": "1700000000"},
        {"exp": True},
        {"exp": 1.0},
        {"exp": NOW, "flag": True},
        {"exp": NOW, "n": None},
        {"exp": NOW, "": "x"},
    ],
)
def test_sign_rejects_bad_claims(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidClaims):
        sign_token(claims, SECRET)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", [b"", b"short", bytes(31), (), (SECRET, bytes(16))])
def test_secret_too_short(secret: bytes | tuple[bytes, ...]) -> None:
    with pytest.raises(KeyLengthError):
        sign_token(CLAIMS, secret)
    with pytest.raises(KeyLengthError):
        verify_token("abc." + "A" * 43, secret, NOW)


def test_messages_never_show_secrets() -> None:
    token = sign_token(CLAIMS, SECRET)
    payload, signature = token.split(".")
    errors: list[TokenError] = []
    for bad in (token + "x", f"{payload}.{'A' * 43}"):
        with pytest.raises(TokenError) as info:
            verify_token(bad, SECRET, NOW)
        errors.append(info.value)
    with pytest.raises(TokenError) as info:
        verify_token(token, OTHER, NOW)
    errors.append(info.value)
    for error in errors:
        assert SECRET.hex() not in str(error)
        assert signature not in str(error)
        assert error.http_status == 401
