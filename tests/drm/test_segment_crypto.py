import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drm import (
    DecryptionError,
    KeyLengthError,
    decrypt_segment,
    encrypt_segment,
    new_content_key,
    new_iv,
    sequence_iv,
)

KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")

keys = st.binary(min_size=16, max_size=16)
# Lengths around block boundaries matter most: include empty and exact multiples of 16.
plaintexts = st.one_of(
    st.binary(max_size=200),
    st.integers(0, 8).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)),
)


@given(plaintexts, keys, keys)
def test_round_trip(plaintext: bytes, key: bytes, iv: bytes) -> None:
    ciphertext = encrypt_segment(plaintext, key, iv)
    assert len(ciphertext) % 16 == 0
    assert len(plaintext) < len(ciphertext) <= len(plaintext) + 16
    assert decrypt_segment(ciphertext, key, iv) == plaintext


def test_nist_sp800_38a_cbc_aes128_vector() -> None:
    # NIST SP 800-38A, F.2.1 CBC-AES128.Encrypt; PKCS#7 then appends one full padding block.
    plaintext = bytes.fromhex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
    )
    expected = bytes.fromhex(
        "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
        "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"
    )
    ciphertext = encrypt_segment(plaintext, KEY, IV)
    assert ciphertext[:64] == expected
    assert len(ciphertext) == 80


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 188 * 7, 4096])
def test_matches_openssl(size: int) -> None:
    plaintext = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    key, iv = new_content_key(), new_iv()
    result = subprocess.run(
        ["openssl", "enc", "-aes-128-cbc", "-K", key.hex(), "-iv", iv.hex()],
        input=plaintext,
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert encrypt_segment(plaintext, key, iv) == result.stdout


@pytest.mark.parametrize(
    ("key", "iv", "message"),
    [
        (bytes(15), IV, "content key is 15 bytes; AES-128 needs 16"),
        (bytes(32), IV, "content key is 32 bytes; AES-128 needs 16"),
        (KEY, bytes(8), "IV is 8 bytes; AES-128-CBC needs 16"),
    ],
)
def test_wrong_sizes(key: bytes, iv: bytes, message: str) -> None:
    with pytest.raises(KeyLengthError) as info:
        encrypt_segment(b"x", key, iv)
    assert str(info.value) == message
    with pytest.raises(KeyLengthError):
        decrypt_segment(bytes(16), key, iv)


def test_key_bytes_not_in_message() -> None:
    key = bytes(range(1, 16))
    with pytest.raises(KeyLengthError) as info:
        encrypt_segment(b"x", key, IV)
    assert key.hex() not in str(info.value)
    assert repr(key) not in str(info.value)


@pytest.mark.parametrize("length", [0, 1, 15, 17, 33])
def test_bad_ciphertext_length(length: int) -> None:
    with pytest.raises(DecryptionError, match=f"is {length} bytes"):
        decrypt_segment(bytes(length), KEY, IV)


def test_bad_padding() -> None:
    ciphertext = encrypt_segment(b"hello world", KEY, IV)
    tampered = ciphertext[:-1] + bytes((ciphertext[-1] ^ 1,))
    with pytest.raises(DecryptionError, match="padding"):
        decrypt_segment(tampered, KEY, IV)


def test_wrong_key_is_caught_by_padding_most_of_the_time() -> None:
    # CBC is unauthenticated; a wrong key yields valid padding with probability about 1/256.
    ciphertext = encrypt_segment(b"segment", KEY, IV)
    failures = 0
    for _ in range(64):
        try:
            decrypt_segment(ciphertext, new_content_key(), IV)
        except DecryptionError:
            failures += 1
    assert failures >= 56


def test_padding_of_zero_and_over_block_rejected() -> None:
    # Craft plaintext blocks whose last byte is 0 and 17 by encrypting a padded-looking block.
    for last in (0, 17):
        block = bytes(15) + bytes((last,))
        raw = encrypt_segment(block, KEY, IV)[:16]  # the first block encrypts `block` verbatim
        with pytest.raises(DecryptionError):
            decrypt_segment(raw, KEY, IV)


def test_fresh_material() -> None:
    assert len(new_content_key()) == 16
    assert len(new_iv()) == 16
    assert new_content_key() != new_content_key()
    assert new_iv() != new_iv()


def test_sequence_iv_is_the_number_as_128_bit_big_endian() -> None:
    # RFC 8216 5.2: "the Media Sequence Number is to be used as the IV ... big-endian binary
    # representation into a 16-octet (128-bit) buffer and padding (on the left) with zeros".
    assert sequence_iv(0) == bytes(16)
    assert sequence_iv(6_000_035) == bytes(12) + bytes.fromhex("005b8da3")
    assert sequence_iv(2**63 - 1) == bytes(8) + b"\x7f" + b"\xff" * 7


@pytest.mark.parametrize("number", [-1, 2**63, 1.0, True, "1"])
def test_sequence_iv_refuses_what_no_playlist_can_number(number: object) -> None:
    with pytest.raises(ValueError, match="media sequence number"):
        sequence_iv(number)  # type: ignore[arg-type]
