"""Content keys wrapped for one device, and licences signed so a device cannot edit them.

Offline downloads hand a device its content keys, never in the clear: each key is wrapped with
ECIES over X25519 (RFC 7748) for the device's public key. Per key, a fresh ephemeral X25519 key
agrees a secret with the device key; HKDF-SHA256 (RFC 5869) turns it into an AES-256-GCM key;
the binding (licence, device, track, version, key id and expiry) goes into both the HKDF info
and the GCM additional data. Only the holder of the device's private key can unwrap, and only
under the exact binding the licence states: a key copied to another device, or presented with
an edited expiry, fails to authenticate.

Wrapped format: ephemeral public key (32 bytes) || nonce (12) || ciphertext (16) || tag (16).

Licences are signed with Ed25519 (RFC 8032) under a key the server derives from its secret, so
a device (or anyone holding the public key) can check a licence, and the server refuses one
whose expiry was edited.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drm.errors import KeyLengthError, KeyUnwrapError, LicenceSignatureInvalid
from drm.segment_crypto import CONTENT_KEY_SIZE

X25519_KEY_SIZE = 32  # RFC 7748 section 5
ED25519_SEED_SIZE = 32  # RFC 8032 section 5.1.5
ED25519_SIGNATURE_SIZE = 64
NONCE_SIZE = 12  # NIST SP 800-38D section 8.2; a fresh key per wrap makes any nonce safe
TAG_SIZE = 16
DEVICE_WRAPPED_SIZE = X25519_KEY_SIZE + NONCE_SIZE + CONTENT_KEY_SIZE + TAG_SIZE
_INFO_PREFIX = b"streamer-device-key:"


@dataclass(frozen=True)
class KeyBinding:
    """What a device-wrapped content key is bound to; every field must match to unwrap it."""

    licence_id: str
    device_id: str
    track_id: str
    version: str
    key_id: str
    expires_at: int  # unix seconds: the licence's expiry

    def __post_init__(self) -> None:
        for name in ("licence_id", "device_id", "track_id", "version", "key_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or "\n" in value:
                raise ValueError(f"key binding {name} must be a non-empty one-line string")
        if isinstance(self.expires_at, bool) or not isinstance(self.expires_at, int):
            raise ValueError("key binding expires_at must be int unix seconds")

    def encode(self) -> bytes:
        """The bytes bound in: one field per line, so no two bindings encode alike."""
        fields = (
            self.licence_id,
            self.device_id,
            self.track_id,
            self.version,
            self.key_id,
            str(self.expires_at),
        )
        return _INFO_PREFIX + "\n".join(fields).encode("utf-8")


def check_device_public_key(public_key: bytes) -> bytes:
    """`public_key` if it is a usable X25519 public key; KeyLengthError or KeyUnwrapError."""
    if not isinstance(public_key, bytes) or len(public_key) != X25519_KEY_SIZE:
        size = len(public_key) if isinstance(public_key, bytes) else 0
        raise KeyLengthError("device public key", size, f"X25519 needs {X25519_KEY_SIZE}")
    if public_key == bytes(X25519_KEY_SIZE):
        raise KeyUnwrapError("device public key is all zeros: not a usable X25519 key")
    return public_key


def _wrapping_key(shared: bytes, binding: KeyBinding) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=binding.encode())
    return hkdf.derive(shared)


def wrap_for_device(content_key: bytes, device_public_key: bytes, binding: KeyBinding) -> bytes:
    """`content_key` wrapped for the device whose X25519 public key is given, under `binding`."""
    if len(content_key) != CONTENT_KEY_SIZE:
        raise KeyLengthError("content key", len(content_key), f"AES-128 needs {CONTENT_KEY_SIZE}")
    peer = X25519PublicKey.from_public_bytes(check_device_public_key(device_public_key))
    ephemeral = X25519PrivateKey.generate()
    shared = ephemeral.exchange(peer)
    if shared == bytes(X25519_KEY_SIZE):  # RFC 7748 section 6.1: a low-order peer key
        raise KeyUnwrapError("device public key is of low order: not a usable X25519 key")
    nonce = secrets.token_bytes(NONCE_SIZE)
    sealed = AESGCM(_wrapping_key(shared, binding)).encrypt(nonce, content_key, binding.encode())
    ephemeral_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return ephemeral_public + nonce + sealed


def unwrap_on_device(wrapped: bytes, device_private_key: bytes, binding: KeyBinding) -> bytes:
    """The content key, as the device recovers it. KeyUnwrapError on any mismatch."""
    if len(wrapped) != DEVICE_WRAPPED_SIZE:
        raise KeyUnwrapError(
            f"device-wrapped key {binding.key_id!r} is {len(wrapped)} bytes;"
            f" expected {DEVICE_WRAPPED_SIZE}"
        )
    if len(device_private_key) != X25519_KEY_SIZE:
        raise KeyLengthError(
            "device private key", len(device_private_key), f"X25519 needs {X25519_KEY_SIZE}"
        )
    private = X25519PrivateKey.from_private_bytes(device_private_key)
    ephemeral = X25519PublicKey.from_public_bytes(wrapped[:X25519_KEY_SIZE])
    nonce = wrapped[X25519_KEY_SIZE : X25519_KEY_SIZE + NONCE_SIZE]
    try:
        shared = private.exchange(ephemeral)
        key = AESGCM(_wrapping_key(shared, binding))
        return key.decrypt(nonce, wrapped[X25519_KEY_SIZE + NONCE_SIZE :], binding.encode())
    except (InvalidTag, ValueError) as exc:
        raise KeyUnwrapError(
            f"device-wrapped key {binding.key_id!r} does not open: another device's key,"
            " or a licence whose binding (device, expiry, ...) was changed"
        ) from exc


def new_device_keypair() -> tuple[bytes, bytes]:
    """(private, public) raw X25519 keys, as a device makes them."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw_private, raw_public


def _signing_key(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != ED25519_SEED_SIZE:
        raise KeyLengthError(
            "licence signing seed", len(seed), f"Ed25519 needs {ED25519_SEED_SIZE}"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def licence_public_key(seed: bytes) -> bytes:
    """The raw Ed25519 public key devices check licences with."""
    return (
        _signing_key(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def sign_licence(document: bytes, seed: bytes) -> bytes:
    """The Ed25519 signature of a licence document's bytes."""
    return _signing_key(seed).sign(document)


def verify_licence(document: bytes, signature: bytes, public_key: bytes) -> None:
    """Raises LicenceSignatureInvalid (403) unless `signature` signs `document`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, document)
    except (InvalidSignature, ValueError) as exc:
        raise LicenceSignatureInvalid(
            "the licence's signature does not verify: it was edited or not issued by this server"
        ) from exc
