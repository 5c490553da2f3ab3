"""Envelope encryption of content keys: at rest a content key only ever exists wrapped.

A content key is wrapped with AES-256-GCM under a key encryption key (KEK) from a `KeyRing`.
The additional authenticated data binds the blob to its content key id and its KEK id, so a
wrapped key copied onto another key's record, or presented under another KEK, fails to unwrap.

Wrapped format: nonce (12 bytes) || ciphertext (16 bytes) || GCM tag (16 bytes). The caller stores
the KEK id beside the blob; `rewrap_key` moves a blob to a new KEK during rotation.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drm.errors import InvalidKeyId, KeyLengthError, KeyRingError, KeyUnwrapError, UnknownKekError
from drm.segment_crypto import CONTENT_KEY_SIZE

KEK_SIZE = 32  # AES-256-GCM
NONCE_SIZE = 12  # the GCM nonce size NIST SP 800-38D section 8.2 recommends
TAG_SIZE = 16
WRAPPED_SIZE = NONCE_SIZE + CONTENT_KEY_SIZE + TAG_SIZE

# Ids appear in the AAD (':'-separated), in URLs and in object keys; this alphabet keeps all
# three unambiguous. Content key ids from `content_key_id` always match.
_ID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
_AAD_PREFIX = b"streamer-content-key:"


def _check_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise InvalidKeyId(f"{what} {value!r} is not 1 to 256 of letters, digits, '_', '.', '-'")


@dataclass(frozen=True)
class KeyEncryptionKey:
    """An AES-256-GCM key that wraps content keys; its repr shows only the id."""

    kek_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_id("KEK id", self.kek_id)
        if not isinstance(self.secret, bytes):
            raise TypeError(f"KEK {self.kek_id!r} secret must be bytes")
        if len(self.secret) != KEK_SIZE:
            raise KeyLengthError(
                f"KEK {self.kek_id!r} secret", len(self.secret), f"AES-256-GCM needs {KEK_SIZE}"
            )


@dataclass(frozen=True)
class KeyRing:
    """The KEKs in use: `active` wraps new keys, the others still unwrap old ones."""

    active_id: str
    keys: tuple[KeyEncryptionKey, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))
        if not all(isinstance(k, KeyEncryptionKey) for k in self.keys):
            raise KeyRingError("a key ring holds only KeyEncryptionKey instances")
        ids = [k.kek_id for k in self.keys]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise KeyRingError(f"key ring has duplicate KEK ids: {', '.join(duplicates)}")
        if self.active_id not in ids:
            raise KeyRingError(
                f"active KEK {self.active_id!r} is not in the ring; known: {', '.join(ids)}"
            )

    @property
    def active(self) -> KeyEncryptionKey:
        """The KEK that wraps new content keys."""
        return self.get(self.active_id)

    def get(self, kek_id: str) -> KeyEncryptionKey:
        """The KEK with this id. Raises UnknownKekError."""
        for kek in self.keys:
            if kek.kek_id == kek_id:
                return kek
        raise UnknownKekError(kek_id, tuple(k.kek_id for k in self.keys))

    def with_new_active(self, kek: KeyEncryptionKey) -> KeyRing:
        """A ring with `kek` added and made active; the old KEKs stay for unwrapping."""
        return KeyRing(kek.kek_id, (*self.keys, kek))


def new_kek(kek_id: str | None = None) -> KeyEncryptionKey:
    """A fresh random KEK, by default with id ``kek-`` + 8 hex digits."""
    if kek_id is None:
        kek_id = f"kek-{secrets.token_hex(4)}"
    return KeyEncryptionKey(kek_id, secrets.token_bytes(KEK_SIZE))


def _aad(key_id: str, kek: KeyEncryptionKey) -> bytes:
    _check_id("content key id", key_id)
    return _AAD_PREFIX + f"{key_id}:{kek.kek_id}".encode("ascii")


def wrap_key(content_key: bytes, key_id: str, kek: KeyEncryptionKey) -> bytes:
    """Wrap a content key under `kek`, bound to `key_id`: nonce || ciphertext || tag."""
    if len(content_key) != CONTENT_KEY_SIZE:
        raise KeyLengthError("content key", len(content_key), f"AES-128 needs {CONTENT_KEY_SIZE}")
    # A random 96-bit nonce per wrap: KEKs wrap few enough keys (far below 2**32, SP 800-38D
    # section 8.3) that collisions are not a concern.
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + AESGCM(kek.secret).encrypt(nonce, content_key, _aad(key_id, kek))


def unwrap_key(wrapped: bytes, key_id: str, kek: KeyEncryptionKey) -> bytes:
    """The content key inside `wrapped`. Raises KeyUnwrapError on any mismatch or tampering."""
    aad = _aad(key_id, kek)
    if len(wrapped) != WRAPPED_SIZE:
        raise KeyUnwrapError(
            f"wrapped key {key_id!r} is {len(wrapped)} bytes; expected {WRAPPED_SIZE}"
        )
    try:
        return AESGCM(kek.secret).decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], aad)
    except InvalidTag as exc:
        raise KeyUnwrapError(
            f"wrapped key {key_id!r} does not authenticate under KEK {kek.kek_id!r}: "
            "wrong KEK, wrong key id, or a tampered blob"
        ) from exc


def rewrap_key(wrapped: bytes, key_id: str, old: KeyEncryptionKey, new: KeyEncryptionKey) -> bytes:
    """Move a wrapped content key from `old` to `new` (KEK rotation)."""
    return wrap_key(unwrap_key(wrapped, key_id, old), key_id, new)
