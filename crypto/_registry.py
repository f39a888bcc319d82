"""`KeyRegistry`: the cluster's public keys, indexed by member id."""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Sequence

import attrs

from btob.crypto._backends import PUBLIC_KEY_BYTES
from btob.crypto._errors import CryptoError


def _to_key_tuple(value: Iterable[bytes]) -> tuple[bytes, ...]:
    """Accept any iterable of bytes-like keys as a tuple of ``bytes``."""
    if isinstance(value, bytes | bytearray | memoryview | str):
        raise CryptoError(
            f"public_keys must be a sequence of {PUBLIC_KEY_BYTES}-byte keys, "
            f"not a single {type(value).__name__}"
        )
    try:
        items = tuple(value)
    except TypeError:
        raise CryptoError(
            f"public_keys must be a sequence of {PUBLIC_KEY_BYTES}-byte keys, "
            f"not {type(value).__name__}"
        ) from None
    return tuple(bytes(k) if isinstance(k, bytearray | memoryview) else k for k in items)


def _validate_keys(_instance: object, _attribute: object, value: object) -> None:
    if not isinstance(value, tuple):
        raise CryptoError(
            f"public_keys must be a sequence of {PUBLIC_KEY_BYTES}-byte keys, "
            f"not {type(value).__name__}"
        )
    if not value:
        raise CryptoError("a key registry needs at least one public key")
    seen: dict[bytes, int] = {}
    for member, key in enumerate(value):
        if not isinstance(key, bytes):
            raise CryptoError(
                f"public key of member {member} must be bytes, not {type(key).__name__}"
            )
        if len(key) != PUBLIC_KEY_BYTES:
            raise CryptoError(
                f"public key of member {member} must be exactly {PUBLIC_KEY_BYTES} bytes, "
                f"got {len(key)}"
            )
        if key in seen:
            raise CryptoError(
                f"members {seen[key]} and {member} have the same public key {key.hex()}"
            )
        seen[key] = member


@attrs.frozen
class KeyRegistry:
    """The public keys of members ``0 .. n-1``, in member-id order.

    Validated on construction: at least one key, each exactly 32 bytes, no duplicates;
    violations raise `CryptoError`.
    """

    public_keys: tuple[bytes, ...] = attrs.field(converter=_to_key_tuple, validator=_validate_keys)

    @property
    def n(self) -> int:
        """The number of members."""
        return len(self.public_keys)

    def public_key(self, member: int) -> bytes:
        """The key of ``member``; `CryptoError` unless ``0 <= member < n`` (an int)."""
        if isinstance(member, bool) or not isinstance(member, int):
            raise CryptoError(f"member id must be an int, not {type(member).__name__}")
        if not 0 <= member < len(self.public_keys):
            raise CryptoError(f"member id {member} out of range 0..{len(self.public_keys) - 1}")
        return self.public_keys[member]

    @classmethod
    def from_hex(cls, keys: Sequence[str]) -> KeyRegistry:
        """A registry from hex-encoded keys; `CryptoError` for bad hex or invalid keys."""
        if isinstance(keys, str):
            raise CryptoError("from_hex wants a sequence of hex strings, not one string")
        decoded: list[bytes] = []
        for member, text in enumerate(keys):
            if not isinstance(text, str):
                raise CryptoError(
                    f"public key of member {member} must be a hex string, not {type(text).__name__}"
                )
            try:
                decoded.append(bytes.fromhex(text.strip()))
            except (ValueError, binascii.Error):
                raise CryptoError(
                    f"public key of member {member} is not valid hex: {text[:80]!r}"
                ) from None
        return cls(tuple(decoded))

    def to_hex(self) -> list[str]:
        """The keys as lowercase hex strings, in member-id order (inverse of `from_hex`)."""
        return [key.hex() for key in self.public_keys]
