"""Sequencer-driven total order (fixed sequencer, BB variant), as a pure state machine.

Theory of operation. In view v the sequencer ``v mod n`` assigns batches that were already
reliably broadcast to slots: ORDER(v, s, refs). A member ECHOes the proposal only if it comes
from the view's sequencer, the slot lies in its watermark window, it echoed no other value for
(v, s), and it has itself BRB-delivered every referenced batch (and each one's predecessor from
the same origin, so an honest origin's batches are never ordered around a hole). q ECHOs for one
digest form a *prepared certificate*, after which - and only then: there is no READY
amplification here - the member sends READY. q READYs form a *commit certificate*.

Safety: two quorums share an honest member, who echoes one value per (v, s), so at most one
digest can be prepared, hence committed, per slot in a view. A committed slot was prepared at
q members, at least f+1 of them honest, which is what lets a later view change find it.
Committed slots are handed to the delivery log strictly in slot order. A crashed or silent
sequencer stops progress but cannot make two honest members commit different values.
"""

from __future__ import annotations

import attrs

from btob._effects import Evidence, Outbox, VerifyFn
from btob._quorum import Quorums
from btob._settings import Settings
from btob._window import DoneCounters
from btob._wire import (
    Batch,
    BatchRef,
    Message,
    Order,
    OrderEcho,
    OrderReady,
    Signed,
    SlotProof,
    Vote,
    slot_digest,
)

__all__ = ["CommittedSlot", "FixedSequencerOrder"]


@attrs.frozen
class CommittedSlot:
    """A slot's value with the commit certificate that proves it (q signed READYs)."""

    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    certificate: tuple[Vote, ...]

    @property
    def digest(self) -> bytes:
        """The value digest the certificate signs."""
        return slot_digest(self.slot, self.refs)


@attrs.define
class _Slot:
    values: dict[bytes, tuple[BatchRef, ...]] = attrs.field(factory=dict)
    proposal: Signed | None = None  # the sequencer's first ORDER for this slot in this view
    echoed: bytes | None = None
    echoes: dict[int, Signed] = attrs.field(factory=dict)
    readies: dict[int, Signed] = attrs.field(factory=dict)
    ready_sent: bool = False
    committed_digest: bytes | None = None
    certificate: tuple[Vote, ...] = ()
    mine: dict[str, tuple[int | None, Message]] = attrs.field(factory=dict)
    last_sent: float = 0.0


def _digest_of(signed: Signed) -> bytes:
    message = signed.message
    assert isinstance(message, OrderEcho)
    return message.digest


class FixedSequencerOrder:
    """The ordering core of one member: sequencer duties when the view makes it one."""

    def __init__(
        self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
        verify: VerifyFn, view: int = 0,
    ) -> None:
        self.member = member
        self.quorums = quorums
        self.settings = settings
        self.outbox = outbox
        self.verify = verify
        self.view = view
        self.low = 0
        """Next slot to deliver: every slot below it is delivered."""
        self._slots: dict[int, _Slot] = {}
        self._committed: dict[int, CommittedSlot] = {}
        self._available: dict[tuple[int, int], bytes] = {}
        self._ordered = DoneCounters()
        # sequencer state
        self._queue: dict[int, dict[int, BatchRef]] = {}
        self._next_counter: dict[int, int] = {}
        self._next_slot = 0
        self._rotation = 0

    @property
    def sequencer(self) -> int:
        """The member that sequences the current view."""
        return self.view % self.quorums.n

    # -- inputs ------------------------------------------------------------------------------

    def batch_available(self, ref: BatchRef, now: float) -> None:
        """The BRB layer delivered ``ref``'s batch here: proposals naming it may proceed."""
        key = (ref.origin, ref.counter)
        if self._ordered.is_done(*key) or key in self._available:
            return
        self._available[key] = ref.digest
        if self.sequencer == self.member:
            self._queue.setdefault(ref.origin, {})[ref.counter] = ref
        for slot, state in sorted(self._slots.items()):
            if state.proposal is not None and state.echoed is None:
                self._consider(slot, state, now)
        self.propose(now)

    def on_message(self, signed: Signed, now: float) -> None:
        """Handle a verified ORDER, ordering ECHO or ordering READY."""
        message = signed.message
        if not isinstance(message, (Order, OrderEcho)):
            self.outbox.drop("order-unexpected-kind")
            return
        if message.view != self.view:
            self.outbox.drop("order-other-view")
            return
        state = self._slot(message.slot)
        if state is None:
            return
        if isinstance(message, Order):
            self._on_order(signed, message, state, now)
        elif isinstance(message, OrderReady):
            self._on_vote(state.readies, signed, message)
            self._progress(message.slot, state, now)
        else:
            self._on_vote(state.echoes, signed, message)
            self._progress(message.slot, state, now)

    def on_slot_proof(self, proof: SlotProof) -> bool:
        """Adopt a committed slot sent by a peer if its certificate and batches check out.

        Returns True if the slot is committed here with exactly these refs (adopted now or
        before) and the batches match them: the caller may then keep the batches, which a
        member that committed a slot without having BRB-delivered its batches still needs.
        """
        state = self._slot(proof.slot)
        if state is None:
            return False
        if not self._refs_well_formed(proof.refs) or len(proof.batches) != len(proof.refs):
            self.outbox.drop("proof-malformed")
            return False
        if any(b.digest() != r.digest for b, r in zip(proof.batches, proof.refs, strict=True)):
            self.outbox.drop("proof-batch-mismatch")
            return False
        known = self._committed.get(proof.slot)
        if known is not None:
            return known.refs == proof.refs  # already proven here: no need to verify again
        digest = slot_digest(proof.slot, proof.refs)
        body = OrderReady(proof.view, proof.slot, digest).to_body()
        voters: set[int] = set()
        for vote in proof.certificate:
            if vote.member in voters or not 0 <= vote.member < self.quorums.n:
                self.outbox.drop("proof-bad-certificate")
                return False
            if not self.verify(vote.member, OrderReady.KIND, body, vote.signature):
                self.outbox.drop("proof-bad-certificate")
                return False
            voters.add(vote.member)
        if len(voters) < self.quorums.quorum:
            self.outbox.drop("proof-bad-certificate")
            return False
        state.values[digest] = proof.refs
        state.committed_digest = digest
        state.certificate = proof.certificate
        state.mine.clear()
        self._committed[proof.slot] = CommittedSlot(proof.view, proof.slot, proof.refs,
                                                    proof.certificate)
        return True

    def slot_delivered(self, slot: int, now: float) -> None:
        """The delivery log consumed ``slot``: slide the window and release its state."""
        assert slot == self.low, "slots are delivered strictly in order"
        committed = self._committed[slot]
        for ref in committed.refs:
            self._available.pop((ref.origin, ref.counter), None)
            self._ordered.finish(ref.origin, ref.counter)
            queued = self._queue.get(ref.origin)
            if queued is not None:
                queued.pop(ref.counter, None)
        self._slots.pop(slot, None)
        self.low = slot + 1
        self._next_slot = max(self._next_slot, self.low)
        self.propose(now)

    # -- queries -------------------------------------------------------------------------------

    def committed(self, slot: int) -> CommittedSlot | None:
        """The commit proof of ``slot`` if it committed here (kept for catch-up)."""
        return self._committed.get(slot)

    def is_ordered(self, origin: int, counter: int) -> bool:
        """True if batch (origin, counter) was delivered in a slot."""
        return self._ordered.is_done(origin, counter)

    def slots_held(self) -> int:
        """Open slot states (bounded by the watermark window)."""
        return len(self._slots)

    # -- sequencer ----------------------------------------------------------------------------

    def propose(self, now: float) -> None:
        """As sequencer, assign queued batches to free slots inside the pipeline limit."""
        if self.sequencer != self.member:
            return
        limit = self.low + min(self.settings.slot_window, self.settings.slots_in_flight_max)
        while self._next_slot < limit:
            refs = self._take_refs()
            if not refs:
                return
            order = Order(self.view, self._next_slot, refs)
            self._next_slot += 1
            self.outbox.send(None, order)

    def _take_refs(self) -> tuple[BatchRef, ...]:
        """Up to slot_refs_max queued refs, each origin's in counter order, origins in turn."""
        origins = sorted(o for o, q in self._queue.items() if q)
        if not origins:
            return ()
        start = self._rotation % len(origins)
        self._rotation += 1
        taken: list[BatchRef] = []
        for origin in origins[start:] + origins[:start]:
            queued = self._queue[origin]
            counter = self._next_counter.get(origin, 0)
            while counter in queued and len(taken) < self.settings.slot_refs_max:
                taken.append(queued.pop(counter))
                counter += 1
            self._next_counter[origin] = counter
        return tuple(taken)

    # -- member rules -------------------------------------------------------------------------

    def _slot(self, slot: int) -> _Slot | None:
        if slot < self.low:
            self.outbox.drop("order-slot-delivered")
            return None
        if slot >= self.low + self.settings.slot_window:
            self.outbox.drop("order-beyond-window")
            return None
        state = self._slots.get(slot)
        if state is None:
            state = self._slots[slot] = _Slot()
        return state

    def _refs_well_formed(self, refs: tuple[BatchRef, ...]) -> bool:
        if not refs or len(refs) > self.settings.slot_refs_max:
            return False
        keys = {(r.origin, r.counter) for r in refs}
        return len(keys) == len(refs) and all(r.origin < self.quorums.n for r in refs)

    def _on_order(self, signed: Signed, message: Order, state: _Slot, now: float) -> None:
        if signed.sender != self.sequencer:
            self.outbox.drop("order-not-sequencer")
            return
        if not self._refs_well_formed(message.refs):
            self.outbox.drop("order-malformed")
            return
        digest = message.digest
        if state.proposal is None:
            state.proposal = signed
        elif state.proposal.message != message:
            self.outbox.evidence.append(Evidence(signed.sender, state.proposal, signed))
        if len(state.values) < 2 or digest == state.committed_digest:
            state.values.setdefault(digest, message.refs)
        if signed.sender == self.member and state.proposal is signed:
            state.mine["order"] = (None, message)
            state.last_sent = now
        self._consider(message.slot, state, now)
        self._progress(message.slot, state, now)

    def _consider(self, slot: int, state: _Slot, now: float) -> None:
        """ECHO the slot's proposal once every batch it names is available here."""
        if state.echoed is not None or state.proposal is None:
            return
        order = state.proposal.message
        assert isinstance(order, Order)
        proposed = {(r.origin, r.counter) for r in order.refs}
        for ref in order.refs:
            key = (ref.origin, ref.counter)
            if self._ordered.is_done(*key):
                self.outbox.drop("order-batch-already-ordered")
                state.proposal = None
                return
            held = self._available.get(key)
            if held is None:
                return  # wait: the batch may still arrive through BRB
            if held != ref.digest:
                self.outbox.drop("order-batch-digest-mismatch")
                state.proposal = None
                return
            before = (ref.origin, ref.counter - 1)
            if ref.counter > 0 and not (
                before in self._available or before in proposed or self._ordered.is_done(*before)
            ):
                return  # wait for the predecessor: honest origins' batches stay gap-free
        state.echoed = order.digest
        echo = OrderEcho(self.view, slot, order.digest)
        state.mine["echo"] = (None, echo)
        state.last_sent = now
        self.outbox.send(None, echo)

    def _on_vote(self, votes: dict[int, Signed], signed: Signed, message: OrderEcho) -> None:
        previous = votes.get(signed.sender)
        if previous is None:
            votes[signed.sender] = signed
        elif _digest_of(previous) != message.digest:
            self.outbox.evidence.append(Evidence(signed.sender, previous, signed))

    def _progress(self, slot: int, state: _Slot, now: float) -> None:
        q = self.quorums.quorum
        if not state.ready_sent:
            for digest in {_digest_of(v) for v in state.echoes.values()}:
                if sum(1 for v in state.echoes.values() if _digest_of(v) == digest) >= q:
                    # Prepared certificate held: only now may this member send READY.
                    state.ready_sent = True
                    ready = OrderReady(self.view, slot, digest)
                    state.mine["ready"] = (None, ready)
                    state.last_sent = now
                    self.outbox.send(None, ready)
                    break
        if state.committed_digest is None:
            for digest in {_digest_of(v) for v in state.readies.values()}:
                voters = [v for v in state.readies.values() if _digest_of(v) == digest]
                if len(voters) >= q:
                    state.committed_digest = digest
                    state.certificate = tuple(
                        Vote(v.sender, v.signature) for v in sorted(voters, key=lambda v: v.sender)
                    )[:q]
                    break
        if state.committed_digest is not None and slot not in self._committed:
            refs = state.values.get(state.committed_digest)
            if refs is not None:
                state.mine.clear()
                self._committed[slot] = CommittedSlot(self.view, slot, refs, state.certificate)

    def retransmit(self, now: float) -> None:
        """Resend own messages of slots not yet committed here."""
        interval = self.settings.retransmit_interval_s
        for state in self._slots.values():
            if state.mine and now - state.last_sent >= interval:
                state.last_sent = now
                for dest, item in state.mine.values():
                    self.outbox.send(dest, item)

    def slot_proof(self, slot: int, batches: tuple[Batch, ...]) -> SlotProof:
        """A :class:`SlotProof` for a committed slot whose batches the caller supplies."""
        committed = self._committed[slot]
        return SlotProof(committed.view, slot, committed.refs, committed.certificate, batches)
