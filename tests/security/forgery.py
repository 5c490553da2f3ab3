"""Forged, tampered and confused tokens: what an attacker can make without our secrets, and
genuine tokens of other kinds.

Session tokens are `drm.tokens` tokens (base64url JSON "." base64url HMAC-SHA256); listener,
ingest and analytics tokens are JWTs. Signatures here are computed by hand, so a forger may
use any key, short or empty, and any algorithm name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Session tokens (drm.tokens).


def session_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(unb64url(token.split(".")[0]))
    return claims


def sign_session(claims: dict[str, Any], key: bytes) -> str:
    """A token in the session format, its HMAC-SHA256 under `key` (any key at all)."""
    payload = b64url(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    return payload + "." + b64url(hmac.digest(key, payload.encode(), "sha256"))


def with_claims(token: str, **changes: Any) -> str:
    """`token` with its payload edited and its signature kept."""
    claims = {**session_claims(token), **changes}
    payload = b64url(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    return payload + "." + token.split(".")[1]


def session_token_mutants(token: str, other: str) -> dict[str, str]:
    """Edits of a genuine session token that must all fail: names -> token."""
    payload, signature = token.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return {
        "signature of another session": f"{payload}.{other.split('.')[1]}",
        "last signature char changed": f"{payload}.{flipped}",
        "signature truncated": f"{payload}.{signature[:-1]}",
        "signature extended": f"{payload}.{signature}A",
        "signature padded": f"{payload}.{signature}=",
        # The same 32 bytes in RFC 4648 section 4's alphabet, padded: always another spelling.
        "signature in standard base64": f"{payload}."
        + base64.b64encode(unb64url(signature)).decode(),
        "no signature": f"{payload}.",
        "payload only": payload,
        "signature only": f".{signature}",
        "payload twice": f"{payload}.{payload}.{signature}",
        "empty": "",
        "a dot": ".",
        "payload upper-cased": f"{payload.upper()}.{signature}",
        "payload with a space": f"{payload}%20.{signature}",
        "payload padded": f"{payload}==.{signature}",
    }


# JWTs.


def jwt_unsigned(claims: dict[str, Any], alg: str = "none", signature: str = "") -> str:
    """`alg: none` and friends: a header naming `alg`, the claims, and `signature`."""
    header = {"alg": alg, "typ": "JWT"} if alg is not None else {"typ": "JWT"}
    return (
        f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.{signature}"
    )


def jwt_hmac(
    claims: dict[str, Any], key: bytes, alg: str = "HS256", named: str = "", **header: Any
) -> str:
    """A JWT whose HMAC is computed by hand under any key, with any extra header fields; the
    header names `named` as the algorithm if given, else `alg`."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    head = b64url(json.dumps({"alg": named or alg, "typ": "JWT", **header}).encode())
    body = b64url(json.dumps(claims).encode())
    mac = hmac.new(key, f"{head}.{body}".encode(), digest).digest()
    return f"{head}.{body}.{b64url(mac)}"


def jwt_with_payload(token: str, **changes: Any) -> str:
    """A JWT with its claims edited and its header and signature kept."""
    head, body, signature = token.split(".")
    claims = {**json.loads(unb64url(body)), **changes}
    return f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"


def jwt_forgeries(claims: dict[str, Any], genuine: str, platform_key: bytes) -> dict[str, str]:
    """Every way to forge a JWT carrying `claims` without the platform key (or by confusing
    it): names -> token. `genuine` is a real token of the same kind, to splice and tamper."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    head, body, signature = genuine.split(".")
    forged: dict[str, str] = {}
    for alg in ("none", "None", "NONE", "nOnE"):
        forged[f"alg {alg}"] = jwt_unsigned(claims, alg)
        forged[f"alg {alg} with a signature"] = jwt_unsigned(claims, alg, signature)
    forged["alg missing"] = jwt_unsigned(claims, None)  # type: ignore[arg-type]
    forged["alg empty"] = jwt_unsigned(claims, "")
    forged["alg none, no signature part"] = jwt_unsigned(claims).rstrip(".")
    forged["HS256 under a random key"] = jwt_hmac(claims, secrets.token_bytes(32))
    forged["HS256 under 'secret'"] = jwt_hmac(claims, b"secret")
    forged["HS256 under an empty key"] = jwt_hmac(claims, b"")
    forged["HS256 under the secret's hex decoded"] = jwt_hmac(
        claims, bytes.fromhex(platform_key.decode())
    )
    forged["HS384 under the platform key"] = jwt_hmac(claims, platform_key, "HS384")
    forged["HS512 under the platform key"] = jwt_hmac(claims, platform_key, "HS512")
    forged["HS256 under an RSA public key (RS/HS confusion)"] = jwt_hmac(claims, rsa_public_pem)
    forged["HS256 under an RSA public key, alg RS256 in the header"] = jwt_hmac(
        claims, rsa_public_pem, named="RS256"
    )
    forged["RS256 under the attacker's key"] = jwt.encode(claims, rsa_key, algorithm="RS256")
    forged["RS256 with the attacker's key as jwk"] = jwt.encode(
        claims, rsa_key, algorithm="RS256", headers={"jwk": jwk}
    )
    forged["RS256 with a jku"] = jwt.encode(
        claims, rsa_key, algorithm="RS256", headers={"jku": "http://127.0.0.1:9/jwks.json"}
    )
    forged["PS256 under the attacker's key"] = jwt.encode(claims, rsa_key, algorithm="PS256")
    forged["ES256 under the attacker's key"] = jwt.encode(claims, ec_key, algorithm="ES256")
    forged["kid pointing at /dev/null, empty key"] = jwt_hmac(
        claims, b"", kid="../../../../../../dev/null"
    )
    forged["kid pointing at the secret file"] = jwt_hmac(
        claims, b"", kid="../../secrets/token_secret"
    )
    forged["genuine header and signature, edited claims"] = jwt_with_payload(genuine, **claims)
    forged["genuine token, signature dropped"] = f"{head}.{body}."
    forged["genuine token, signature of the forged claims dropped"] = (
        f"{head}.{b64url(json.dumps(claims).encode())}."
    )
    forged["genuine token with a fourth part"] = f"{genuine}.{signature}"
    forged["genuine token, header alg none"] = (
        f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{body}.{signature}"
    )
    return forged
