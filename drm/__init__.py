"""DRM: HLS AES-128 segment encryption, envelope-wrapped content keys and signed URL tokens.

A pure library: bytes in, bytes out; time is passed in as int unix seconds. No files, sockets,
clocks or environment (the key ring file lives in `streamer.keyring_file`).
"""

from drm.device_keys import (
    KeyBinding,
    licence_public_key,
    new_device_keypair,
    sign_licence,
    unwrap_on_device,
    verify_licence,
    wrap_for_device,
)
from drm.errors import (
    DecryptionError,
    DrmError,
    InvalidClaims,
    InvalidKeyId,
    KeyLengthError,
    KeyRingError,
    KeyScheduleError,
    KeyUnwrapError,
    LicenceSignatureInvalid,
    TokenClaimMismatch,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenSignatureInvalid,
    UnknownKekError,
)
from drm.key_schedule import content_key_id, key_period, parse_content_key_id
from drm.keywrap import (
    KeyEncryptionKey,
    KeyRing,
    new_kek,
    rewrap_key,
    unwrap_key,
    wrap_key,
)
from drm.segment_crypto import (
    decrypt_segment,
    encrypt_segment,
    new_content_key,
    new_iv,
    sequence_iv,
)
from drm.tokens import authenticate_token, check_claims, sign_token, verify_token

__all__ = [
    "DecryptionError",
    "DrmError",
    "InvalidClaims",
    "InvalidKeyId",
    "KeyBinding",
    "KeyEncryptionKey",
    "KeyLengthError",
    "KeyRing",
    "KeyRingError",
    "KeyScheduleError",
    "KeyUnwrapError",
    "LicenceSignatureInvalid",
    "TokenClaimMismatch",
    "TokenError",
    "TokenExpired",
    "TokenMalformed",
    "TokenSignatureInvalid",
    "UnknownKekError",
    "authenticate_token",
    "check_claims",
    "content_key_id",
    "decrypt_segment",
    "encrypt_segment",
    "key_period",
    "licence_public_key",
    "new_content_key",
    "new_device_keypair",
    "new_iv",
    "new_kek",
    "parse_content_key_id",
    "rewrap_key",
    "sequence_iv",
    "sign_licence",
    "sign_token",
    "unwrap_key",
    "unwrap_on_device",
    "verify_licence",
    "verify_token",
    "wrap_for_device",
    "wrap_key",
]
