"""SigningKey: an Ed25519 seed, validated, never shown."""

from __future__ import annotations

import attrs
import pytest

from btob.crypto import CryptoError, CryptographyBackend, NaclBackend, SigningKey


def test_signing_key_validation_and_repr() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    assert key.seed == bytes(range(32))
    assert SigningKey(bytearray(range(32))) == key  # type: ignore[arg-type]
    text = repr(key)
    assert bytes(range(32)).hex() not in text
    assert bytes(range(32)).hex()[:8] not in text
    assert repr(bytes(range(32))) not in text
    assert key.public_key().hex()[:16] in text
    for bad in (b"", bytes(31), bytes(33), "a" * 32, None, 32):
        with pytest.raises(CryptoError):
            SigningKey(bad)  # type: ignore[arg-type]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        key.seed = bytes(32)  # type: ignore[misc]


def test_signing_key_generate_and_public_key() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    assert a != b and len(a.seed) == 32
    assert a.public_key() == a.public_key(CryptographyBackend()) == a.public_key(NaclBackend())
    assert len(a.public_key()) == 32


def test_the_public_key_is_rfc_8032s_for_its_seed() -> None:
    # RFC 8032, section 7.1, TEST 1.
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    key = SigningKey.from_seed(seed)
    assert key.public_key() == public
    assert key.public_key(CryptographyBackend()) == key.public_key(NaclBackend()) == public


def test_a_seed_may_be_given_as_any_bytes_like_and_is_kept_as_bytes() -> None:
    seed = bytes(range(32))
    for given in (bytearray(seed), memoryview(seed)):
        key = SigningKey(given)  # type: ignore[arg-type]
        assert type(key.seed) is bytes and key == SigningKey.from_seed(seed)
    assert hash(SigningKey(seed)) == hash(SigningKey.from_seed(seed))


def test_a_bad_seed_is_refused_with_the_reason() -> None:
    with pytest.raises(CryptoError, match="exactly 32 bytes, got 31"):
        SigningKey.from_seed(bytes(31))
    with pytest.raises(CryptoError, match="must be bytes, not str"):
        SigningKey.from_seed("x" * 32)  # type: ignore[arg-type]
