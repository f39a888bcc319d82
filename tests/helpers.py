"""Shared test helpers: deterministic keys and signing for a small cluster."""

from __future__ import annotations

import hashlib

from btob._wire import Message, Signed
from crypto import KeyRegistry, Signer, SigningKey, Verifier

CLUSTER = b"test-cluster"


class Keys:
    """Deterministic keys for ``n`` members, their registry, signers and verifiers."""

    def __init__(self, n: int, cluster_id: bytes = CLUSTER) -> None:
        self.cluster_id = cluster_id
        self.keys = [SigningKey.from_seed(hashlib.sha256(b"key-%d" % i).digest())
                     for i in range(n)]
        self.registry = KeyRegistry(tuple(k.public_key() for k in self.keys))
        self.signers = [Signer(k, cluster_id=cluster_id) for k in self.keys]

    def sign(self, member: int, message: Message) -> Signed:
        """``message`` validly signed by ``member``."""
        return Signed.create(member, message, self.signers[member].sign)

    def verifier(self) -> Verifier:
        """A fresh verifier for this cluster."""
        return Verifier(self.registry, cluster_id=self.cluster_id)
