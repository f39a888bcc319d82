"""KeyRegistry: the cluster's public keys by member id."""

from __future__ import annotations

from typing import Any

import pytest

from btob.crypto import CryptoError, KeyRegistry, SigningKey


def test_registry() -> None:
    keys = tuple(SigningKey.generate().public_key() for _ in range(3))
    registry = KeyRegistry(keys)
    assert registry.n == 3
    assert [registry.public_key(i) for i in range(3)] == list(keys)
    assert KeyRegistry([bytearray(k) for k in keys]) == registry  # type: ignore[misc]
    assert KeyRegistry.from_hex(registry.to_hex()) == registry
    assert registry.to_hex() == [k.hex() for k in keys]
    for member in (-1, 3, 100, True, "0", 1.0, None):
        with pytest.raises(CryptoError):
            registry.public_key(member)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ((), "at least one"),
        ((bytes(31),), "exactly 32 bytes"),
        ((b"\x01" * 32, b"\x02" * 33), "member 1"),
        ((b"\x01" * 32, "ab" * 16), "member 1 must be bytes"),
        ((b"\x01" * 32, b"\x02" * 32, b"\x01" * 32), "members 0 and 2"),
        (b"\x01" * 32, "single bytes"),
        (42, "not int"),
    ],
)
def test_registry_validation(keys: Any, match: str) -> None:
    with pytest.raises(CryptoError, match=match):
        KeyRegistry(keys)


def test_registry_from_hex_errors() -> None:
    with pytest.raises(CryptoError, match="not valid hex"):
        KeyRegistry.from_hex(["zz" * 32])
    with pytest.raises(CryptoError, match="one string"):
        KeyRegistry.from_hex("00" * 32)
    with pytest.raises(CryptoError, match="exactly 32 bytes"):
        KeyRegistry.from_hex(["00" * 31])
    with pytest.raises(CryptoError, match="at least one"):
        KeyRegistry.from_hex([])


def test_keys_may_be_given_as_any_bytes_like() -> None:
    keys = [SigningKey.from_seed(bytes([i]) * 32).public_key() for i in range(3)]
    registry = KeyRegistry([bytearray(keys[0]), memoryview(keys[1]), keys[2]])  # type: ignore[list-item]
    assert registry.public_keys == tuple(keys)
    assert all(type(k) is bytes for k in registry.public_keys)


def test_from_hex_names_the_member_whose_key_is_bad() -> None:
    good = "ab" * 32
    with pytest.raises(CryptoError, match="public key of member 1 must be a hex string, not int"):
        KeyRegistry.from_hex([good, 7])  # type: ignore[list-item]
    with pytest.raises(CryptoError, match="public key of member 2 is not valid hex"):
        KeyRegistry.from_hex([good, "cd" * 32, "xyz"])
    assert KeyRegistry.from_hex([f"  {good}\n"]).public_keys == (bytes.fromhex(good),)


def test_a_member_id_must_be_an_int_in_range() -> None:
    registry = KeyRegistry(tuple(SigningKey.from_seed(bytes([i]) * 32).public_key()
                                 for i in range(2)))
    with pytest.raises(CryptoError, match=r"out of range 0\.\.1"):
        registry.public_key(2)
    with pytest.raises(CryptoError, match="must be an int, not bool"):
        registry.public_key(False)
