"""Compact signed tokens for URLs: ``base64url(payload) "." base64url(HMAC-SHA256)``.

The payload is the claims as JSON with sorted keys and no spaces, so equal claims sign equally.
Both parts are base64url without padding (RFC 4648 section 5); the signature is the full 32-byte
HMAC-SHA256 (43 characters) over the ASCII payload part. Every token carries ``exp``, an int of
unix seconds; it is valid while ``now < exp``.

Signing secrets rotate: pass a tuple, newest first. Tokens are signed with the first secret and
verify under any of them, so tokens issued before a rotation live out their expiry.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping

from drm.errors import (
    InvalidClaims,
    KeyLengthError,
    TokenClaimMismatch,
    TokenExpired,
    TokenMalformed,
    TokenSignatureInvalid,
)

MIN_SECRET_SIZE = 32  # RFC 7518 section 3.2: an HS256 key at least as long as the hash output
MAX_TOKEN_LENGTH = 2048  # bounds work on hostile input; real tokens are ~100-200 characters
_SIGNATURE_LENGTH = 43  # 32 bytes in unpadded base64url
_TOKEN = re.compile(rf"([A-Za-z0-9_\-]+)\.([A-Za-z0-9_\-]{{{_SIGNATURE_LENGTH}}})")

_JSON = json.JSONDecoder()

Claims = Mapping[str, str | int]
Secrets = bytes | tuple[bytes, ...]


def _secrets(secret: Secrets) -> tuple[bytes, ...]:
    keys = (secret,) if isinstance(secret, bytes) else secret
    if not keys:
        raise KeyLengthError("token secret tuple", 0, "give at least one secret")
    for i, key in enumerate(keys):
        if len(key) < MIN_SECRET_SIZE:
            raise KeyLengthError(
                f"token secret {i}", len(key), f"HMAC-SHA256 needs at least {MIN_SECRET_SIZE}"
            )
    return keys


def _signature(payload: bytes, key: bytes) -> bytes:
    return base64.urlsafe_b64encode(hmac.digest(key, payload, "sha256")).rstrip(b"=")


def _is_claim_value(value: object) -> bool:
    # bool is an int subclass; a claim of True would compare equal to 1.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def sign_token(claims: Claims, secret: Secrets) -> str:
    """A signed token carrying `claims`, which must include ``exp`` (int unix seconds)."""
    keys = _secrets(secret)
    for name, value in claims.items():
        if not isinstance(name, str) or not name:
            raise InvalidClaims(f"claim names must be non-empty strings, got {name!r}")
        if not _is_claim_value(value):
            raise InvalidClaims(f"claim {name!r} is a {type(value).__name__}; expected str or int")
    if "exp" not in claims or not isinstance(claims["exp"], int):
        raise InvalidClaims("claims need 'exp', an int of unix seconds")
    data = json.dumps(dict(claims), sort_keys=True, separators=(",", ":")).encode("ascii")
    payload = base64.urlsafe_b64encode(data).rstrip(b"=")
    return (payload + b"." + _signature(payload, keys[0])).decode("ascii")


def _decode_claims(payload: str) -> tuple[dict[str, str | int], int]:
    try:
        # We sign ASCII-only JSON; decoding to str first spares json its encoding sniffing.
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("ascii")
        claims = _JSON.decode(data)
    except (binascii.Error, ValueError) as exc:
        raise TokenMalformed("token payload is not base64url JSON") from exc
    if not isinstance(claims, dict) or not all(_is_claim_value(v) for v in claims.values()):
        raise TokenMalformed("token payload is not a flat object of str and int claims")
    exp = claims.get("exp")
    if not isinstance(exp, int):
        raise TokenMalformed("token has no int 'exp' claim")
    return claims, exp


def authenticate_token(token: str, secret: Secrets) -> dict[str, str | int]:
    """The claims of a token whose signature verifies under one of the secrets, not yet
    checked for expiry or content (see `check_claims`); callers may cache the result.

    Raises TokenMalformed or TokenSignatureInvalid (401).
    """
    keys = _secrets(secret)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise TokenMalformed(f"token is not a string of at most {MAX_TOKEN_LENGTH} characters")
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise TokenMalformed("token is not base64url payload '.' 43-character base64url signature")
    payload = match.group(1).encode("ascii")
    signature = match.group(2).encode("ascii")
    # Authenticate before parsing anything; compare_digest keeps the comparison constant-time.
    # Comparing the encoded signature also rejects non-canonical base64 spellings.
    for key in keys:
        if hmac.compare_digest(_signature(payload, key), signature):
            break
    else:
        raise TokenSignatureInvalid(f"token signature does not verify under {len(keys)} secret(s)")
    claims, _ = _decode_claims(match.group(1))
    return claims


def check_claims(claims: Claims, now: int, expect: Claims | None = None) -> None:
    """Raises TokenExpired (401) unless `now` is before the claims' ``exp``, and
    TokenClaimMismatch (403) unless they match `expect`."""
    exp = claims["exp"]
    if not isinstance(exp, int):
        raise TokenMalformed("token has no int 'exp' claim")
    if now >= exp:
        raise TokenExpired(exp, now)
    if expect:
        for name, wanted in expect.items():
            if name not in claims:
                raise TokenClaimMismatch(name, missing=True)
            actual = claims[name]
            # Type-strict: the claim 5 does not match the string "5".
            if type(actual) is not type(wanted) or actual != wanted:
                raise TokenClaimMismatch(name)


def verify_token(
    token: str, secret: Secrets, now: int, *, expect: Claims | None = None
) -> dict[str, str | int]:
    """The claims of an authentic, unexpired token that match `expect`.

    Raises TokenMalformed, TokenSignatureInvalid, TokenExpired (401) or TokenClaimMismatch (403).
    """
    claims = authenticate_token(token, secret)
    check_claims(claims, now, expect)
    return claims
