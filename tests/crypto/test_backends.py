"""Ed25519 backends: RFC 8032 vectors, cross-backend agreement, garbage handling."""

from __future__ import annotations

import hashlib
import os

import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btob.crypto import (
    BACKEND_NAMES,
    Backend,
    CryptoError,
    CryptographyBackend,
    NaclBackend,
    _backends,
    get_backend,
)

# RFC 8032, section 7.1: (name, secret key, public key, message, signature), all hex.
RFC8032_VECTORS = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]

BACKENDS: list[Backend] = [NaclBackend(), CryptographyBackend()]
backend_param = pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
vector_param = pytest.mark.parametrize(
    ("name", "secret", "public", "message", "signature"),
    RFC8032_VECTORS,
    ids=[v[0] for v in RFC8032_VECTORS],
)


def flip_bit(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def test_sha_abc_vector_message_is_sha512_of_abc() -> None:
    assert RFC8032_VECTORS[3][3] == hashlib.sha512(b"abc").hexdigest()


@backend_param
@vector_param
def test_rfc8032_vector(
    backend: Backend, name: str, secret: str, public: str, message: str, signature: str
) -> None:
    seed, pk, msg, sig = (bytes.fromhex(x) for x in (secret, public, message, signature))
    assert backend.public_key(seed) == pk
    assert backend.sign(seed, msg) == sig
    assert backend.sign(seed, msg) == sig  # again, from the key cache
    assert backend.verify(pk, msg, sig) is True
    assert backend.verify(pk, msg, sig) is True  # again, from the key cache


@backend_param
@vector_param
def test_rfc8032_vector_tampering_fails(
    backend: Backend, name: str, secret: str, public: str, message: str, signature: str
) -> None:
    pk, msg, sig = (bytes.fromhex(x) for x in (public, message, signature))
    # Message: flip bits where there are any; an empty message gets a byte appended instead.
    if msg:
        for bit in (0, 7, len(msg) * 8 - 1):
            assert backend.verify(pk, flip_bit(msg, bit), sig) is False
    assert backend.verify(pk, msg + b"\x00", sig) is False
    for bit in (0, 100, 255, 256, 300, 511):  # in R and in S
        assert backend.verify(pk, msg, flip_bit(sig, bit)) is False
    for bit in (0, 77, 254, 255):
        assert backend.verify(flip_bit(pk, bit), msg, sig) is False


@settings(max_examples=40, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=2048))
def test_backends_sign_identically_and_cross_verify(seed: bytes, message: bytes) -> None:
    nacl_backend, openssl_backend = BACKENDS
    pk = nacl_backend.public_key(seed)
    assert openssl_backend.public_key(seed) == pk
    sig = nacl_backend.sign(seed, message)
    assert openssl_backend.sign(seed, message) == sig
    assert nacl_backend.verify(pk, message, sig)
    assert openssl_backend.verify(pk, message, sig)


GARBAGE_KEYS = [b"", b"\x01" * 31, b"\x01" * 33, bytes(32), os.urandom(64)]
GARBAGE_SIGNATURES = [b"", bytes(63), bytes(65), bytes(64), os.urandom(64), b"\xff" * 64]


@backend_param
def test_verify_garbage_returns_false(backend: Backend) -> None:
    seed = os.urandom(32)
    pk = backend.public_key(seed)
    sig = backend.sign(seed, b"m")
    for key in [*GARBAGE_KEYS, os.urandom(32)]:
        assert backend.verify(key, b"m", sig) is False
    for signature in GARBAGE_SIGNATURES:
        assert backend.verify(pk, b"m", signature) is False
    for key in GARBAGE_KEYS:
        for signature in GARBAGE_SIGNATURES:
            assert backend.verify(key, b"m", signature) is False
    for junk in (None, "x" * 32, 32, [0] * 32):
        assert backend.verify(junk, b"m", sig) is False  # type: ignore[arg-type]
        assert backend.verify(pk, junk, sig) is False  # type: ignore[arg-type]
        assert backend.verify(pk, b"m", junk) is False  # type: ignore[arg-type]
    assert backend.verify(bytearray(pk), memoryview(b"m"), bytearray(sig)) is True  # type: ignore[arg-type]


# --- libsodium-compatible strictness ---------------------------------------------------------

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_L = 2**252 + 27742317777372353535851937790883648493


def _edwards_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, _P - 2, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P
    return x3, y3


def _recover_x(y: int) -> int | None:
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * pow(2, (_P - 1) // 4, _P) % _P
    return x if (x * x - x2) % _P == 0 else None


def test_small_order_blocklist_is_exactly_the_small_order_points() -> None:
    canonical = sorted(y for y in _backends._SMALL_ORDER_Y if y < _P)
    assert len(canonical) == 5
    for y in canonical:
        x = _recover_x(y)
        assert x is not None, f"y={y} is not on the curve"
        point = (x, y)
        multiple = point
        for _ in range(7):
            multiple = _edwards_add(multiple, point)
        assert multiple == (0, 1), f"y={y} is not of order dividing 8"
        encoded = y.to_bytes(32, "little")
        assert not nacl.bindings.crypto_core_ed25519_is_valid_point(encoded)
    assert {y - _P for y in _backends._SMALL_ORDER_Y if y >= _P} == {0, 1}
    # A random valid public key is not blocked.
    pk = get_backend().public_key(os.urandom(32))
    assert nacl.bindings.crypto_core_ed25519_is_valid_point(pk)
    assert not _backends._has_small_order(pk)


def _edge_case_keys() -> list[bytes]:
    keys = []
    for y in _backends._SMALL_ORDER_Y:
        encoded = y.to_bytes(32, "little")
        keys += [encoded, encoded[:31] + bytes([encoded[31] | 0x80])]
    keys.append((_P + 5).to_bytes(32, "little"))  # non-canonical y = 5
    keys.append(b"\xff" * 32)
    return keys


def test_identity_forgery_is_rejected_by_both_backends() -> None:
    identity = (1).to_bytes(32, "little")
    forgery = identity + bytes(32)  # R = identity, S = 0: valid for any message, cofactorless
    for backend in BACKENDS:
        assert backend.verify(identity, b"anything", forgery) is False


@pytest.mark.parametrize("key", _edge_case_keys(), ids=lambda k: k.hex()[:8] + k.hex()[-4:])
def test_backends_agree_on_edge_case_points(key: bytes) -> None:
    seed = os.urandom(32)
    real_sig = BACKENDS[0].sign(seed, b"m")
    s_values = [bytes(32), (1).to_bytes(32, "little"), (_L - 1).to_bytes(32, "little")]
    s_values += [_L.to_bytes(32, "little"), real_sig[32:]]
    for r in [*_edge_case_keys(), real_sig[:32]]:
        for s in s_values:
            verdicts = {b.name: b.verify(key, b"m", r + s) for b in BACKENDS}
            assert len(set(verdicts.values())) == 1, (r.hex(), s.hex(), verdicts)


@backend_param
def test_non_canonical_s_is_rejected(backend: Backend) -> None:
    seed = os.urandom(32)
    pk = backend.public_key(seed)
    sig = backend.sign(seed, b"m")
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + _L).to_bytes(32, "little")
    assert backend.verify(pk, b"m", malleated) is False


@settings(max_examples=60, deadline=None)
@given(
    key=st.one_of(st.sampled_from(_edge_case_keys()), st.binary(min_size=32, max_size=32)),
    signature=st.binary(min_size=64, max_size=64),
    message=st.binary(max_size=64),
)
def test_backends_agree_on_random_garbage(key: bytes, signature: bytes, message: bytes) -> None:
    assert BACKENDS[0].verify(key, message, signature) is False
    assert BACKENDS[1].verify(key, message, signature) is False


# --- seeds, caches, selection --------------------------------------------------------------


@backend_param
def test_bad_seed_raises_crypto_error(backend: Backend) -> None:
    for seed in (b"", bytes(31), bytes(33)):
        with pytest.raises(CryptoError, match="32 bytes"):
            backend.public_key(seed)
        with pytest.raises(CryptoError, match="32 bytes"):
            backend.sign(seed, b"m")
    with pytest.raises(CryptoError):
        backend.sign("x" * 32, b"m")  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        backend.sign(bytes(32), "message")  # type: ignore[arg-type]


@pytest.mark.parametrize("factory", [NaclBackend, CryptographyBackend])
def test_key_caches_are_bounded(factory: type[NaclBackend] | type[CryptographyBackend]) -> None:
    backend = factory()
    limit = _backends.KEY_CACHE_ENTRIES_MAX
    for i in range(limit + 50):
        seed = i.to_bytes(32, "little")
        assert backend.verify(backend.public_key(seed), b"m", backend.sign(seed, b"m"))
    for cache in vars(backend).values():
        assert isinstance(cache, dict)
        assert 0 < len(cache) <= limit


def test_get_backend() -> None:
    assert BACKEND_NAMES == ("nacl", "cryptography")
    assert isinstance(get_backend(), NaclBackend)
    assert isinstance(get_backend("nacl"), NaclBackend)
    assert isinstance(get_backend("cryptography"), CryptographyBackend)
    assert get_backend("cryptography") is get_backend("cryptography")
    for name in BACKEND_NAMES:
        assert get_backend(name).name == name
        assert isinstance(get_backend(name), Backend)
    with pytest.raises(CryptoError, match="nacl, cryptography") as info:
        get_backend("openssl")
    assert "'openssl'" in str(info.value)
