"""Checkpoints: a hash chain over the delivered log, signed every K slots, stable at q.

Theory of operation. After delivering slot s a member extends its chain:
``chain(s) = SHA-256(chain(s-1) || slot_digest(s, refs))``, starting from 32 zero bytes. The
chain pins the whole delivered log, since the refs pin every batch by digest and delivery is a
deterministic function of the committed slots. Every K slots a member signs
CHECKPOINT(upto, chain(upto-1)); q matching signatures form a *stable* checkpoint certificate.
Because two quorums share an honest member, at most one digest can become stable per ``upto``,
and an honest member that holds a stable certificate may forget everything below it but the
log itself: commit certificates, votes, prepared certificates.

The certificate also lets a lagging member verify a whole segment of K slots at once: it
recomputes the chain over the segment from its own chain value at the segment's start.

Each CHECKPOINT also signs the Merkle root of the member's snapshot at ``upto`` (protocol state
and application state, :mod:`btob.core.snapshot`), so a stable certificate certifies the state
itself: a member far behind can fetch it in verified chunks instead of the whole log, and a
member whose own state differs from a certified one is told so (:class:`~btob.StateDiverged`).
"""

from __future__ import annotations

import hashlib

from btob._errors import StateDiverged
from btob.core.certificates import valid_votes
from btob.core.effects import Evidence, Outbox, VerifyFn
from btob.core.quorum import Quorums
from btob.core.wire import BatchRef, Checkpoint, CheckpointCert, Signed, Vote, slot_digest

__all__ = ["GENESIS", "CheckpointTracker", "chain_step", "valid_checkpoint_cert"]

GENESIS = bytes(32)
"""The chain value before slot 0."""


def chain_step(previous: bytes, slot: int, refs: tuple[BatchRef, ...]) -> bytes:
    """The chain value after delivering ``slot`` with ``refs``."""
    return hashlib.sha256(previous + slot_digest(slot, refs)).digest()


def valid_checkpoint_cert(cert: CheckpointCert, *, interval: int, quorums: Quorums,
                          verify: VerifyFn) -> bool:
    """True if ``cert`` holds q distinct valid CHECKPOINT signatures at a checkpoint boundary."""
    if cert.upto == 0 or cert.upto % interval:
        return False
    return valid_votes(cert.votes, cert.checkpoint().to_body(),
                        Checkpoint.KIND, quorums, verify)


class CheckpointTracker:
    """The chain of one member, the CHECKPOINT votes it collects and its stable certificate."""

    def __init__(self, *, member: int, quorums: Quorums, interval: int, window: int,
                 retained: int, outbox: Outbox, verify: VerifyFn) -> None:
        self.member = member
        self.quorums = quorums
        self.interval = interval
        self._window = window
        self._retained = retained
        self.outbox = outbox
        self.verify = verify
        self.chain = GENESIS
        """Chain value after the last delivered slot."""
        self.next_slot = 0
        """The slot the chain will absorb next."""
        self.stable: CheckpointCert | None = None
        """The highest stable checkpoint certificate known."""
        self._chain_at: dict[int, bytes] = {0: GENESIS}
        self._state_at: dict[int, bytes] = {}
        self._certs: dict[int, CheckpointCert] = {}
        self._votes: dict[int, dict[int, Signed]] = {}
        self._own: Checkpoint | None = None

    @property
    def stable_upto(self) -> int:
        """Every slot below this is covered by a stable checkpoint (0 before the first)."""
        return 0 if self.stable is None else self.stable.upto

    def chain_at(self, upto: int) -> bytes | None:
        """The chain value before slot ``upto`` if this member kept it (checkpoint boundaries)."""
        return self._chain_at.get(upto)

    def cert_at(self, upto: int) -> CheckpointCert | None:
        """The stable certificate for boundary ``upto`` if it was kept."""
        return self._certs.get(upto)

    def own_checkpoint(self) -> Checkpoint | None:
        """This member's latest CHECKPOINT that is not yet covered by a stable certificate."""
        if self._own is not None and self._own.upto > self.stable_upto:
            return self._own
        return None

    def slot_delivered(self, slot: int, refs: tuple[BatchRef, ...]) -> int | None:
        """Extend the chain; at a boundary return it: the member then takes its snapshot and
        signs it with :meth:`boundary_checkpoint`."""
        assert slot == self.next_slot, "the chain absorbs slots in order"
        self.chain = chain_step(self.chain, slot, refs)
        self.next_slot = slot + 1
        if self.next_slot % self.interval:
            return None
        upto = self.next_slot
        self._chain_at[upto] = self.chain
        self._prune()
        return upto

    def boundary_checkpoint(self, upto: int, state: bytes) -> Checkpoint:
        """The CHECKPOINT of boundary ``upto`` (just reached) whose snapshot root is ``state``.

        Raises :class:`~btob.StateDiverged` if a stable certificate for ``upto`` is already
        known here and certifies another state.
        """
        self._state_at[upto] = state
        self._check_state(upto)
        self._own = Checkpoint(upto, self._chain_at[upto], state)
        return self._own

    def state_at(self, upto: int) -> bytes | None:
        """This member's snapshot root at boundary ``upto``, if it reached and kept it."""
        return self._state_at.get(upto)

    def restore(self, cert: CheckpointCert) -> None:
        """Start from a snapshot this certificate certifies: the chain continues at
        ``cert.upto`` with the certified chain value."""
        self.chain = cert.digest
        self.next_slot = cert.upto
        self._chain_at[cert.upto] = cert.digest
        self._state_at[cert.upto] = cert.state
        self._certs[cert.upto] = cert
        self.stable = cert
        self._prune()

    def _check_state(self, upto: int) -> None:
        cert, mine = self._certs.get(upto), self._state_at.get(upto)
        if cert is not None and mine is not None and cert.state != mine:
            raise StateDiverged(
                f"member {self.member}'s state at slot {upto} differs from the one a quorum "
                f"certified (root {mine.hex()[:16]} against {cert.state.hex()[:16]}): the "
                f"application is not deterministic, or this member's data was altered"
            )

    def on_checkpoint(self, signed: Signed) -> CheckpointCert | None:
        """Count a verified CHECKPOINT; returns a certificate if one just became stable."""
        message = signed.message
        assert isinstance(message, Checkpoint)
        upto = message.upto
        if upto % self.interval or upto <= self.stable_upto:
            self.outbox.drop("checkpoint-stale-or-misaligned")
            return None
        if upto > max(self.stable_upto, self.next_slot) + self._window:
            self.outbox.drop("checkpoint-beyond-window")
            return None
        votes = self._votes.setdefault(upto, {})
        previous = votes.get(signed.sender)
        if previous is not None:
            previous_message = previous.message
            assert isinstance(previous_message, Checkpoint)
            if previous_message != message:
                self.outbox.evidence.append(Evidence(signed.sender, previous, signed))
            return None
        votes[signed.sender] = signed
        matching = [s for s in votes.values() if s.message == message]
        if len(matching) < self.quorums.quorum:
            return None
        cert = CheckpointCert(upto, message.digest, tuple(
            Vote(s.sender, s.signature) for s in sorted(matching, key=lambda s: s.sender)
        )[: self.quorums.quorum], message.state)
        self.adopt(cert)
        return cert

    def adopt(self, cert: CheckpointCert) -> bool:
        """Take a verified stable certificate; True if it is newer than the current one."""
        mine = self._chain_at.get(cert.upto)
        assert mine is None or mine == cert.digest, (
            f"member {self.member}'s log diverges from a stable checkpoint at {cert.upto}"
        )
        self._certs.setdefault(cert.upto, cert)
        self._check_state(cert.upto)
        if cert.upto <= self.stable_upto:
            return False
        self.stable = cert
        for upto in [u for u in self._votes if u <= cert.upto]:
            del self._votes[upto]
        self._prune()
        return True

    def verify_cert(self, cert: CheckpointCert) -> bool:
        """True if ``cert`` is a valid stable certificate for this cluster."""
        return valid_checkpoint_cert(cert, interval=self.interval, quorums=self.quorums,
                                     verify=self.verify)

    def _prune(self) -> None:
        """Keep chain values and certificates for the retained part of the log only."""
        floor = min(self.next_slot, self.stable_upto) - self._retained
        for table in (self._chain_at, self._certs, self._state_at):
            for upto in [u for u in table if u < floor]:
                del table[upto]

    def held(self) -> int:
        """Votes, chain values and certificates held (a memory-bound probe)."""
        votes = sum(len(v) for v in self._votes.values())
        return votes + len(self._chain_at) + len(self._certs) + len(self._state_at)
