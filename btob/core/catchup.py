"""Catch-up: how a member that fell behind gets the slots it missed, without trusting anyone.

Theory of operation. Every member tells its peers where it is (STATUS: its next slot to
deliver and its view) every ``status_interval_s``, together with its latest CHECKPOINT not
yet stable. A member that sees a peer behind helps it, if it is one of the f+1 members after
the laggard in ring order (so at least one correct member helps, and a slow member is not
buried under n-1 copies of the same help), at most once per half status interval per
(peer, position):

* a peer in an older view gets the NEW-VIEW that installed the current one, which it checks
  like any NEW-VIEW;
* a missing slot still covered by its commit certificate travels as a SLOT proof (q signed
  READYs plus the batches, checked against the refs);
* a slot below the stable checkpoint, whose certificate was dropped, travels inside a LOG
  SEGMENT of K slots, checked by recomputing the hash chain from the laggard's own chain value
  at the segment's start against the q-signed checkpoint certificate.

A slot is offered only once it has been committed for ``catchup_grace_s`` (so help does not
race the slot's own votes), and at most ``catchup_slots_max`` per STATUS. Whatever arrives is
verified here before anything is adopted; a member that receives help, or sees a peer ahead,
says where it is again at its next tick rather than a whole status interval later.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from btob.core.checkpoint import CheckpointTracker, chain_step
from btob.core.durable import Snapshot
from btob.core.effects import Outbox
from btob.core.ordering import Ordering
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    CheckpointCert,
    LogSegment,
    Message,
    Signed,
    SlotProof,
    Status,
    Vote,
)

__all__ = ["AdoptedSegment", "CatchUp"]

Entry = tuple[tuple[BatchRef, ...], tuple[Batch, ...]]
"""A delivered slot as served to laggards: its refs and the batches they name."""


@attrs.frozen
class AdoptedSegment:
    """A verified log segment whose slots the ordering core now holds as settled: the member
    must keep their batches, deliver them and adopt the certificate."""

    cert: CheckpointCert
    entries: tuple[Entry, ...]
    """The entries of the slots this member had not delivered yet."""


class CatchUp:
    """One member's side of catch-up: the delivered log it serves (the last
    ``log_retention_slots`` slots), the help it sends, and the checks of the help it gets."""

    def __init__(self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
                 order: Ordering, checkpoints: CheckpointTracker,
                 new_view: Callable[[], Signed | None],
                 seen: Callable[[], tuple[int, ...]] = tuple,
                 snapshot: Callable[[], Snapshot | None] = lambda: None) -> None:
        self.member = member
        self.quorums = quorums
        self.settings = settings
        self.outbox = outbox
        self._order = order
        self._checkpoints = checkpoints
        self._new_view = new_view
        self._seen = seen
        self._snapshot = snapshot
        self._history: dict[int, Entry] = {}
        self._delivered_at: dict[int, float] = {}
        self._certificates: dict[int, tuple[int, tuple[Vote, ...]]] = {}
        self._served_at: dict[int, tuple[float, tuple[int, int]]] = {}
        self._last_status = float("-inf")
        self.slots_from_proofs = 0
        """Slots this member committed on the strength of a peer's SLOT proof."""
        self.slots_from_segments = 0
        """Slots this member adopted from verified log segments."""

    # -- time ---------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Every status interval, tell everyone where this member is (and its unstable
        CHECKPOINT, so a checkpoint missed by some still becomes stable)."""
        if now - self._last_status < self.settings.status_interval_s:
            return
        self._last_status = now
        self.outbox.send(None, Status(self._order.low, self._order.view, self._seen()))
        checkpoint = self._checkpoints.own_checkpoint()
        if checkpoint is not None:
            self.outbox.send(None, checkpoint)

    def ask_soon(self) -> None:
        """Say where this member is at the next tick (it got help, or is behind)."""
        self._last_status = float("-inf")

    # -- the delivered log --------------------------------------------------------------------

    def slot_delivered(self, slot: int, refs: tuple[BatchRef, ...], fresh: list[BatchRef],
                       batches: list[Batch], now: float, *, view: int = 0,
                       certificate: tuple[Vote, ...] = ()) -> None:
        """Keep delivered ``slot`` to serve it: ``fresh`` are the refs delivered now with their
        ``batches`` (a ref repeating an earlier slot's batch keeps that first copy), and its
        commit certificate (signed in ``view``), which outlives the ordering core's copy: a
        client's receipt is rebuilt from it after a checkpoint."""
        self._history[slot] = (refs, tuple(self._batch_of(ref, fresh, batches) for ref in refs))
        self._delivered_at[slot] = now
        if certificate:
            self._certificates[slot] = (view, certificate)
        floor = slot + 1 - self.settings.log_retention_slots  # low once it is delivered
        while self._history:
            oldest = next(iter(self._history))
            if oldest >= floor:
                break
            del self._history[oldest]
            self._delivered_at.pop(oldest, None)
            self._certificates.pop(oldest, None)

    def delivered(self, slot: int) -> tuple[tuple[BatchRef, ...], tuple[Batch, ...]] | None:
        """The refs and batches of delivered ``slot`` while it is retained, else None."""
        return self._history.get(slot)

    def certificate(self, slot: int) -> tuple[int, tuple[Vote, ...]] | None:
        """``(view, commit certificate)`` of delivered ``slot`` while it is retained (None for
        a slot adopted from a log segment, which came without one)."""
        return self._certificates.get(slot)

    def _batch_of(self, ref: BatchRef, fresh: list[BatchRef], batches: list[Batch]) -> Batch:
        if ref in fresh:
            return batches[fresh.index(ref)]
        for _, earlier in reversed(self._history.values()):
            for batch in earlier:
                if batch.digest() == ref.digest:
                    return batch
        return Batch(0, ())  # only after the first copy left retention; never served then

    # -- helping a laggard --------------------------------------------------------------------

    def on_status(self, peer: int, status: Status, now: float) -> None:
        """Help a lagging peer: the NEW-VIEW of a view it missed, then commit proofs of the
        slots it misses or, below the checkpoints, verified log segments (rate limited)."""
        order = self._order
        low = order.low
        if status.next_slot > low and now - self._last_status >= self.settings.catchup_grace_s:
            # A peer is ahead: say where we are at the next tick rather than a status
            # interval later, so help comes now (a lie costs one extra STATUS at most).
            self._last_status = float("-inf")
        new_view = self._new_view()
        behind_view = status.view < order.view and new_view is not None
        if status.next_slot >= low and not behind_view:
            return
        if (self.member - peer) % self.quorums.n > self.quorums.one_honest:
            return  # only the f+1 members after the laggard in ring order answer
        key = (status.next_slot, status.view)
        last = self._served_at.get(peer)
        # Half the status interval: a laggard's periodic STATUS must never fall inside the
        # window its previous one opened (it did, by a hair, and help came a period late).
        if last is not None and last[1] == key and \
                now - last[0] < self.settings.status_interval_s / 2:
            return
        help_: list[Message | Signed] = []
        if behind_view and new_view is not None:
            help_.append(new_view)
        budget = self.settings.catchup_slots_max
        slot = status.next_slot
        interval = self.settings.checkpoint_interval
        while slot < low and budget > 0:
            delivered_at = self._delivered_at.get(slot)
            if delivered_at is None:
                snapshot = self._snapshot()
                if slot not in self._history and snapshot is not None and \
                        snapshot.upto > slot:
                    # The log there is gone: offer the state instead (an empty segment at
                    # the stable certificate's boundary; the laggard fetches it in chunks).
                    help_.append(LogSegment(snapshot.cert, snapshot.upto, ()))
                break
            if now - delivered_at < self.settings.catchup_grace_s:
                break
            proof = order.slot_proof(slot, self._history[slot][1])
            if proof is not None:
                help_.append(proof)
                slot += 1
                budget -= 1
                continue
            start = slot - slot % interval
            segment = self._segment(start)
            if segment is None:
                break
            help_.append(segment)
            slot = segment.cert.upto
            budget -= len(segment.entries)
        if not help_:
            return  # nothing to give yet (say, still within the grace): a repeat may ask again
        self._served_at[peer] = (now, key)
        for item in help_:
            self.outbox.send(peer, item)

    def _segment(self, start: int) -> LogSegment | None:
        """The slots from boundary ``start`` to the next boundary with a stable certificate
        held here, with their batches, if all are held (a boundary whose checkpoint never
        became stable here - a later one did first - is skipped, not a dead end)."""
        interval = self.settings.checkpoint_interval
        for upto in range(start + interval, start + self._segment_slots_max() + 1, interval):
            if upto - 1 not in self._history:
                return None
            cert = self._checkpoints.cert_at(upto)
            if cert is not None:
                if any(s not in self._history for s in range(start, upto)):
                    return None
                return LogSegment(cert, start,
                                  tuple(self._history[s] for s in range(start, upto)))
        return None

    def _segment_slots_max(self) -> int:
        """The longest segment served or taken: whole checkpoint intervals, at least one."""
        interval = self.settings.checkpoint_interval
        return max(interval, self.settings.catchup_slots_max // interval * interval)

    # -- getting help -------------------------------------------------------------------------

    def on_slot_proof(self, proof: SlotProof) -> bool:
        """A peer's SLOT proof; True if the slot is committed here with exactly these refs and
        the batches match them (the member may then keep the batches)."""
        known = self._order.committed(proof.slot) is not None
        if not self._order.on_slot_proof(proof):
            return False
        if not known:
            self.slots_from_proofs += 1
            # Catching up: ask for the next slots at the next tick, not a status interval
            # later (only a valid commit certificate gets here).
            self.ask_soon()
        return True

    def on_segment(self, segment: LogSegment) -> AdoptedSegment | None:
        """Verify a log segment against its certificate by recomputing the hash chain from
        this member's own chain value at its start; adopt its slots in the ordering core."""
        interval = self.settings.checkpoint_interval
        cert, start = segment.cert, segment.start
        low = self._order.low
        length = cert.upto - start
        if start % interval or length <= 0 or length % interval or \
                length > self._segment_slots_max() or len(segment.entries) != length:
            self.outbox.drop("segment-malformed")
            return None
        chain = self._checkpoints.chain_at(start)
        if low >= cert.upto or low < start or chain is None:
            self.outbox.drop("segment-not-needed")
            return None
        for offset, (refs, batches) in enumerate(segment.entries):
            if len(refs) != len(batches) or len(refs) > self.settings.slot_refs_max or any(
                b.digest() != r.digest for b, r in zip(batches, refs, strict=True)
            ):
                self.outbox.drop("segment-malformed")
                return None
            chain = chain_step(chain, start + offset, refs)
        if chain != cert.digest or not self._checkpoints.verify_cert(cert):
            self.outbox.drop("segment-bad-certificate")
            return None
        adopted = []
        for offset, (refs, batches) in enumerate(segment.entries):
            slot = start + offset
            if slot < low:
                continue
            self._order.adopt_settled(slot, refs)
            self.slots_from_segments += 1
            adopted.append((refs, batches))
        return AdoptedSegment(cert, tuple(adopted))

    # -- queries ------------------------------------------------------------------------------

    def held(self) -> int:
        """Delivered slots kept to serve laggards (bounded by ``log_retention_slots``)."""
        return len(self._history)
