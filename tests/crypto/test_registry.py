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
