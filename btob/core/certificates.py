"""Checking a certificate: q signatures on one body by distinct members."""

from __future__ import annotations

from collections.abc import Iterable

from btob.core.effects import VerifyFn
from btob.core.quorum import Quorums
from btob.core.wire import Vote

__all__ = ["valid_votes"]


def valid_votes(votes: Iterable[Vote], body: bytes, kind: str, quorums: Quorums,
                verify: VerifyFn) -> bool:
    """True if ``votes`` are at least q valid signatures of ``kind``/``body`` by distinct
    members of the cluster (one bad or repeated vote spoils the certificate)."""
    voters: set[int] = set()
    for vote in votes:
        if vote.member in voters or not 0 <= vote.member < quorums.n:
            return False
        if not verify(vote.member, kind, body, vote.signature):
            return False
        voters.add(vote.member)
    return len(voters) >= quorums.quorum
