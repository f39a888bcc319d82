"""`SigningKey`: an Ed25519 private key held as its 32-byte seed."""

from __future__ import annotations

import os

import attrs

from btob.crypto._backends import SEED_BYTES, Backend, get_backend
from btob.crypto._errors import CryptoError


def _to_bytes(value: bytes) -> bytes:
    """Accept any bytes-like seed as ``bytes``; leave anything else for the validator."""
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def _validate_seed(_instance: object, _attribute: object, value: bytes) -> None:
    if not isinstance(value, bytes):
        raise CryptoError(f"a signing key seed must be bytes, not {type(value).__name__}")
    if len(value) != SEED_BYTES:
        raise CryptoError(
            f"a signing key seed must be exactly {SEED_BYTES} bytes, got {len(value)}"
        )


@attrs.frozen(repr=False)
class SigningKey:
    """An Ed25519 private key: its 32-byte RFC 8032 seed (validated; `CryptoError` otherwise).

    The seed never appears in ``repr``; the repr shows a public-key prefix instead.
    """

    seed: bytes = attrs.field(converter=_to_bytes, validator=_validate_seed, repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key from ``os.urandom``."""
        return cls(os.urandom(SEED_BYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key with this 32-byte seed; `CryptoError` if it is not 32 bytes."""
        return cls(seed)

    def public_key(self, backend: Backend | None = None) -> bytes:
        """The 32-byte public key (computed with ``backend``, default the shared nacl one)."""
        return (backend if backend is not None else get_backend()).public_key(self.seed)

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key().hex()[:16]}...)"
