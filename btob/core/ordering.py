"""Sequencer-driven total order, as a pure state machine: the rules every member follows.

Theory of operation. In view v a proposer assigns batches it holds to slots: ORDER(v, s,
refs). Who proposes which slot is the variant's policy (:mod:`btob.core.proposers`: the
view's leader ``v mod n`` for BB, UB and UUB, a rotation for the moving sequencer); the rules
below are the same for all. A member ECHOes the proposal only if it comes from the slot's
proposer, the slot lies in its watermark window, it echoed no other value for (v, s), and it
holds every referenced batch itself (and each one's predecessor from the same origin, so an
honest origin's batches are never ordered around a hole). q ECHOs for one digest, with the
value itself, form a *prepared certificate*, after which - and only then: there is no READY
amplification here - the member sends READY. q READYs form a *commit certificate*.

*Linear votes* (``Settings.votes == "linear"``): ECHOs and READYs go to the slot's
proposer, its *collector*, instead of to every member; the collector forwards the q-vote
prepared certificate (ORDER-PREPARED) and commit certificate (ORDER-COMMITTED), and a member
counts a forwarded certificate's votes exactly as if each had reached it, after checking
every signature (:meth:`Ordering._adopt_votes`). Safety is untouched: the same votes, signed
by the same members, make the same certificates. For liveness a member whose slot has not
committed a retransmit interval after it voted sends its votes to everyone, and does so for
the rest of the view; a collector that stays silent is the sequencer, and the view change
replaces it.

*Held*, not delivered. Under reliable broadcast (BB, moving sequencer) a member holds a batch
as soon as it has echoed its origin's signed SEND in the broadcast (or fetched it, below); it
need not wait for the broadcast to deliver it. So a member's batch is committed four message
delays after its SEND leaves: SEND, ORDER (the sequencer proposes what it holds), ordering
ECHO, READY - where waiting for delivery first costs two or three more (Bracha's ECHO and
READY; Reiter's ECHO and FINAL).

Safety. (1) One value per slot: two quorums share an honest member, who echoes one value per
(v, s), so at most one digest can be prepared, hence committed, per slot in a view; a slot's
value names each batch by digest, so every member delivers the same batches for it. A batch
named by two slots (an equivocating origin's two values, or a repeat) is delivered in the
first of them and skipped in the later one, at every member alike, since delivery goes in
slot order. Total order therefore never depends on the reliable broadcast's consistency.
(2) A committed value can be retrieved: its q ECHOs include at least q - f >= f+1 correct
members, and a correct member echoes only values it holds, so f+1 correct members hold every
batch of every prepared value. A member that lacks one (the origin sent its SEND to a few
members only, or sent another value to it) asks everyone for it by digest
(``Outbox.wanted``: at once for another value, after a retransmit interval for a missing
one) and checks what comes back against the digest and the origin's signature; a member that
delivered the slot already serves it by a catch-up proof. (3) A committed slot was prepared
by every honest member among its q READY senders, which is what lets the view change
(:mod:`btob.core.viewchange`) find it and re-propose it; a re-proposal's batches are fetched
the same way. Re-proposals from a verified NEW-VIEW are echoed like proposals, except that a
batch already ordered in an earlier slot does not block them (delivery skips it). Committed
slots are handed to the delivery log strictly in slot order. A crashed or silent sequencer
stops progress until the view change replaces it; it can never make two honest members
commit different values. Only a *delivered* batch counts as work the sequencer owes
(:meth:`Ordering.oldest_pending`): every correct member, the sequencer too, gets it, whereas
a Byzantine origin could hand a batch to a few members to make them suspect a correct
sequencer.
"""

from __future__ import annotations

import attrs

from btob.core.certificates import valid_votes
from btob.core.effects import Evidence, Outbox, VerifyFn
from btob.core.proposers import FixedProposer, Proposer
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.window import DoneCounters
from btob.core.wire import (
    Batch,
    BatchRef,
    Message,
    Order,
    OrderCommitted,
    OrderEcho,
    OrderPrepared,
    OrderReady,
    PreparedCert,
    Reproposal,
    Signed,
    SlotProof,
    Vote,
    slot_digest,
)

__all__ = ["CommittedSlot", "Ordering"]


@attrs.frozen
class CommittedSlot:
    """A slot's value with the commit certificate that proves it (q signed READYs).

    ``certificate`` is empty for slots adopted from a checkpointed log segment: the stable
    checkpoint certificate covers them instead.
    """

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
    proposal: Order | None = None  # what this view proposes for the slot
    proposal_signed: Signed | None = None  # the sequencer's ORDER, kept as evidence material
    reproposed: bool = False
    proposed_at: float = 0.0
    echoed: bytes | None = None
    echoes: dict[int, Signed] = attrs.field(factory=dict)
    readies: dict[int, Signed] = attrs.field(factory=dict)
    ready_sent: bool = False
    committed_digest: bytes | None = None
    certificate: tuple[Vote, ...] = ()
    certificate_view: int = 0  # a commit certificate stays valid in later views
    mine: dict[str, tuple[int | None, Message]] = attrs.field(factory=dict)
    last_sent: float = 0.0
    fallback: bool = False  # linear votes: this slot's votes go to everyone now

    def reset_for_view(self) -> None:
        """Forget the previous view's proposal, votes and values; a committed value stays
        (digests are view-free, and its certificate stays valid in later views).

        A slot holds at most two values per view (against a proposer that floods it), so an
        earlier view's values must go: after a sequencer equivocated they filled both places,
        and the next view's proposal found no room, prepared nowhere, and the slot never
        committed again. A value worth keeping comes back: the NEW-VIEW re-proposes it.
        """
        self.values = {d: refs for d, refs in self.values.items() if d == self.committed_digest}
        self.proposal = None
        self.proposal_signed = None
        self.reproposed = False
        self.echoed = None
        self.echoes.clear()
        self.readies.clear()
        self.ready_sent = False
        self.mine.clear()
        self.fallback = False


def _digest_of(signed: Signed) -> bytes:
    message = signed.message
    assert isinstance(message, OrderEcho)
    return message.digest


def _quorum_digest(votes: dict[int, Signed], quorum: int) -> bytes | None:
    counts: dict[bytes, int] = {}
    for vote in votes.values():
        digest = _digest_of(vote)
        counts[digest] = counts.get(digest, 0) + 1
        if counts[digest] >= quorum:
            return digest
    return None


class Ordering:
    """The ordering core of one member; its :class:`~btob.core.proposers.Proposer` policy
    makes the proposals when the view gives this member a turn."""

    def __init__(
        self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
        verify: VerifyFn, view: int = 0, proposer: type[Proposer] = FixedProposer,
    ) -> None:
        self.member = member
        self.quorums = quorums
        self.settings = settings
        self.outbox = outbox
        self.verify = verify
        self.view = view
        self.active = True
        """False between sending a VIEW-CHANGE and installing the next view."""
        self.view_started_at = 0.0
        self.low = 0
        """Next slot to deliver: every slot below it is delivered."""
        self._slots: dict[int, _Slot] = {}
        self._committed: dict[int, CommittedSlot] = {}
        self._prepared: dict[int, PreparedCert] = {}
        self._available: dict[tuple[int, int], bytes] = {}
        self._available_since: dict[tuple[int, int], float] = {}
        self._ordered = DoneCounters()
        self._all_to_all_view = -1
        """Linear votes: the view in which a slot of this member's fell back to all-to-all;
        its later slots send their votes to everyone from the start (a collector that failed
        once would otherwise cost a retransmit interval per slot)."""
        self.sign_floor: float = 0.0
        """The lowest slot this member may sign an ORDER, ECHO or READY for: 0, except after a
        start with nothing on disk, when it may have signed other values for the slots below
        before it lost the disk (:meth:`btob.core.recovery.Recovery.learn_counters`)."""
        self.proposer = proposer(self)
        """Who proposes, and how (the variant)."""

    @property
    def leader(self) -> int:
        """The leader of the current view (its sequencer; the collector of its view change)."""
        return self.proposer.leader

    # -- inputs ------------------------------------------------------------------------------

    def batch_available(self, ref: BatchRef, now: float) -> None:
        """The dissemination delivered ``ref``'s batch here: it is held, and it is work the
        sequencer owes (every correct member gets it, the sequencer too), so from now on its
        wait counts towards suspecting the sequencer."""
        key = (ref.origin, ref.counter)
        if self._ordered.is_done(*key):
            return
        self._available_since.setdefault(key, now)
        self.batch_held(ref, now)

    def batch_held(self, ref: BatchRef, now: float) -> None:
        """This member holds ``ref``'s batch (it echoed the value in the reliable broadcast,
        or fetched it): proposals naming it may proceed, and a sequencer may propose it. A
        batch only held is no work the sequencer owes: a Byzantine origin may have sent it
        to a few members only."""
        key = (ref.origin, ref.counter)
        if self._ordered.is_done(*key) or self._available.get(key) == ref.digest:
            return
        self._available[key] = ref.digest  # a later value replaces an equivocated one
        if self.proposer.queues():
            self.proposer.queue.setdefault(ref.origin, {})[ref.counter] = ref
        for slot, state in sorted(self._slots.items()):
            if state.proposal is not None and state.echoed is None:
                self._consider(slot, state, now)
        self.proposer.propose(now)

    def reconsider(self, now: float) -> None:
        """The sign floor went down: echo, READY and propose where it held this member back."""
        for slot, state in sorted(self._slots.items()):
            self._consider(slot, state, now)
            self._progress(slot, state, now)
        self.proposer.propose(now)

    def on_message(self, signed: Signed, now: float) -> None:
        """Handle a verified ORDER, ordering ECHO or READY, or a collector's certificate."""
        message = signed.message
        if not isinstance(message, (Order, OrderEcho, OrderPrepared, OrderCommitted)):
            self.outbox.drop("order-unexpected-kind")
            return
        if message.view != self.view or not self.active:
            self.outbox.drop("order-other-view")
            return
        state = self._slot(message.slot)
        if state is None:
            return
        if isinstance(message, Order):
            self._on_order(signed, message, state, now)
        elif isinstance(message, OrderPrepared):
            self._on_prepared(message, state, now)
        elif isinstance(message, OrderCommitted):
            self._on_committed(message, state, now)
        elif isinstance(message, OrderReady):
            self._on_vote(state.readies, signed, message, state)
            self._progress(message.slot, state, now)
        else:
            self._on_vote(state.echoes, signed, message, state)
            self._progress(message.slot, state, now)

    def on_request(self, signed: Signed) -> None:
        """A verified slot REQUEST (UUB): the proposer policy grants it or drops it."""
        self.proposer.on_request(signed)

    def needless(self, signed: Signed) -> bool:
        """True if ``signed`` (not yet verified) cannot change anything here, so its
        signature need not be checked: a vote for a slot already delivered, an ECHO for the
        value this member already holds a prepared certificate for, or a READY for the value
        already committed; a collector's certificate for a step this member took already.
        A vote contradicting the sender's earlier one is still checked."""
        message = signed.message
        if not isinstance(message, (OrderEcho, OrderPrepared, OrderCommitted)) or \
                message.view != self.view or not self.active:
            return False
        if message.slot < self.low:
            return True
        state = self._slots.get(message.slot)
        if state is None:
            return False
        if isinstance(message, OrderPrepared):
            return state.ready_sent
        if isinstance(message, OrderCommitted):
            return message.slot in self._committed
        if isinstance(message, OrderReady):
            if state.committed_digest != message.digest:
                return False
            votes = state.readies
        else:
            if not state.ready_sent or _quorum_digest(state.echoes,
                                                      self.quorums.quorum) != message.digest:
                return False
            votes = state.echoes
        previous = votes.get(signed.sender)
        return previous is None or _digest_of(previous) == message.digest

    def on_slot_proof(self, proof: SlotProof) -> bool:
        """Adopt a committed slot sent by a peer if its certificate and batches check out.

        Returns True if the slot is committed here with exactly these refs (adopted now or
        before) and the batches match them: the caller may then keep the batches, which a
        member that committed a slot without holding its batches still needs.
        """
        state = self._slot(proof.slot)
        if state is None:
            return False
        if not self._refs_well_formed(proof.refs, null_ok=True) or \
                len(proof.batches) != len(proof.refs):
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
        if not valid_votes(proof.certificate, body, OrderReady.KIND, self.quorums, self.verify):
            self.outbox.drop("proof-bad-certificate")
            return False
        state.values[digest] = proof.refs
        state.committed_digest = digest
        state.certificate = proof.certificate
        state.certificate_view = proof.view
        state.mine.clear()
        self._committed[proof.slot] = CommittedSlot(proof.view, proof.slot, proof.refs,
                                                    proof.certificate)
        self.proposer.committed(proof.refs)
        return True

    def adopt_settled(self, slot: int, refs: tuple[BatchRef, ...], *, view: int | None = None,
                      certificate: tuple[Vote, ...] = ()) -> None:
        """Record ``slot`` as committed on the word of a verified checkpoint segment (or of
        this member's own durable state, with the certificate it kept)."""
        if slot >= self.low and slot not in self._committed:
            self._committed[slot] = CommittedSlot(self.view if view is None else view, slot,
                                                  refs, certificate)

    # -- restart -------------------------------------------------------------------------------

    def ordered_windows(self) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
        """Which batches are ordered, per origin (for a snapshot)."""
        return self._ordered.export()

    def jump_to(self, upto: int, windows: tuple[tuple[int, int, tuple[int, ...]], ...]) -> None:
        """Continue from a snapshot at ``upto`` (above ``low``; after a restart, or fetched by
        state transfer): every slot below it is settled, and ``windows`` says which batches
        are ordered."""
        assert upto > self.low
        for table in (self._slots, self._committed, self._prepared):
            for slot in [s for s in table if s < upto]:
                del table[slot]
        self.low = upto
        self._ordered = DoneCounters.restored(windows)
        for key in [k for k in self._available if self._ordered.is_done(*k)]:
            del self._available[key]
            self._available_since.pop(key, None)
        for origin, queued in self.proposer.queue.items():
            for counter in [c for c in queued if self._ordered.is_done(origin, c)]:
                del queued[counter]
        self.proposer.next_slot = max(self.proposer.next_slot, upto)

    def restore_prepared(self, cert: PreparedCert) -> None:
        """Hold again a prepared certificate this member made before a restart."""
        held = self._prepared.get(cert.slot)
        if cert.slot >= self.low and (held is None or held.view < cert.view):
            self._prepared[cert.slot] = cert

    def restore_own(self, signed: Signed, now: float) -> None:
        """Take back an ORDER or vote this member signed in the current view before a
        restart: the slot holds it as its own again (and retransmits it), then it counts."""
        message = signed.message
        assert isinstance(message, (Order, OrderEcho)) and signed.sender == self.member
        if message.view != self.view:
            return
        state = self._slot(message.slot, count_drops=False)
        if state is None:
            return
        if isinstance(message, Order):
            self.proposer.resume_after(message.slot, message.refs)
        elif isinstance(message, OrderReady):
            state.ready_sent = True
            state.mine["ready"] = (None, message)
        else:
            state.echoed = message.digest
            state.mine["echo"] = (None, message)
        state.last_sent = now
        self.on_message(signed, now)

    def slot_delivered(self, slot: int, now: float) -> None:
        """The delivery log consumed ``slot``: slide the window and release its state."""
        assert slot == self.low, "slots are delivered strictly in order"
        committed = self._committed[slot]
        for ref in committed.refs:
            key = (ref.origin, ref.counter)
            self._available.pop(key, None)
            self._available_since.pop(key, None)
            self._ordered.finish(ref.origin, ref.counter)
        self._slots.pop(slot, None)
        self.low = slot + 1
        self.proposer.slot_delivered(committed.refs)
        self.proposer.propose(now)

    def forget_below(self, upto: int) -> None:
        """A stable checkpoint covers every slot below ``upto``: drop the proofs of those
        already delivered (undelivered ones are still needed to deliver them)."""
        floor = min(upto, self.low)
        for table in (self._committed, self._prepared):
            for slot in [s for s in table if s < floor]:
                del table[slot]

    # -- view change hooks ---------------------------------------------------------------------

    def suspend(self) -> None:
        """Stop taking part in the current view (a VIEW-CHANGE was sent)."""
        self.active = False

    def prepared_certificates(self, floor: int) -> tuple[PreparedCert, ...]:
        """Prepared certificates for slots at or above ``floor``, highest view per slot."""
        return tuple(self._prepared[s] for s in sorted(self._prepared) if s >= floor)

    def install_view(self, view: int, reproposals: tuple[Reproposal, ...], first_free: int,
                     now: float, excluded: tuple[int, ...] = ()) -> None:
        """Enter ``view`` with the re-proposals of its verified NEW-VIEW (and, for a moving
        sequencer, the members it takes out of the rotation)."""
        assert view > self.view, "a view is installed once"
        self.view = view
        self.proposer.enter_view(excluded)
        self.active = True
        self.view_started_at = now
        for state in self._slots.values():
            # Votes are per view: a committed slot keeps its value and certificate, but a
            # vote of the old view must never count towards a certificate of the new one.
            state.reset_for_view()
        reproposed: set[tuple[int, int]] = set()
        for item in reproposals:
            reproposed.update((r.origin, r.counter) for r in item.refs)
            target = self._slot(item.slot, count_drops=False)
            if target is None or item.slot in self._committed:
                continue
            order = Order(view, item.slot, item.refs)
            target.values.setdefault(order.digest, item.refs)
            target.proposal = order
            target.reproposed = True
            target.proposed_at = now
            self._consider(item.slot, target, now)
        self.proposer.view_installed(reproposed, first_free, now)

    # -- queries -------------------------------------------------------------------------------

    def committed(self, slot: int) -> CommittedSlot | None:
        """The commit proof of ``slot`` if it committed here and was not yet checkpointed."""
        return self._committed.get(slot)

    def ordered_low(self, origin: int) -> int:
        """Every batch of ``origin`` below this counter was delivered in a slot."""
        return self._ordered.low(origin)

    def is_ordered(self, origin: int, counter: int) -> bool:
        """True if batch (origin, counter) was delivered in a slot."""
        return self._ordered.is_done(origin, counter)

    def oldest_pending(self) -> float | None:
        """Since when known work (an unordered batch, an uncommitted proposal) has waited,
        counted from the start of the current view; None when nothing waits."""
        times = list(self._available_since.values())
        times += [s.proposed_at for slot, s in self._slots.items()
                  if s.proposal is not None and slot not in self._committed]
        if not times:
            return None
        return max(min(times), self.view_started_at)

    def uncommitted_reproposals(self) -> bool:
        """True while a re-proposal of the current view is not committed here."""
        return any(s.reproposed and slot not in self._committed
                   for slot, s in self._slots.items())

    def slots_held(self) -> int:
        """Open slot states (bounded by the watermark window)."""
        return len(self._slots)

    def proofs_held(self) -> int:
        """Commit and prepared certificates held (bounded by checkpoints and the window)."""
        return len(self._committed) + len(self._prepared)

    def batches_waiting(self) -> int:
        """Batches held (echoed, fetched or delivered) and not yet ordered."""
        return len(self._available)

    def available_refs(self) -> list[BatchRef]:
        """Every disseminated batch not yet ordered, as a reference."""
        return [BatchRef(origin, counter, digest)
                for (origin, counter), digest in self._available.items()]

    def has_proposal(self, slot: int) -> bool:
        """True if ``slot`` holds a proposal (or re-proposal) of the current view."""
        state = self._slots.get(slot)
        return state is not None and state.proposal is not None

    # -- member rules -------------------------------------------------------------------------

    def _slot(self, slot: int, *, count_drops: bool = True) -> _Slot | None:
        if slot < self.low:
            if count_drops:
                self.outbox.drop("order-slot-delivered")
            return None
        if slot >= self.low + self.settings.slot_window:
            if count_drops:
                self.outbox.drop("order-beyond-window")
            return None
        state = self._slots.get(slot)
        if state is None:
            state = self._slots[slot] = _Slot()
        return state

    def _refs_well_formed(self, refs: tuple[BatchRef, ...], *, null_ok: bool = False) -> bool:
        """Bounded, no repeated batch, known origins; empty only where a null slot may be."""
        if (not refs and not null_ok) or len(refs) > self.settings.slot_refs_max:
            return False
        keys = {(r.origin, r.counter) for r in refs}
        return len(keys) == len(refs) and all(r.origin < self.quorums.n for r in refs)

    def _on_order(self, signed: Signed, message: Order, state: _Slot, now: float) -> None:
        if signed.sender != self.proposer.proposer_of(message.slot):
            self.outbox.drop("order-not-sequencer")
            return
        if not self._refs_well_formed(message.refs):
            self.outbox.drop("order-malformed")
            return
        digest = message.digest
        if state.proposal_signed is not None and state.proposal_signed.message != message:
            self.outbox.evidence.append(Evidence(signed.sender, state.proposal_signed, signed))
        if state.proposal is None and not state.reproposed:
            state.proposal = message
            state.proposal_signed = signed
            state.proposed_at = now
            if signed.sender == self.member:
                state.mine["order"] = (None, message)
                state.last_sent = now
        if len(state.values) < 2 or digest == state.committed_digest:
            state.values.setdefault(digest, message.refs)
        self._consider(message.slot, state, now)
        self._progress(message.slot, state, now)

    def _consider(self, slot: int, state: _Slot, now: float) -> None:
        """ECHO the slot's proposal once every batch it names is available here."""
        if state.echoed is not None or state.proposal is None or not self.active or \
                slot < self.sign_floor:
            return
        order = state.proposal
        proposed = {(r.origin, r.counter) for r in order.refs}
        for ref in order.refs:
            key = (ref.origin, ref.counter)
            if self._ordered.is_done(*key):
                if state.reproposed:
                    continue  # a prepared value must go through; delivery skips the repeat
                self.outbox.drop("order-batch-already-ordered")
                state.proposal = None
                return
            held = self._available.get(key)
            if held is None:
                return  # wait: the SEND may still come (retransmit() fetches it if not)
            if held != ref.digest:
                # The origin equivocated and the proposal names its other value, which at
                # least one correct member holds if the proposer is correct: fetch, and wait.
                self.outbox.wanted.append(ref)
                return
            before = (ref.origin, ref.counter - 1)
            if ref.counter > 0 and not state.reproposed and not (
                before in self._available or before in proposed or self._ordered.is_done(*before)
            ):
                return  # wait for the predecessor: honest origins' batches stay gap-free
        state.echoed = order.digest
        echo = OrderEcho(self.view, slot, order.digest)
        to = self._vote_to(slot, state)
        state.mine["echo"] = (to, echo)
        state.last_sent = now
        self.outbox.send(to, echo)

    def _on_vote(self, votes: dict[int, Signed], signed: Signed, message: OrderEcho,
                 state: _Slot) -> None:
        """Record a vote. A first vote that contradicts the proposal held here means someone
        equivocates: forward the vote to everyone and the sequencer's ORDER to the voter, so
        whoever was told otherwise holds two conflicting signed messages as evidence."""
        previous = votes.get(signed.sender)
        if previous is None:
            votes[signed.sender] = signed
            mine = state.echoed or (state.proposal.digest if state.proposal else None)
            if mine is not None and message.digest != mine and signed.sender != self.member:
                self.outbox.send(None, signed)
                if state.proposal_signed is not None:
                    self.outbox.send(signed.sender, state.proposal_signed)
        elif _digest_of(previous) != message.digest:
            self.outbox.evidence.append(Evidence(signed.sender, previous, signed))

    def _progress(self, slot: int, state: _Slot, now: float) -> None:
        q = self.quorums.quorum
        if not state.ready_sent and slot >= self.sign_floor:
            digest = _quorum_digest(state.echoes, q)
            refs = None if digest is None else state.values.get(digest)
            if digest is not None and refs is not None:
                # Prepared certificate held (value and q ECHOs): only now may it send READY.
                votes = tuple(Vote(v.sender, v.signature)
                              for v in sorted(state.echoes.values(), key=lambda v: v.sender)
                              if _digest_of(v) == digest)[:q]
                cert = PreparedCert(self.view, slot, refs, votes)
                self._prepared[slot] = cert  # the newest view's
                self.outbox.prepared.append(cert)
                state.ready_sent = True
                if self._collects(slot):
                    forward = OrderPrepared(self.view, slot, refs, votes)
                    state.mine["prepared"] = (None, forward)
                    self.outbox.send(None, forward)
                ready = OrderReady(self.view, slot, digest)
                to = self._vote_to(slot, state)
                state.mine["ready"] = (to, ready)
                state.last_sent = now
                self.outbox.send(to, ready)
        if state.committed_digest is None:
            digest = _quorum_digest(state.readies, q)
            if digest is not None:
                state.committed_digest = digest
                state.certificate_view = self.view
                state.certificate = tuple(
                    Vote(v.sender, v.signature)
                    for v in sorted(state.readies.values(), key=lambda v: v.sender)
                    if _digest_of(v) == digest
                )[:q]
                if self._collects(slot):
                    self.outbox.send(None, OrderCommitted(self.view, slot, digest,
                                                          state.certificate))
        if state.committed_digest is not None and slot not in self._committed:
            refs = state.values.get(state.committed_digest)
            if refs is not None:
                state.mine.clear()
                self._committed[slot] = CommittedSlot(state.certificate_view, slot, refs,
                                                      state.certificate)
                self.proposer.committed(refs)
                self.proposer.token_passed(now)

    def retransmit(self, now: float) -> None:
        """Resend own messages of slots not yet committed here, and ask for the batches
        that a proposal waiting for a retransmit interval, or a committed slot, names but
        this member does not hold (an origin may have sent its SEND to a few members only)."""
        interval = self.settings.retransmit_interval_s
        for slot, state in self._slots.items():
            if state.mine and now - state.last_sent >= interval:
                state.last_sent = now
                # Linear votes fall back to all-to-all: the collector may be silent, or a
                # Byzantine one may forward its certificates to some members only.
                state.fallback = True
                if not (state.committed_digest or self._collects(slot)):
                    self._all_to_all_view = self.view
                for _, item in state.mine.values():
                    self.outbox.send(None, item)
            if slot not in self._committed and state.proposal is not None and \
                    state.echoed is None and now - state.proposed_at >= interval:
                self._want_missing(state.proposal.refs)
        for slot, committed in self._committed.items():
            if slot >= self.low:
                self._want_missing(committed.refs)

    def _collects(self, slot: int) -> bool:
        """True if votes are linear and this member is ``slot``'s collector (its proposer in
        the current view)."""
        return self.settings.votes == "linear" and \
            self.proposer.proposer_of(slot) == self.member

    def _vote_to(self, slot: int, state: _Slot) -> int | None:
        """Where this member's vote for ``slot`` goes: everyone, or with linear votes the
        slot's collector until the slot falls back to all-to-all."""
        if self.settings.votes != "linear" or state.fallback or \
                self._all_to_all_view == self.view:
            return None
        return self.proposer.proposer_of(slot)

    def _on_prepared(self, message: OrderPrepared, state: _Slot, now: float) -> None:
        """A collector's prepared certificate: its q ECHOs count as if each had arrived."""
        if state.ready_sent:
            return
        if not self._refs_well_formed(message.refs, null_ok=True):
            self.outbox.drop("order-bad-certificate")
            return
        digest = message.digest
        if not self._adopt_votes(state.echoes, OrderEcho(message.view, message.slot, digest),
                                 message.votes):
            return
        state.values[digest] = message.refs  # at most one value is prepared per view
        self._progress(message.slot, state, now)

    def _on_committed(self, message: OrderCommitted, state: _Slot, now: float) -> None:
        """A collector's commit certificate: its q READYs count as if each had arrived."""
        if state.committed_digest is None and self._adopt_votes(
                state.readies, OrderReady(message.view, message.slot, message.digest),
                message.votes):
            self._progress(message.slot, state, now)

    def _adopt_votes(self, held: dict[int, Signed], vote: OrderEcho,
                     votes: tuple[Vote, ...]) -> bool:
        """Count a forwarded certificate's votes (each re-created as the signed ``vote`` of
        its member) if they are q valid signatures; a vote that contradicts its member's
        earlier one is evidence. False (counted) for a bad certificate."""
        body = vote.to_body()
        if not valid_votes(votes, body, vote.KIND, self.quorums, self.verify):
            self.outbox.drop("order-bad-certificate")
            return False
        for v in votes:
            signed = Signed(v.member, vote, body, v.signature)
            previous = held.setdefault(v.member, signed)
            if _digest_of(previous) != vote.digest:
                self.outbox.evidence.append(Evidence(v.member, previous, signed))
        return True

    def _want_missing(self, refs: tuple[BatchRef, ...]) -> None:
        for ref in refs:
            key = (ref.origin, ref.counter)
            if not self._ordered.is_done(*key) and self._available.get(key) != ref.digest:
                self.outbox.wanted.append(ref)

    def slot_proof(self, slot: int, batches: tuple[Batch, ...]) -> SlotProof | None:
        """A :class:`SlotProof` for a committed slot, or None if its certificate was
        dropped (a checkpoint covers it: serve a log segment instead)."""
        committed = self._committed.get(slot)
        if committed is None or not committed.certificate:
            return None
        return SlotProof(committed.view, slot, committed.refs, committed.certificate, batches)
