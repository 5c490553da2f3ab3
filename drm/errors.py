"""Errors of the DRM library.

    DrmError                           (500)
    ├── KeyLengthError                 (500)  a content key, IV, KEK or token secret of bad size
    ├── InvalidKeyId                   (500)  a key id, KEK id, version or tier with unsafe chars
    ├── KeyScheduleError               (500)  a negative segment index or a rotation period below 1
    ├── DecryptionError                (500)  a segment ciphertext with a bad length or padding
    ├── KeyRingError                   (500)  a ring without its active KEK, or with duplicate ids
    │   └── UnknownKekError            (500)  no KEK with the requested id
    ├── KeyUnwrapError                 (500)  a wrapped key that does not authenticate
    ├── InvalidClaims                  (500)  claims handed to sign_token that cannot be signed
    ├── LicenceSignatureInvalid        (403)  an offline licence edited or signed by another key
    └── TokenError                     (401)  a request token that must be refused
        ├── TokenMalformed             (401)
        ├── TokenSignatureInvalid      (401)
        ├── TokenExpired               (401)
        └── TokenClaimMismatch         (403)  authentic, but issued for another resource

Each error carries the HTTP status it maps to so handlers never parse messages. No message ever
contains key bytes, secrets or claim values: only sizes, ids and claim names.
"""

from __future__ import annotations


class DrmError(Exception):
    """Base class of every error the DRM library raises."""

    http_status = 500


class KeyLengthError(DrmError):
    """Key material of the wrong size; the message gives sizes, never bytes."""

    def __init__(self, what: str, actual: int, needed: str) -> None:
        super().__init__(f"{what} is {actual} bytes; {needed}")
        self.what = what
        self.actual = actual


class InvalidKeyId(DrmError):
    """An identifier that is not safe in URLs, object keys and the wrapping AAD."""


class KeyScheduleError(DrmError):
    """Arguments of the key rotation schedule out of range."""


class DecryptionError(DrmError):
    """A segment ciphertext whose length or PKCS#7 padding is wrong."""


class KeyRingError(DrmError):
    """A key ring that is inconsistent."""


class UnknownKekError(KeyRingError):
    def __init__(self, kek_id: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no key encryption key {kek_id!r} in the ring; known: {', '.join(known)}")
        self.kek_id = kek_id
        self.known = known


class KeyUnwrapError(DrmError):
    """A wrapped content key that fails authentication or has the wrong shape."""


class InvalidClaims(DrmError):
    """Claims that sign_token refuses: not a flat map of str to str | int with an int "exp"."""


class TokenError(DrmError):
    """Base class of the reasons to refuse a request token."""

    http_status = 401


class TokenMalformed(TokenError):
    pass


class TokenSignatureInvalid(TokenError):
    pass


class TokenExpired(TokenError):
    def __init__(self, exp: int, now: int) -> None:
        super().__init__(f"token expired at {exp}, {now - exp} s before now ({now})")
        self.exp = exp
        self.now = now


class TokenClaimMismatch(TokenError):
    """The token is authentic but was issued for another resource; names the claim only."""

    http_status = 403

    def __init__(self, claim: str, missing: bool = False) -> None:
        detail = "is missing" if missing else "does not match the request"
        super().__init__(f"token claim {claim!r} {detail}")
        self.claim = claim


class LicenceSignatureInvalid(DrmError):
    """An offline licence whose Ed25519 signature does not verify (edited, or not ours)."""

    http_status = 403
