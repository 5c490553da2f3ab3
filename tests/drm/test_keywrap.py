import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drm import (
    InvalidKeyId,
    KeyEncryptionKey,
    KeyLengthError,
    KeyRing,
    KeyRingError,
    KeyUnwrapError,
    UnknownKekError,
    new_content_key,
    new_kek,
    rewrap_key,
    unwrap_key,
    wrap_key,
)
from drm.keywrap import WRAPPED_SIZE

KEY_ID = "v1-aac_160-0"


def test_round_trip() -> None:
    kek, content_key = new_kek(), new_content_key()
    wrapped = wrap_key(content_key, KEY_ID, kek)
    assert len(wrapped) == WRAPPED_SIZE == 44
    assert content_key not in wrapped
    assert unwrap_key(wrapped, KEY_ID, kek) == content_key


@given(st.binary(min_size=16, max_size=16))
def test_round_trip_any_key(content_key: bytes) -> None:
    kek = KeyEncryptionKey("kek-test", bytes(range(32)))
    assert unwrap_key(wrap_key(content_key, KEY_ID, kek), KEY_ID, kek) == content_key


def test_nonce_is_fresh() -> None:
    kek, content_key = new_kek(), new_content_key()
    assert wrap_key(content_key, KEY_ID, kek) != wrap_key(content_key, KEY_ID, kek)


@pytest.mark.parametrize("position", range(WRAPPED_SIZE))
def test_tamper_any_byte(position: int) -> None:
    kek = new_kek()
    wrapped = bytearray(wrap_key(new_content_key(), KEY_ID, kek))
    wrapped[position] ^= 0x01
    with pytest.raises(KeyUnwrapError, match="does not authenticate"):
        unwrap_key(bytes(wrapped), KEY_ID, kek)


def test_swapped_key_id() -> None:
    kek = new_kek()
    wrapped = wrap_key(new_content_key(), "v1-aac_160-0", kek)
    with pytest.raises(KeyUnwrapError, match="'v1-aac_160-1'"):
        unwrap_key(wrapped, "v1-aac_160-1", kek)


def test_wrong_kek() -> None:
    wrapped = wrap_key(new_content_key(), KEY_ID, new_kek("kek-a"))
    with pytest.raises(KeyUnwrapError, match="'kek-b'"):
        unwrap_key(wrapped, KEY_ID, new_kek("kek-b"))


def test_same_secret_other_kek_id_fails() -> None:
    # The KEK id is in the AAD too: relabelling a KEK does not let old blobs through.
    secret = bytes(32)
    wrapped = wrap_key(new_content_key(), KEY_ID, KeyEncryptionKey("kek-a", secret))
    with pytest.raises(KeyUnwrapError):
        unwrap_key(wrapped, KEY_ID, KeyEncryptionKey("kek-b", secret))


@pytest.mark.parametrize("length", [0, 28, 43, 45])
def test_wrong_wrapped_length(length: int) -> None:
    with pytest.raises(KeyUnwrapError, match=f"is {length} bytes; expected 44"):
        unwrap_key(bytes(length), KEY_ID, new_kek())


def test_rewrap() -> None:
    old, new = new_kek("kek-old"), new_kek("kek-new")
    content_key = new_content_key()
    rewrapped = rewrap_key(wrap_key(content_key, KEY_ID, old), KEY_ID, old, new)
    assert unwrap_key(rewrapped, KEY_ID, new) == content_key
    with pytest.raises(KeyUnwrapError):
        unwrap_key(rewrapped, KEY_ID, old)


def test_wrap_rejects_wrong_content_key_size() -> None:
    with pytest.raises(KeyLengthError, match="content key is 32 bytes; AES-128 needs 16"):
        wrap_key(bytes(32), KEY_ID, new_kek())


@pytest.mark.parametrize("key_id", ["", "a:b", "a/b", "spaced id", "é"])
def test_unsafe_key_ids(key_id: str) -> None:
    with pytest.raises(InvalidKeyId):
        wrap_key(new_content_key(), key_id, new_kek())
    with pytest.raises(InvalidKeyId):
        KeyEncryptionKey(key_id, bytes(32))


def test_kek_secret_size() -> None:
    with pytest.raises(KeyLengthError) as info:
        KeyEncryptionKey("kek-x", bytes(31))
    assert str(info.value) == "KEK 'kek-x' secret is 31 bytes; AES-256-GCM needs 32"


def test_kek_repr_hides_secret() -> None:
    kek = new_kek("kek-1234abcd")
    for text in (repr(kek), str(kek), repr(KeyRing(kek.kek_id, (kek,)))):
        assert kek.secret.hex() not in text
        assert repr(kek.secret) not in text
        assert "kek-1234abcd" in text


def test_new_kek_id_format() -> None:
    kek = new_kek()
    assert kek.kek_id.startswith("kek-")
    assert len(kek.kek_id) == 12
    int(kek.kek_id[4:], 16)
    assert len(kek.secret) == 32
    assert new_kek().secret != kek.secret


def test_kek_is_frozen() -> None:
    kek = new_kek()
    with pytest.raises(dataclasses.FrozenInstanceError):
        kek.secret = bytes(32)  # type: ignore[misc]


class TestKeyRing:
    def test_active_and_get(self) -> None:
        a, b = new_kek("kek-a"), new_kek("kek-b")
        ring = KeyRing("kek-b", (a, b))
        assert ring.active is b
        assert ring.get("kek-a") is a

    def test_unknown_kek(self) -> None:
        ring = KeyRing("kek-a", (new_kek("kek-a"), new_kek("kek-b")))
        with pytest.raises(UnknownKekError) as info:
            ring.get("kek-z")
        assert str(info.value) == "no key encryption key 'kek-z' in the ring; known: kek-a, kek-b"
        assert info.value.kek_id == "kek-z"
        assert isinstance(info.value, KeyRingError)

    def test_with_new_active(self) -> None:
        a = new_kek("kek-a")
        ring = KeyRing("kek-a", (a,))
        b = new_kek("kek-b")
        rotated = ring.with_new_active(b)
        assert rotated.active is b
        assert rotated.get("kek-a") is a
        assert ring.active is a  # the original is untouched

    def test_with_new_active_rejects_existing_id(self) -> None:
        ring = KeyRing("kek-a", (new_kek("kek-a"),))
        with pytest.raises(KeyRingError, match="duplicate KEK ids: kek-a"):
            ring.with_new_active(new_kek("kek-a"))

    def test_active_must_be_present(self) -> None:
        with pytest.raises(KeyRingError, match="active KEK 'kek-z' is not in the ring"):
            KeyRing("kek-z", (new_kek("kek-a"),))

    def test_empty_ring(self) -> None:
        with pytest.raises(KeyRingError):
            KeyRing("kek-a", ())

    def test_list_is_frozen_into_tuple(self) -> None:
        ring = KeyRing("kek-a", [new_kek("kek-a")])  # type: ignore[arg-type]
        assert isinstance(ring.keys, tuple)
        hash(ring)

    def test_rotation_end_to_end(self) -> None:
        ring = KeyRing("kek-a", (new_kek("kek-a"),))
        content_key = new_content_key()
        wrapped = wrap_key(content_key, KEY_ID, ring.active)
        ring = ring.with_new_active(new_kek("kek-b"))
        wrapped = rewrap_key(wrapped, KEY_ID, ring.get("kek-a"), ring.active)
        assert unwrap_key(wrapped, KEY_ID, ring.get("kek-b")) == content_key
