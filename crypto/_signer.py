"""`Signer` and `Verifier`: domain-separated signing and cached verification."""

from __future__ import annotations

from collections import OrderedDict

import attrs

from btob.crypto._backends import SIGNATURE_BYTES, Backend, get_backend
from btob.crypto._domain import check_cluster_id, domain_tag
from btob.crypto._errors import CryptoError
from btob.crypto._keys import SigningKey
from btob.crypto._registry import KeyRegistry

# Domain tags are cached per kind; kinds are a small fixed set in practice, but a Verifier may
# be handed kinds from the wire, so the per-instance tag cache stops growing at this size.
_TAG_CACHE_ENTRIES_MAX = 256


class Signer:
    """Signs ``domain_tag(cluster_id, kind) + body`` with one member's key.

    ``cluster_id`` must be bytes of at most 64 bytes (`CryptoError` otherwise); ``backend``
    defaults to the shared `NaclBackend`. Attributes: ``public_key`` (32 bytes),
    ``signatures_made`` (incremented by every `sign`), ``backend``, ``cluster_id``.
    """

    def __init__(
        self, key: SigningKey, *, cluster_id: bytes, backend: Backend | None = None
    ) -> None:
        if not isinstance(key, SigningKey):
            raise CryptoError(f"key must be a SigningKey, not {type(key).__name__}")
        self._seed = key.seed
        self.cluster_id: bytes = check_cluster_id(cluster_id)
        self.backend: Backend = backend if backend is not None else get_backend("nacl")
        self.public_key: bytes = self.backend.public_key(self._seed)
        self.signatures_made: int = 0
        self._tags: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return (
            f"Signer(public_key={self.public_key.hex()[:16]}..., "
            f"cluster_id={self.cluster_id!r}, backend={self.backend.name!r})"
        )

    def _tag(self, kind: str) -> bytes:
        tag = self._tags.get(kind)
        if tag is None:
            tag = domain_tag(self.cluster_id, kind)
            if len(self._tags) < _TAG_CACHE_ENTRIES_MAX:
                self._tags[kind] = tag
        return tag

    def sign(self, kind: str, body: bytes) -> bytes:
        """The 64-byte signature of ``domain_tag(cluster_id, kind) + body``.

        `CryptoError` if ``kind`` is not an ascii str of at most 64 characters.
        """
        if not isinstance(body, bytes | bytearray | memoryview):
            raise CryptoError(f"body must be bytes, not {type(body).__name__}")
        signature = self.backend.sign(self._seed, self._tag(kind) + body)
        self.signatures_made += 1
        return signature


@attrs.frozen
class VerifierStatistics:
    """A snapshot of a `Verifier`'s counters.

    ``verifications``: calls that reached the backend; ``cache_hits``: calls answered True from
    the cache; ``failures``: calls that returned False; ``cache_entries``: current cache size.
    """

    verifications: int
    cache_hits: int
    failures: int
    cache_entries: int


class Verifier:
    """Verifies members' domain-separated signatures, with a bounded LRU cache of successes.

    ``verify`` never raises. Only successful verifications are cached, keyed by
    ``(member, kind, signature)`` with the body stored alongside: a hit requires the presented
    body to equal the stored one, so a valid signature presented with another body is never
    accepted from the cache. ``cache_entries_max=0`` disables the cache. The cache holds a
    reference to each verified body, so its memory is bounded by ``cache_entries_max`` times the
    largest body verified.
    """

    def __init__(
        self,
        registry: KeyRegistry,
        *,
        cluster_id: bytes,
        backend: Backend | None = None,
        cache_entries_max: int = 65536,
    ) -> None:
        if not isinstance(registry, KeyRegistry):
            raise CryptoError(f"registry must be a KeyRegistry, not {type(registry).__name__}")
        if (
            isinstance(cache_entries_max, bool)
            or not isinstance(cache_entries_max, int)
            or cache_entries_max < 0
        ):
            raise CryptoError(f"cache_entries_max must be an int >= 0, got {cache_entries_max!r}")
        self.registry: KeyRegistry = registry
        self.cluster_id: bytes = check_cluster_id(cluster_id)
        self.backend: Backend = backend if backend is not None else get_backend("nacl")
        self.cache_entries_max: int = cache_entries_max
        self.verifications: int = 0
        self.cache_hits: int = 0
        self.failures: int = 0
        self._keys = registry.public_keys
        self._tags: dict[str, bytes] = {}
        self._cache: OrderedDict[tuple[int, str, bytes], bytes] = OrderedDict()

    def __repr__(self) -> str:
        return (
            f"Verifier(n={self.registry.n}, cluster_id={self.cluster_id!r}, "
            f"backend={self.backend.name!r}, cache_entries={len(self._cache)})"
        )

    def _tag(self, kind: str) -> bytes | None:
        tag = self._tags.get(kind) if isinstance(kind, str) else None
        if tag is None:
            try:
                tag = domain_tag(self.cluster_id, kind)
            except CryptoError:
                return None
            if len(self._tags) < _TAG_CACHE_ENTRIES_MAX:
                self._tags[kind] = tag
        return tag

    def verify(self, member: int, kind: str, body: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is ``member``'s signature of ``body`` as a ``kind`` message.

        Returns False (never raises) for an unknown member id (negative, out of range, not an
        int), an invalid kind, a non-bytes body, or a bad signature.
        """
        if type(signature) is not bytes:
            if not isinstance(signature, bytearray | memoryview):
                self.failures += 1
                return False
            signature = bytes(signature)
        if (
            type(member) is not int
            or not 0 <= member < len(self._keys)
            or len(signature) != SIGNATURE_BYTES
        ):
            self.failures += 1
            return False
        if not isinstance(body, bytes):
            if not isinstance(body, bytearray | memoryview):
                self.failures += 1
                return False
            body = bytes(body)
        cache_key = (member, kind, signature)
        cached_body = self._cache.get(cache_key) if isinstance(kind, str) else None
        if cached_body is not None and cached_body == body:
            self._cache.move_to_end(cache_key)
            self.cache_hits += 1
            return True
        if not self._check(self._keys[member], kind, body, signature):
            return False
        if self.cache_entries_max > 0:
            self._cache[cache_key] = body
            self._cache.move_to_end(cache_key)
            while len(self._cache) > self.cache_entries_max:
                self._cache.popitem(last=False)
        return True

    def verify_key(self, public_key: bytes, kind: str, body: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is the signature of ``body`` as a ``kind`` message by the
        holder of ``public_key`` (any 32-byte Ed25519 key, registered or not: a client's).

        Never raises; never cached (a client key is not a member whose slot a cache keys on).
        """
        if (type(public_key) is not bytes or len(public_key) != 32
                or type(signature) is not bytes or len(signature) != SIGNATURE_BYTES
                or type(body) is not bytes):
            self.failures += 1
            return False
        return self._check(public_key, kind, body, signature)

    def _check(self, public_key: bytes, kind: str, body: bytes, signature: bytes) -> bool:
        """The backend's verdict on ``signature`` under ``kind``'s tag, counted."""
        tag = self._tag(kind)
        if tag is None:
            self.failures += 1
            return False
        self.verifications += 1
        try:
            ok = self.backend.verify(public_key, tag + body, signature) is True
        except Exception:  # the Backend contract says verify never raises; enforce it here
            ok = False
        if not ok:
            self.failures += 1
        return ok

    def statistics(self) -> VerifierStatistics:
        """A frozen snapshot of the counters and the current cache size."""
        return VerifierStatistics(
            verifications=self.verifications,
            cache_hits=self.cache_hits,
            failures=self.failures,
            cache_entries=len(self._cache),
        )

    def clear_cache(self) -> None:
        """Forget every cached verification (counters are kept)."""
        self._cache.clear()
