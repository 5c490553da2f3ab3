"""HLS segment encryption, METHOD=AES-128 (RFC 8216 section 4.3.2.4 and 5.2).

The whole segment is encrypted with AES-128-CBC under the content key and the IV of the
EXT-X-KEY tag, with PKCS#7 padding (RFC 5652 section 6.3). CBC is not authenticated: a wrong key
is caught only when the padding happens not to check out; integrity comes from TLS and the
content-addressed object store, not from this layer.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drm.errors import DecryptionError, KeyLengthError

AES_BLOCK_SIZE = 16
CONTENT_KEY_SIZE = 16  # AES-128, RFC 8216 section 5.2
IV_SIZE = 16  # one AES block; EXT-X-KEY IV is a 128-bit hexadecimal integer


def _check(key: bytes, iv: bytes) -> None:
    if len(key) != CONTENT_KEY_SIZE:
        raise KeyLengthError("content key", len(key), f"AES-128 needs {CONTENT_KEY_SIZE}")
    if len(iv) != IV_SIZE:
        raise KeyLengthError("IV", len(iv), f"AES-128-CBC needs {IV_SIZE}")


def encrypt_segment(plaintext: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding; the result is 1 to 16 bytes longer, a block multiple."""
    _check(key, iv)
    pad = AES_BLOCK_SIZE - len(plaintext) % AES_BLOCK_SIZE
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()


def decrypt_segment(ciphertext: bytes, key: bytes, iv: bytes) -> bytes:
    """Inverse of encrypt_segment. Raises DecryptionError on a bad length or padding."""
    _check(key, iv)
    if not ciphertext or len(ciphertext) % AES_BLOCK_SIZE:
        raise DecryptionError(
            f"segment ciphertext is {len(ciphertext)} bytes; "
            f"expected a positive multiple of {AES_BLOCK_SIZE}"
        )
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= AES_BLOCK_SIZE or padded[-pad:] != bytes((pad,)) * pad:
        raise DecryptionError("segment has invalid PKCS#7 padding: wrong key or IV, or corrupted")
    return padded[:-pad]


def new_content_key() -> bytes:
    """A fresh random AES-128 content key."""
    return secrets.token_bytes(CONTENT_KEY_SIZE)


def new_iv() -> bytes:
    """A fresh random IV."""
    return secrets.token_bytes(IV_SIZE)


def sequence_iv(media_sequence_number: int) -> bytes:
    """The IV a player uses for a segment whose EXT-X-KEY has no IV attribute: its Media
    Sequence Number as a 128-bit big-endian integer (RFC 8216 section 5.2).

    Unique per segment only within one sequence of numbers: segments under one key must not
    share a number (transcoder.publish gives each rendition its own range).
    """
    number = media_sequence_number
    if type(number) is not int or not 0 <= number < 2**63:
        raise ValueError(f"a media sequence number is an integer from 0 to 2**63-1, got {number!r}")
    return number.to_bytes(IV_SIZE, "big")
