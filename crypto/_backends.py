"""Ed25519 backends: PyNaCl (libsodium, the default) and ``cryptography`` (OpenSSL).

Both backends sign byte-identically (Ed25519 is deterministic) and, more importantly for a
Byzantine-tolerant protocol, *accept exactly the same signatures*: signature validity must be a
global predicate, or a faulty member could craft a signature that one honest node accepts and
another rejects. libsodium's verifier is the reference. It rejects a non-canonical ``S``
(``S >= L``), a small-order ``R``, a non-canonical public key and a small-order public key;
OpenSSL alone would accept some of these (for example the trivial forgery with the identity as
public key and ``R``, and ``S = 0``, which verifies for every message). `CryptographyBackend`
therefore applies libsodium's pre-checks itself before calling OpenSSL.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from btob.crypto._errors import CryptoError

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

#: How many per-seed / per-public-key objects each backend instance keeps.
KEY_CACHE_ENTRIES_MAX = 1024

_FIELD_P = 2**255 - 19
_GROUP_L = 2**252 + 27742317777372353535851937790883648493
_Y_MASK = (1 << 255) - 1

# The y-coordinates (sign bit cleared) that libsodium's ``ge25519_has_small_order`` rejects: the
# points of order 1, 2, 4 and 8, plus the two non-canonical encodings (p and p + 1) of y = 0 and
# y = 1. tests/crypto/test_backends.py re-derives the order-8 values from the curve equation.
_SMALL_ORDER_Y: frozenset[int] = frozenset(
    {
        0,  # (+-sqrt(-1), 0), order 4
        1,  # the identity, order 1
        _FIELD_P - 1,  # (0, -1), order 2
        _FIELD_P,  # non-canonical 0
        _FIELD_P + 1,  # non-canonical 1
        int.from_bytes(
            bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
            "little",
        ),  # order 8
        int.from_bytes(
            bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
            "little",
        ),  # order 8
    }
)


def _has_small_order(encoded_point: bytes) -> bool:
    """True if the 32-byte point encoding is one libsodium rejects as small-order."""
    return (int.from_bytes(encoded_point, "little") & _Y_MASK) in _SMALL_ORDER_Y


def _is_canonical_point(encoded_point: bytes) -> bool:
    """True if the encoded y-coordinate (sign bit cleared) is below the field prime."""
    return (int.from_bytes(encoded_point, "little") & _Y_MASK) < _FIELD_P


def _is_canonical_scalar(encoded_scalar: bytes) -> bool:
    """True if the 32-byte little-endian scalar is below the group order L."""
    return int.from_bytes(encoded_scalar, "little") < _GROUP_L


def _check_seed(seed: bytes) -> bytes:
    if not isinstance(seed, bytes | bytearray | memoryview):
        raise CryptoError(f"an Ed25519 seed must be bytes, not {type(seed).__name__}")
    seed = bytes(seed)
    if len(seed) != SEED_BYTES:
        raise CryptoError(f"an Ed25519 seed must be exactly {SEED_BYTES} bytes, got {len(seed)}")
    return seed


def _as_bytes(value: object, length: int | None = None) -> bytes | None:
    """``value`` as ``bytes`` if it is bytes-like (and ``length`` long, if given), else None."""
    if isinstance(value, bytes):
        result = value
    elif isinstance(value, bytearray | memoryview):
        result = bytes(value)
    else:
        return None
    if length is not None and len(result) != length:
        return None
    return result


_K = TypeVar("_K")
_V = TypeVar("_V")


def _message_bytes(message: bytes) -> bytes:
    msg = _as_bytes(message)
    if msg is None:
        raise CryptoError(f"a message to sign must be bytes, not {type(message).__name__}")
    return msg


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    """Insert into a bounded dict, evicting the oldest insertion when full."""
    if len(cache) >= KEY_CACHE_ENTRIES_MAX:
        try:
            del cache[next(iter(cache))]
        except (StopIteration, KeyError, RuntimeError):  # pragma: no cover - concurrent use
            cache.clear()
    cache[key] = value


@runtime_checkable
class Backend(Protocol):
    """An Ed25519 implementation (RFC 8032, pure Ed25519, 32-byte seeds).

    Contract: ``public_key`` and ``sign`` raise `CryptoError` for a seed that is not exactly
    32 bytes; ``verify`` returns False and never raises for a bad signature, a wrong-length key
    or signature, or an invalid or small-order point. All backends sign byte-identically and
    accept exactly the same signatures.
    """

    name: str

    def public_key(self, seed: bytes) -> bytes:
        """The 32-byte Ed25519 public key for a 32-byte seed."""
        ...

    def sign(self, seed: bytes, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` under the key with ``seed``."""
        ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is a valid signature of ``message`` under ``public_key``."""
        ...


class NaclBackend:
    """`Backend` on PyNaCl / libsodium; the default.

    Caches the expanded 64-byte libsodium secret key per seed (bounded). Verification needs no
    per-key object in libsodium, so verify works on the raw public key bytes directly.
    """

    name: str = "nacl"

    def __init__(self) -> None:
        self._secret_keys: dict[bytes, bytes] = {}
        self._public_keys: dict[bytes, bytes] = {}

    def __repr__(self) -> str:
        return "NaclBackend()"

    def _secret_key(self, seed: bytes) -> bytes:
        secret = self._secret_keys.get(seed) if isinstance(seed, bytes) else None
        if secret is None:
            seed = _check_seed(seed)
            public, secret_any = nacl.bindings.crypto_sign_seed_keypair(seed)
            secret = bytes(secret_any)
            _remember(self._secret_keys, seed, secret)
            _remember(self._public_keys, seed, bytes(public))
        return secret

    def public_key(self, seed: bytes) -> bytes:
        """The 32-byte public key for ``seed``; `CryptoError` if the seed is not 32 bytes."""
        public = self._public_keys.get(seed) if isinstance(seed, bytes) else None
        if public is None:
            self._secret_key(seed)
            public = self._public_keys[bytes(seed)]
        return public

    def sign(self, seed: bytes, message: bytes) -> bytes:
        """The 64-byte signature of ``message``; `CryptoError` if the seed is not 32 bytes."""
        signed = nacl.bindings.crypto_sign(_message_bytes(message), self._secret_key(seed))
        return bytes(signed[:SIGNATURE_BYTES])

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True iff valid; False (never raises) for anything malformed or invalid."""
        key = _as_bytes(public_key, PUBLIC_KEY_BYTES)
        sig = _as_bytes(signature, SIGNATURE_BYTES)
        msg = _as_bytes(message)
        if key is None or sig is None or msg is None:
            return False
        try:
            nacl.bindings.crypto_sign_open(sig + msg, key)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            return False
        return True


class CryptographyBackend:
    """`Backend` on the ``cryptography`` package (OpenSSL), with libsodium's strictness.

    Caches ``Ed25519PrivateKey`` objects per seed and ``Ed25519PublicKey`` objects per public
    key (each bounded), so repeated use of one key does not rebuild the OpenSSL key object.
    """

    name: str = "cryptography"

    def __init__(self) -> None:
        self._private_keys: dict[bytes, Ed25519PrivateKey] = {}
        self._public_key_bytes: dict[bytes, bytes] = {}
        self._verify_keys: dict[bytes, Ed25519PublicKey] = {}

    def __repr__(self) -> str:
        return "CryptographyBackend()"

    def _private_key(self, seed: bytes) -> Ed25519PrivateKey:
        private = self._private_keys.get(seed) if isinstance(seed, bytes) else None
        if private is None:
            seed = _check_seed(seed)
            private = Ed25519PrivateKey.from_private_bytes(seed)
            _remember(self._private_keys, seed, private)
        return private

    def public_key(self, seed: bytes) -> bytes:
        """The 32-byte public key for ``seed``; `CryptoError` if the seed is not 32 bytes."""
        public = self._public_key_bytes.get(seed) if isinstance(seed, bytes) else None
        if public is None:
            public = self._private_key(seed).public_key().public_bytes_raw()
            _remember(self._public_key_bytes, bytes(seed), public)
        return public

    def sign(self, seed: bytes, message: bytes) -> bytes:
        """The 64-byte signature of ``message``; `CryptoError` if the seed is not 32 bytes."""
        return self._private_key(seed).sign(_message_bytes(message))

    def _verify_key(self, public_key: bytes) -> Ed25519PublicKey | None:
        verify_key = self._verify_keys.get(public_key)
        if verify_key is None:
            # libsodium's public-key checks, which OpenSSL does not make.
            if not _is_canonical_point(public_key) or _has_small_order(public_key):
                return None
            try:
                verify_key = Ed25519PublicKey.from_public_bytes(public_key)
            except (ValueError, TypeError):
                return None
            _remember(self._verify_keys, public_key, verify_key)
        return verify_key

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True iff valid; False (never raises) for anything malformed or invalid."""
        key = _as_bytes(public_key, PUBLIC_KEY_BYTES)
        sig = _as_bytes(signature, SIGNATURE_BYTES)
        msg = _as_bytes(message)
        if key is None or sig is None or msg is None:
            return False
        # libsodium's signature checks: canonical S, R not of small order.
        if not _is_canonical_scalar(sig[32:]) or _has_small_order(sig[:32]):
            return False
        verify_key = self._verify_key(key)
        if verify_key is None:
            return False
        try:
            verify_key.verify(sig, msg)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


#: The names `get_backend` accepts.
BACKEND_NAMES: tuple[str, ...] = ("nacl", "cryptography")

_shared_backends: dict[str, Backend] = {}


def get_backend(name: str = "nacl") -> Backend:
    """The shared backend instance called ``name`` ("nacl" or "cryptography").

    Returns the same instance on every call, so its key caches are shared. Raises `CryptoError`
    naming the valid choices for any other name.
    """
    backend = _shared_backends.get(name) if isinstance(name, str) else None
    if backend is None:
        if name == "nacl":
            backend = NaclBackend()
        elif name == "cryptography":
            backend = CryptographyBackend()
        else:
            raise CryptoError(
                f"unknown crypto backend {name!r}; valid choices: {', '.join(BACKEND_NAMES)}"
            )
        backend = _shared_backends.setdefault(name, backend)
    return backend
