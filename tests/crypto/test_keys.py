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
