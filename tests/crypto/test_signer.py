"""Signer and the caching Verifier."""

from __future__ import annotations

import os
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btob.crypto import (
    Backend,
    CryptoError,
    KeyRegistry,
    NaclBackend,
    Signer,
    SigningKey,
    Verifier,
    VerifierStatistics,
    domain_tag,
    get_backend,
)

CLUSTER = b"cluster-1"


class CountingBackend:
    """Wraps a real backend and counts the calls that reach it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = f"counting-{inner.name}"
        self.sign_calls = 0
        self.verify_calls = 0

    def public_key(self, seed: bytes) -> bytes:
        return self.inner.public_key(seed)

    def sign(self, seed: bytes, message: bytes) -> bytes:
        self.sign_calls += 1
        return self.inner.sign(seed, message)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        self.verify_calls += 1
        return self.inner.verify(public_key, message, signature)


def make_cluster(
    n: int = 4, backend: Backend | None = None, cache_entries_max: int = 65536
) -> tuple[list[Signer], Verifier]:
    keys = [SigningKey.from_seed(bytes([i + 1]) * 32) for i in range(n)]
    signers = [Signer(k, cluster_id=CLUSTER) for k in keys]
    registry = KeyRegistry(tuple(s.public_key for s in signers))
    verifier = Verifier(
        registry, cluster_id=CLUSTER, backend=backend, cache_entries_max=cache_entries_max
    )
    return signers, verifier


# --- Signer / Verifier ---------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", ["nacl", "cryptography"])
def test_sign_and_verify(backend_name: str) -> None:
    backend = get_backend(backend_name)
    key = SigningKey.generate()
    signer = Signer(key, cluster_id=CLUSTER, backend=backend)
    assert signer.backend is backend
    assert signer.public_key == key.public_key()
    assert signer.signatures_made == 0
    sig = signer.sign("a", b"body")
    assert signer.signatures_made == 1
    assert len(sig) == 64
    assert sig == backend.sign(key.seed, domain_tag(CLUSTER, "a") + b"body")
    registry = KeyRegistry((SigningKey.generate().public_key(), signer.public_key))
    for verify_backend in (get_backend("nacl"), get_backend("cryptography")):
        verifier = Verifier(registry, cluster_id=CLUSTER, backend=verify_backend)
        assert verifier.verify(1, "a", b"body", sig) is True
        assert verifier.verify(1, "b", b"body", sig) is False
        assert verifier.verify(1, "a", b"other body", sig) is False
        assert verifier.verify(0, "a", b"body", sig) is False
        other_cluster = Verifier(registry, cluster_id=b"cluster-2", backend=verify_backend)
        assert other_cluster.verify(1, "a", b"body", sig) is False


def test_default_backend_is_nacl() -> None:
    signers, verifier = make_cluster(1)
    assert isinstance(signers[0].backend, NaclBackend)
    assert isinstance(verifier.backend, NaclBackend)


def test_ambiguous_cluster_kind_split_does_not_verify() -> None:
    key = SigningKey.generate()
    sig = Signer(key, cluster_id=b"ab").sign("c", b"body")
    verifier = Verifier(KeyRegistry((key.public_key(),)), cluster_id=b"a")
    assert verifier.verify(0, "bc", b"body", sig) is False


def test_signer_errors() -> None:
    key = SigningKey.generate()
    with pytest.raises(CryptoError):
        Signer(key, cluster_id=b"x" * 65)
    with pytest.raises(CryptoError):
        Signer(key.seed, cluster_id=CLUSTER)  # type: ignore[arg-type]
    signer = Signer(key, cluster_id=CLUSTER)
    with pytest.raises(CryptoError):
        signer.sign("k" * 65, b"body")
    with pytest.raises(CryptoError):
        signer.sign("kind", "body")  # type: ignore[arg-type]
    assert signer.signatures_made == 0
    assert key.seed.hex() not in repr(signer)


@pytest.mark.parametrize("member", [-1, 4, 10**20, "0", 0.0, None, True, (0,)])
def test_verify_unknown_member_is_false(member: Any) -> None:
    signers, verifier = make_cluster(4)
    sig = signers[0].sign("a", b"body")
    assert verifier.verify(member, "a", b"body", sig) is False
    assert verifier.statistics().failures == 1


@pytest.mark.parametrize(
    ("kind", "body", "signature"),
    [
        ("a", b"body", b""),
        ("a", b"body", bytes(64)),
        ("a", b"body", os.urandom(64)),
        ("a", b"body", None),
        ("a", b"body", "x" * 64),
        ("a", None, "VALID"),
        ("a", "body", "VALID"),
        (None, b"body", "VALID"),
        (["a"], b"body", "VALID"),
        ("k" * 65, b"body", "VALID"),
        ("caf\u00e9", b"body", "VALID"),
    ],
)
def test_verify_garbage_is_false(kind: Any, body: Any, signature: Any) -> None:
    signers, verifier = make_cluster(2)
    if signature == "VALID":
        signature = signers[0].sign("a", b"body")
    assert verifier.verify(0, kind, body, signature) is False
    assert verifier.statistics().failures == 1


def test_verify_accepts_bytes_like() -> None:
    signers, verifier = make_cluster(1)
    sig = signers[0].sign("a", b"body")
    assert verifier.verify(0, "a", bytearray(b"body"), bytearray(sig)) is True  # type: ignore[arg-type]
    assert verifier.verify(0, "a", memoryview(b"body"), sig) is True  # type: ignore[arg-type]
    assert verifier.statistics().cache_hits == 1


def test_raising_backend_does_not_make_verify_raise() -> None:
    class Broken(CountingBackend):
        def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
            raise RuntimeError("boom")

    signers, _ = make_cluster(1)
    verifier = Verifier(
        KeyRegistry((signers[0].public_key,)), cluster_id=CLUSTER, backend=Broken(NaclBackend())
    )
    assert verifier.verify(0, "a", b"body", signers[0].sign("a", b"body")) is False


# --- verification cache ----------------------------------------------------------------------


def test_cache_hit_skips_backend() -> None:
    backend = CountingBackend(NaclBackend())
    signers, verifier = make_cluster(4, backend=backend)
    sig = signers[2].sign("vote", b"body")
    assert verifier.verify(2, "vote", b"body", sig) is True
    assert backend.verify_calls == 1
    assert verifier.verify(2, "vote", b"body", sig) is True
    assert backend.verify_calls == 1
    assert verifier.statistics() == VerifierStatistics(
        verifications=1, cache_hits=1, failures=0, cache_entries=1
    )


def test_cache_hit_with_other_body_is_rejected() -> None:
    backend = CountingBackend(NaclBackend())
    signers, verifier = make_cluster(4, backend=backend)
    sig = signers[0].sign("vote", b"body")
    assert verifier.verify(0, "vote", b"body", sig) is True
    assert verifier.verify(0, "vote", b"forged body", sig) is False
    stats = verifier.statistics()
    assert stats.cache_hits == 0
    assert stats.failures == 1
    assert backend.verify_calls == 2  # the mismatch went to the backend, which said no
    # Same signature under another member or kind is not a hit either.
    assert verifier.verify(1, "vote", b"body", sig) is False
    assert verifier.verify(0, "echo", b"body", sig) is False
    assert verifier.statistics().cache_hits == 0
    # The genuine entry is still cached.
    assert verifier.verify(0, "vote", b"body", sig) is True
    assert verifier.statistics().cache_hits == 1


def test_failures_are_not_cached() -> None:
    backend = CountingBackend(NaclBackend())
    signers, verifier = make_cluster(2, backend=backend)
    bad = bytes(64)
    for _ in range(3):
        assert verifier.verify(0, "vote", b"body", bad) is False
    forged = signers[1].sign("vote", b"body")  # member 1's signature claimed for member 0
    for _ in range(3):
        assert verifier.verify(0, "vote", b"body", forged) is False
    assert backend.verify_calls == 6
    assert verifier.statistics() == VerifierStatistics(
        verifications=6, cache_hits=0, failures=6, cache_entries=0
    )


def test_cache_is_a_bounded_lru() -> None:
    backend = CountingBackend(NaclBackend())
    signers, verifier = make_cluster(1, backend=backend, cache_entries_max=4)
    bodies = [f"body {i}".encode() for i in range(10)]
    sigs = [signers[0].sign("vote", body) for body in bodies]
    for i in range(10):
        assert verifier.verify(0, "vote", bodies[i], sigs[i]) is True
        assert verifier.statistics().cache_entries == min(i + 1, 4)
        if i == 6:  # touch entry 3 (the oldest now) so it survives as recently used
            assert verifier.verify(0, "vote", bodies[3], sigs[3]) is True
    assert verifier.statistics().cache_entries == 4
    calls = backend.verify_calls
    for i in (3, 7, 8, 9):  # the four most recently used
        assert verifier.verify(0, "vote", bodies[i], sigs[i]) is True
    assert backend.verify_calls == calls
    assert verifier.verify(0, "vote", bodies[0], sigs[0]) is True  # evicted: real verify
    assert backend.verify_calls == calls + 1
    assert verifier.statistics().cache_entries == 4


def test_cache_can_be_disabled_and_cleared() -> None:
    backend = CountingBackend(NaclBackend())
    signers, verifier = make_cluster(1, backend=backend, cache_entries_max=0)
    sig = signers[0].sign("vote", b"body")
    for _ in range(3):
        assert verifier.verify(0, "vote", b"body", sig) is True
    assert backend.verify_calls == 3
    assert verifier.statistics().cache_entries == 0
    _, verifier = make_cluster(1)
    assert verifier.verify(0, "vote", b"body", sig) is True
    verifier.clear_cache()
    assert verifier.statistics().cache_entries == 0
    with pytest.raises(CryptoError):
        make_cluster(1, cache_entries_max=-1)


def test_statistics_is_a_frozen_snapshot() -> None:
    signers, verifier = make_cluster(1)
    before = verifier.statistics()
    verifier.verify(0, "vote", b"body", signers[0].sign("vote", b"body"))
    assert before == VerifierStatistics(0, 0, 0, 0)
    assert verifier.statistics() == VerifierStatistics(1, 0, 0, 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        before.failures = 3  # type: ignore[misc]


@settings(max_examples=30, deadline=None)
@given(
    kind=st.text(alphabet=st.characters(max_codepoint=127), max_size=64),
    body=st.binary(max_size=512),
    use_openssl=st.booleans(),
)
def test_sign_verify_property(kind: str, body: bytes, use_openssl: bool) -> None:
    key = SigningKey.from_seed(b"\x07" * 32)
    sign_backend = get_backend("cryptography" if use_openssl else "nacl")
    verify_backend = get_backend("nacl" if use_openssl else "cryptography")
    sig = Signer(key, cluster_id=CLUSTER, backend=sign_backend).sign(kind, body)
    verifier = Verifier(
        KeyRegistry((key.public_key(),)), cluster_id=CLUSTER, backend=verify_backend
    )
    assert verifier.verify(0, kind, body, sig)
    assert not verifier.verify(0, kind, body + b"\x00", sig)
