"""Content keys wrapped per device (ECIES over X25519) and Ed25519-signed licences."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drm import (
    KeyBinding,
    KeyLengthError,
    KeyUnwrapError,
    LicenceSignatureInvalid,
    licence_public_key,
    new_content_key,
    new_device_keypair,
    sign_licence,
    unwrap_on_device,
    verify_licence,
    wrap_for_device,
)
from drm.device_keys import DEVICE_WRAPPED_SIZE

BINDING = KeyBinding("lic1", "dev1", "trk1", "v1", "v1-premium-0", 1_702_592_000)
PRIVATE, PUBLIC = new_device_keypair()


def test_only_the_device_with_the_binding_opens_the_key() -> None:
    key = new_content_key()
    wrapped = wrap_for_device(key, PUBLIC, BINDING)
    assert len(wrapped) == DEVICE_WRAPPED_SIZE
    assert key not in wrapped
    assert unwrap_on_device(wrapped, PRIVATE, BINDING) == key
    other_private, _ = new_device_keypair()
    with pytest.raises(KeyUnwrapError, match="another device"):
        unwrap_on_device(wrapped, other_private, BINDING)
    for edited in [
        dataclasses.replace(BINDING, expires_at=BINDING.expires_at + 1),
        dataclasses.replace(BINDING, device_id="dev2"),
        dataclasses.replace(BINDING, licence_id="lic2"),
        dataclasses.replace(BINDING, key_id="v1-premium-1"),
    ]:
        with pytest.raises(KeyUnwrapError):
            unwrap_on_device(wrapped, PRIVATE, edited)


def test_each_wrap_differs_and_a_flipped_bit_fails() -> None:
    key = new_content_key()
    first, second = (wrap_for_device(key, PUBLIC, BINDING) for _ in range(2))
    assert first != second  # a fresh ephemeral key and nonce each time
    tampered = bytearray(first)
    tampered[-1] ^= 1
    with pytest.raises(KeyUnwrapError):
        unwrap_on_device(bytes(tampered), PRIVATE, BINDING)
    with pytest.raises(KeyUnwrapError, match="bytes"):
        unwrap_on_device(first[:-1], PRIVATE, BINDING)


def test_unusable_device_keys_are_refused() -> None:
    with pytest.raises(KeyLengthError):
        wrap_for_device(new_content_key(), PUBLIC[:31], BINDING)
    with pytest.raises(KeyUnwrapError, match="zeros"):
        wrap_for_device(new_content_key(), bytes(32), BINDING)
    with pytest.raises(KeyLengthError):
        wrap_for_device(b"short", PUBLIC, BINDING)


def test_bindings_that_differ_never_encode_alike() -> None:
    a = KeyBinding("l", "d", "t", "v", "k1", 10)
    b = KeyBinding("l", "d", "t", "v", "k", 110)  # the same characters, split otherwise
    assert a.encode() != b.encode()
    with pytest.raises(ValueError):
        KeyBinding("l\nx", "d", "t", "v", "k", 1)


@given(st.binary(min_size=16, max_size=16), st.integers(0, 2**40), st.text("abc-_", min_size=1))
def test_round_trip(key: bytes, expires_at: int, licence_id: str) -> None:
    binding = dataclasses.replace(BINDING, expires_at=expires_at, licence_id=licence_id)
    assert unwrap_on_device(wrap_for_device(key, PUBLIC, binding), PRIVATE, binding) == key


def test_a_signed_licence_verifies_and_an_edited_one_does_not() -> None:
    seed = bytes(range(32))
    document = b'{"expires_at":1702592000,"licence_id":"lic1"}'
    signature = sign_licence(document, seed)
    verify_licence(document, signature, licence_public_key(seed))
    with pytest.raises(LicenceSignatureInvalid) as refused:
        verify_licence(
            document.replace(b"1702592000", b"1999999999"), signature, licence_public_key(seed)
        )
    assert refused.value.http_status == 403
    with pytest.raises(LicenceSignatureInvalid):
        verify_licence(document, signature, licence_public_key(bytes(32)))
