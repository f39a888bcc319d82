"""The ordering core's rules, driven directly (no network)."""

from __future__ import annotations

import pytest

from btob.core.effects import Outbox
from btob.core.ordering import CommittedSlot, Ordering
from btob.core.proposers import MovingProposer
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    Checkpoint,
    Order,
    OrderCommitted,
    OrderEcho,
    OrderPrepared,
    OrderReady,
    PreparedCert,
    Reproposal,
    SlotProof,
    Vote,
    slot_digest,
)

from ..helpers import Keys

N = 4
SETTINGS = Settings(slot_window=8, checkpoint_interval=4)
BATCH = Batch(0, (b"payload",))
REF = BatchRef(2, 0, BATCH.digest())


def make(member: int = 1) -> tuple[Ordering, Outbox, Keys]:
    keys = Keys(N)
    outbox = Outbox()
    core = Ordering(member=member, quorums=Quorums.for_cluster(N), settings=SETTINGS,
                               outbox=outbox, verify=keys.verifier().verify)
    return core, outbox, keys


def sent(outbox: Outbox, kind: type) -> list[object]:
    return [m for _, m in outbox.sends if type(m) is kind]


def test_echoes_a_valid_proposal_once_its_batch_is_available() -> None:
    core, outbox, keys = make()
    order = Order(0, 0, (REF,))
    core.on_message(keys.sign(0, order), 0.0)
    assert sent(outbox, OrderEcho) == []  # batch not BRB-delivered yet: wait
    core.batch_available(REF, 0.1)
    assert sent(outbox, OrderEcho) == [OrderEcho(0, 0, order.digest)]


def test_refuses_proposals_from_others_outside_window_or_other_views() -> None:
    core, outbox, keys = make()
    core.batch_available(REF, 0.0)
    core.on_message(keys.sign(2, Order(0, 0, (REF,))), 0.0)  # not the sequencer
    core.on_message(keys.sign(0, Order(0, SETTINGS.slot_window, (REF,))), 0.0)
    core.on_message(keys.sign(1, Order(1, 0, (REF,))), 0.0)  # view 1 is not current
    core.on_message(keys.sign(0, Order(0, 1, (REF, REF))), 0.0)  # duplicate ref
    core.on_message(keys.sign(0, Order(0, 2, ())), 0.0)  # empty
    assert sent(outbox, OrderEcho) == []
    assert outbox.dropped["order-not-sequencer"] == 1
    assert outbox.dropped["order-beyond-window"] == 1
    assert outbox.dropped["order-other-view"] == 1
    assert outbox.dropped["order-malformed"] == 2
    assert core.slots_held() <= 3


def test_a_proposal_naming_another_value_of_a_held_batch_fetches_it_and_waits() -> None:
    """The origin equivocated: the named value is asked for, the proposal is kept, and it is
    echoed once that value is held."""
    core, outbox, keys = make()
    core.batch_held(REF, 0.0)
    named = BatchRef(REF.origin, REF.counter, bytes(32))
    order = Order(0, 0, (named,))
    core.on_message(keys.sign(0, order), 0.0)
    assert outbox.wanted == [named] and sent(outbox, OrderEcho) == []
    assert core.has_proposal(0)
    core.batch_held(named, 0.1)
    assert sent(outbox, OrderEcho) == [OrderEcho(0, 0, order.digest)]


def test_a_proposal_waiting_for_a_missing_batch_fetches_it_after_a_retransmit_interval(
) -> None:
    core, outbox, keys = make()
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 0.0)
    core.retransmit(SETTINGS.retransmit_interval_s / 2)
    assert outbox.wanted == []  # the SEND may still come by itself
    core.retransmit(SETTINGS.retransmit_interval_s)
    assert outbox.wanted == [REF]


def test_a_committed_slot_asks_for_the_batches_it_names_that_are_not_held() -> None:
    core, outbox, _ = make()
    held = BatchRef(3, 0, Batch(0, (b"here",)).digest())
    core.batch_held(held, 0.0)
    core.adopt_settled(0, (REF, held))
    core.retransmit(0.0)
    assert outbox.wanted == [REF]


def test_only_a_delivered_batch_counts_as_work_the_sequencer_owes() -> None:
    """A batch held but not delivered may be one a Byzantine origin gave a few members."""
    core, _, _ = make()
    core.batch_held(REF, 0.0)
    assert core.oldest_pending() is None
    core.batch_available(REF, 0.5)
    assert core.oldest_pending() == 0.5


def test_waits_for_the_predecessor_batch_of_an_origin() -> None:
    core, outbox, keys = make()
    second = BatchRef(2, 1, Batch(1, (b"next",)).digest())
    core.batch_available(second, 0.0)
    core.on_message(keys.sign(0, Order(0, 0, (second,))), 0.0)
    assert sent(outbox, OrderEcho) == []
    core.batch_available(REF, 0.0)  # (2, 0) arrives: the hole is closed
    assert len(sent(outbox, OrderEcho)) == 1


def test_equivocating_sequencer_gets_one_echo_and_leaves_evidence() -> None:
    core, outbox, keys = make()
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    core.batch_available(REF, 0.0)
    core.batch_available(other, 0.0)
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 0.0)
    core.on_message(keys.sign(0, Order(0, 0, (other,))), 0.0)
    assert len(sent(outbox, OrderEcho)) == 1
    assert [e.member for e in outbox.evidence] == [0]


def test_ready_needs_a_prepared_certificate_not_amplification() -> None:
    core, outbox, keys = make()
    digest = slot_digest(0, (REF,))
    # f+1 and even q READYs from others: commit, but never a READY of our own.
    for member in (0, 2, 3):
        core.on_message(keys.sign(member, OrderReady(0, 0, digest)), 0.0)
    assert sent(outbox, OrderReady) == []
    # q ECHOs without the value: not a prepared certificate either.
    for member in (0, 2, 3):
        core.on_message(keys.sign(member, OrderEcho(0, 0, digest)), 0.0)
    assert sent(outbox, OrderReady) == []
    # The value arrives: prepared, now READY is allowed.
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 0.0)
    for member in (0, 2, 3):
        core.on_message(keys.sign(member, OrderEcho(0, 0, digest)), 0.0)
    assert sent(outbox, OrderReady) == [OrderReady(0, 0, digest)]


def test_commits_on_q_readies_once_the_value_is_known() -> None:
    core, _, keys = make()
    order = Order(0, 0, (REF,))
    for member in (0, 2, 3):
        core.on_message(keys.sign(member, OrderReady(0, 0, order.digest)), 0.0)
    assert core.committed(0) is None  # value unknown yet
    core.on_message(keys.sign(0, order), 0.0)
    committed = core.committed(0)
    assert committed is not None and committed.refs == (REF,)
    assert sorted(v.member for v in committed.certificate) == [0, 2, 3]


def test_q_minus_one_readies_do_not_commit() -> None:
    core, _, keys = make()
    order = Order(0, 0, (REF,))
    core.on_message(keys.sign(0, order), 0.0)
    for member in (0, 2):
        core.on_message(keys.sign(member, OrderReady(0, 0, order.digest)), 0.0)
        core.on_message(keys.sign(member, OrderReady(0, 0, order.digest)), 0.0)  # repeats
    assert core.committed(0) is None


def _proof(keys: Keys, voters: list[int], refs: tuple[BatchRef, ...] = (REF,),
           batches: tuple[Batch, ...] = (BATCH,)) -> SlotProof:
    digest = slot_digest(0, refs)
    votes = tuple(Vote(m, keys.sign(m, OrderReady(0, 0, digest)).signature) for m in voters)
    return SlotProof(0, 0, refs, votes, batches)


def test_slot_proof_is_adopted_only_with_a_valid_certificate_and_batches() -> None:
    core, _, keys = make()
    assert not core.on_slot_proof(_proof(keys, [0, 2]))  # too few
    assert not core.on_slot_proof(_proof(keys, [0, 0, 2]))  # repeated voter
    assert not core.on_slot_proof(_proof(keys, [0, 2, 3], batches=(Batch(0, (b"x",)),)))
    forged = _proof(keys, [0, 2, 3])
    bad = SlotProof(0, 0, forged.refs, (*forged.certificate[:2], Vote(3, bytes(64))),
                    forged.batches)
    assert not core.on_slot_proof(bad)
    assert core.committed(0) is None
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    assert core.committed(0) is not None


def test_sequencer_proposes_each_origins_batches_in_counter_order() -> None:
    core, outbox, _ = make(member=0)
    refs = [BatchRef(2, c, Batch(c, (b"%d" % c,)).digest()) for c in range(3)]
    core.batch_available(refs[2], 0.0)
    core.batch_available(refs[1], 0.0)
    assert sent(outbox, Order) == []  # counter 0 missing: nothing to propose
    core.batch_available(refs[0], 0.0)
    orders = sent(outbox, Order)
    proposed = [r for o in orders for r in o.refs]  # type: ignore[attr-defined]
    assert proposed == refs


def test_window_slides_on_delivery_and_old_slots_are_refused() -> None:
    core, outbox, keys = make()
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    core.slot_delivered(0, 1.0)
    assert core.low == 1 and core.is_ordered(2, 0)
    core.on_message(keys.sign(0, OrderEcho(0, 0, bytes(32))), 1.0)
    assert outbox.dropped["order-slot-delivered"] == 1


def test_a_slot_equivocated_in_one_view_still_prepares_in_the_next() -> None:
    """Regression (tests/core/testdata/equivocated_slot.txt): two values of view 0 used to
    stay in the slot for good, so view 1's proposal - a third value - found no room, and the
    slot never prepared again in any view."""
    core, outbox, keys = make(member=2)
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    both = (REF, other)
    core.batch_available(REF, 0.0)
    core.batch_available(other, 0.0)
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 0.0)  # the sequencer equivocates
    core.on_message(keys.sign(0, Order(0, 0, (other,))), 0.0)
    core.suspend()
    core.install_view(1, (), 0, 1.0)  # nothing prepared: nothing re-proposed
    order = Order(1, 0, both)
    core.on_message(keys.sign(1, order), 1.0)  # view 1's sequencer proposes both batches
    for member in (1, 2, 3):  # q ECHOs, this member's own included
        core.on_message(keys.sign(member, OrderEcho(1, 0, order.digest)), 1.0)
    assert OrderReady(1, 0, order.digest) in sent(outbox, OrderReady)


# -- what the mutation runs found untested (bench/results/mutation/ordering.md) --------------


def test_a_slot_proof_is_checked_in_order_and_each_refusal_is_counted() -> None:
    core, outbox, keys = make()
    good = _proof(keys, [0, 2, 3])
    beyond = SlotProof(0, SETTINGS.slot_window, good.refs, good.certificate, good.batches)
    assert not core.on_slot_proof(beyond)  # outside the window: not even looked at
    assert outbox.dropped["order-beyond-window"] == 1
    short = SlotProof(0, 0, good.refs, good.certificate, ())  # refs well formed, no batch
    assert not core.on_slot_proof(short)
    repeated = SlotProof(0, 0, (REF, REF), good.certificate, (BATCH, BATCH))
    assert not core.on_slot_proof(repeated)
    assert outbox.dropped["proof-malformed"] == 2
    other = Batch(0, (b"x",))
    assert not core.on_slot_proof(SlotProof(0, 0, good.refs, good.certificate, (other,)))
    assert outbox.dropped["proof-batch-mismatch"] == 1
    assert not core.on_slot_proof(_proof(keys, [0, 2]))
    assert outbox.dropped["proof-bad-certificate"] == 1
    assert core.committed(0) is None


def test_an_adopted_slot_proof_commits_the_slot_as_proven() -> None:
    core, _, keys = make()
    proof = _proof(keys, [0, 2, 3])
    assert core.on_slot_proof(proof)
    assert core.committed(0) == CommittedSlot(0, 0, (REF,), proof.certificate)
    assert core.slot_proof(0, (BATCH,)) == proof  # served on as it came
    ready = keys.sign(2, OrderReady(0, 0, slot_digest(0, (REF,))))
    assert core.needless(ready)  # a READY for the committed value changes nothing


def test_a_known_slot_proof_is_answered_without_checking_its_signatures_again() -> None:
    keys = Keys(N)
    checked: list[int] = []

    def verify(member: int, kind: str, body: bytes, signature: bytes) -> bool:
        checked.append(member)
        return keys.verifier().verify(member, kind, body, signature)

    core = Ordering(member=1, quorums=Quorums.for_cluster(N), settings=SETTINGS,
                    outbox=Outbox(), verify=verify)
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    assert len(checked) == 3
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    assert not core.on_slot_proof(_proof(keys, [0, 2, 3], (other,), (Batch(0, (b"other",)),)))
    assert len(checked) == 3  # the slot is settled here: no signature is checked again


def test_a_null_slot_proof_is_adopted() -> None:
    core, _, keys = make()
    assert core.on_slot_proof(_proof(keys, [0, 2, 3], refs=(), batches=()))
    committed = core.committed(0)
    assert committed is not None and committed.refs == ()


def test_conflicting_votes_of_one_member_are_evidence_naming_both() -> None:
    core, outbox, keys = make()
    first = keys.sign(2, OrderEcho(0, 0, bytes([1]) * 32))
    second = keys.sign(2, OrderEcho(0, 0, bytes([2]) * 32))
    core.on_message(first, 0.0)
    core.on_message(second, 0.0)
    assert [(e.member, e.first, e.second) for e in outbox.evidence] == [(2, first, second)]


def test_a_vote_against_the_proposal_held_here_is_forwarded_to_all() -> None:
    """Even before this member echoed (its batch is missing), the proposal it holds is the
    value it would vouch for: a vote for another one is passed on, with the ORDER to the
    voter."""
    core, outbox, keys = make()
    order = keys.sign(0, Order(0, 0, (REF,)))
    core.on_message(order, 0.0)  # REF not available: no ECHO yet
    assert sent(outbox, OrderEcho) == []
    against = keys.sign(3, OrderEcho(0, 0, bytes([9]) * 32))
    core.on_message(against, 0.0)
    assert (None, against) in outbox.sends and (3, order) in outbox.sends


def test_a_flooding_sequencer_fills_at_most_two_values_of_a_slot() -> None:
    core, outbox, keys = make()
    refs = [BatchRef(3, 0, Batch(0, (b"%d" % i,)).digest()) for i in range(3)]
    for ref in refs:
        core.on_message(keys.sign(0, Order(0, 0, (ref,))), 0.0)
    third = slot_digest(0, (refs[2],))
    for member in (0, 2, 3):
        core.on_message(keys.sign(member, OrderEcho(0, 0, third)), 0.0)
    # q ECHOs for the third value, but it was never kept: no prepared certificate, no READY.
    assert sent(outbox, OrderReady) == []


def test_a_view_is_installed_once_and_only_forwards() -> None:
    core, _, _ = make()
    with pytest.raises(AssertionError, match=r"^a view is installed once"):
        core.install_view(0, (), 0, 0.0)
    core.install_view(1, (), 0, 0.0)
    with pytest.raises(AssertionError, match=r"^a view is installed once"):
        core.install_view(1, (), 0, 0.0)


def test_reproposals_after_one_for_a_committed_slot_are_still_echoed() -> None:
    core, outbox, keys = make(member=2)
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))  # slot 0 is committed here
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    core.batch_available(other, 0.0)
    core.suspend()
    core.install_view(1, (Reproposal(0, (REF,)), Reproposal(1, (other,))), 2, 1.0)
    assert OrderEcho(1, 1, slot_digest(1, (other,))) in sent(outbox, OrderEcho)
    assert core.has_proposal(1) and not core.has_proposal(0)  # the committed slot stays so
    assert core.uncommitted_reproposals()


def test_slots_are_delivered_strictly_in_order() -> None:
    core, _, keys = make()
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    with pytest.raises(AssertionError, match=r"^slots are delivered strictly in order"):
        core.slot_delivered(1, 0.0)


def _proof_at(keys: Keys, slot: int, batch: Batch, origin: int) -> SlotProof:
    refs = (BatchRef(origin, 0, batch.digest()),)
    digest = slot_digest(slot, refs)
    votes = tuple(Vote(m, keys.sign(m, OrderReady(0, slot, digest)).signature)
                  for m in (0, 2, 3))
    return SlotProof(0, slot, refs, votes, (batch,))


def _prepare(core: Ordering, keys: Keys, slot: int, ref: BatchRef) -> bytes:
    """Propose ``ref`` in ``slot`` and give it q ECHOs: this member then sends READY."""
    order = Order(0, slot, (ref,))
    core.batch_available(ref, 0.0)
    core.on_message(keys.sign(0, order), 0.0)
    for member in (1, 2, 3):
        core.on_message(keys.sign(member, OrderEcho(0, slot, order.digest)), 0.0)
    return order.digest


def test_an_order_is_bounded_in_refs_and_origins() -> None:
    keys = Keys(N)
    outbox = Outbox()
    core = Ordering(member=1, quorums=Quorums.for_cluster(N), settings=Settings(
        slot_window=8, checkpoint_interval=4, slot_refs_max=2), outbox=outbox,
        verify=keys.verifier().verify)
    two = (BatchRef(2, 0, bytes(32)), BatchRef(3, 0, bytes(32)))
    core.on_message(keys.sign(0, Order(0, 0, two)), 0.0)  # exactly the maximum: taken
    core.on_message(keys.sign(0, Order(0, 1, (*two, BatchRef(0, 0, bytes(32))))), 0.0)
    core.on_message(keys.sign(0, Order(0, 2, (BatchRef(N, 0, bytes(32)),))), 0.0)  # no such
    assert outbox.dropped["order-malformed"] == 2
    assert core.has_proposal(0) and not core.has_proposal(1) and not core.has_proposal(2)


def test_the_first_order_of_the_sequencer_stays_the_proposal() -> None:
    """The sequencer equivocates before the batches arrive: this member echoes the first
    value it was told, never the later one."""
    core, outbox, keys = make()
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    first = Order(0, 0, (REF,))
    core.on_message(keys.sign(0, first), 0.0)
    core.on_message(keys.sign(0, Order(0, 0, (other,))), 0.0)
    core.batch_available(other, 0.1)
    core.batch_available(REF, 0.2)
    assert sent(outbox, OrderEcho) == [OrderEcho(0, 0, first.digest)]


def test_a_batch_ordered_already_is_not_proposed_again() -> None:
    core, outbox, keys = make()
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    core.slot_delivered(0, 0.0)
    core.on_message(keys.sign(0, Order(0, 1, (REF,))), 0.0)
    assert outbox.dropped["order-batch-already-ordered"] == 1
    assert not core.has_proposal(1)  # the proposal is gone, not kept half-refused
    core.batch_available(BatchRef(3, 0, bytes(32)), 0.1)  # and is not considered again
    assert sent(outbox, OrderEcho) == []


def test_a_reproposal_waits_for_its_batches_that_are_not_ordered_yet() -> None:
    """A re-proposed value passes over a batch ordered already (delivery skips it) but still
    needs every other batch it names."""
    core, outbox, keys = make(member=2)
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    core.slot_delivered(0, 0.0)
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    core.suspend()
    core.install_view(1, (Reproposal(1, (REF, other)),), 2, 1.0)
    assert sent(outbox, OrderEcho) == []  # REF is ordered, `other` not here yet
    core.batch_available(other, 1.5)
    assert sent(outbox, OrderEcho) == [OrderEcho(1, 1, slot_digest(1, (REF, other)))]


def test_own_messages_are_retransmitted_after_the_interval_only() -> None:
    core, outbox, keys = make(member=0)  # the sequencer
    core.batch_available(REF, 5.0)
    (order,) = sent(outbox, Order)
    assert isinstance(order, Order)
    core.on_message(keys.sign(0, order), 5.0)  # its own ORDER comes back: it is kept
    outbox.sends.clear()
    interval = SETTINGS.retransmit_interval_s
    core.retransmit(5.0 + interval / 2)
    assert outbox.sends == []
    core.retransmit(5.0 + interval)
    assert (None, order) in outbox.sends


def test_the_oldest_pending_work_is_an_uncommitted_proposal() -> None:
    core, _, keys = make()
    assert core.oldest_pending() is None
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 1.0)  # committed: not pending
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    core.on_message(keys.sign(0, Order(0, 1, (other,))), 3.0)  # waits for its batch
    core.on_message(keys.sign(2, OrderEcho(0, 2, bytes(32))), 0.5)  # a slot, no proposal
    assert core.oldest_pending() == 3.0


def test_needless_votes_are_only_the_ones_that_change_nothing() -> None:
    core, _, keys = make()
    early = keys.sign(0, OrderEcho(0, 0, bytes([5]) * 32))
    core.on_message(early, 0.0)  # member 0 echoes another value first
    digest = _prepare(core, keys, 0, REF)
    assert core.needless(keys.sign(2, OrderEcho(0, 0, digest)))  # a repeat of a counted one
    # Member 0 now echoes the prepared value: it contradicts its first ECHO, so it is checked.
    assert not core.needless(keys.sign(0, OrderEcho(0, 0, digest)))
    assert not core.needless(keys.sign(2, OrderReady(0, 0, digest)))  # not committed yet
    assert not core.needless(keys.sign(0, Order(0, 0, (REF,))))  # an ORDER: always checked
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    core.slot_delivered(0, 0.0)
    assert not core.needless(keys.sign(0, Order(0, 0, (REF,))))  # ... even for an old slot
    assert core.needless(keys.sign(3, OrderEcho(0, 0, digest)))  # a vote for a delivered one


def test_proofs_are_counted_and_forgotten_below_the_delivered_checkpoint_only() -> None:
    core, _, keys = make()
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    assert core.on_slot_proof(_proof_at(keys, 1, Batch(0, (b"other",)), origin=3))
    _prepare(core, keys, 2, BatchRef(0, 0, Batch(0, (b"z",)).digest()))
    assert core.proofs_held() == 3  # two commit certificates and one prepared certificate
    core.slot_delivered(0, 0.0)
    core.forget_below(1)
    assert core.committed(0) is None and core.committed(1) is not None
    assert core.proofs_held() == 2


# -- after a restart: own messages and prepared certificates taken back ----------------------


def test_an_own_echo_taken_back_binds_the_member_to_its_value() -> None:
    """After a restart the member must not echo another value for the slot, nor the same one
    twice: it resends the ECHO it signed before."""
    core, outbox, keys = make()
    before = OrderEcho(0, 0, bytes([4]) * 32)
    core.restore_own(keys.sign(1, before), 2.0)
    core.batch_available(REF, 2.0)
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 2.0)
    assert sent(outbox, OrderEcho) == []  # it echoed already, before the restart
    core.retransmit(2.0 + SETTINGS.retransmit_interval_s)
    assert sent(outbox, OrderEcho) == [before]
    assert outbox.dropped == {}


def test_an_own_ready_taken_back_is_not_sent_again_when_the_slot_prepares() -> None:
    core, outbox, keys = make()
    digest = slot_digest(0, (REF,))
    core.restore_own(keys.sign(1, OrderReady(0, 0, digest)), 1.0)
    _prepare(core, keys, 0, REF)
    assert sent(outbox, OrderReady) == []
    core.retransmit(1.0 + SETTINGS.retransmit_interval_s)
    assert sent(outbox, OrderReady) == [OrderReady(0, 0, digest)]


def test_an_own_order_taken_back_is_not_proposed_again() -> None:
    core, outbox, keys = make(member=0)  # the sequencer
    core.restore_own(keys.sign(0, Order(0, 0, (REF,))), 1.0)
    assert core.has_proposal(0)
    core.batch_available(REF, 1.0)
    assert sent(outbox, Order) == []  # slot 0 and REF were proposed before the restart
    after = BatchRef(2, 1, Batch(1, (b"after",)).digest())
    core.batch_available(after, 1.0)
    assert sent(outbox, Order) == [Order(0, 1, (after,))]


def test_only_own_messages_of_the_current_view_and_window_are_taken_back() -> None:
    core, outbox, keys = make()
    with pytest.raises(AssertionError):
        core.restore_own(keys.sign(2, OrderEcho(0, 0, bytes(32))), 0.0)  # not this member's
    core.install_view(1, (), 0, 0.0)
    core.restore_own(keys.sign(1, OrderEcho(0, 0, bytes(32))), 0.0)  # of an earlier view
    core.restore_own(keys.sign(1, OrderEcho(1, SETTINGS.slot_window, bytes(32))), 0.0)
    assert core.slots_held() == 0 and outbox.dropped == {}  # left out, and no drop counted


def _prepared(view: int, slot: int, voters: tuple[int, ...] = (0, 2, 3)) -> PreparedCert:
    return PreparedCert(view, slot, (REF,), tuple(Vote(m, bytes(64)) for m in voters))


def test_prepared_certificates_taken_back_keep_the_newest_view_per_slot() -> None:
    core, _, keys = make()
    newer = _prepared(2, 0)
    core.restore_prepared(newer)
    core.restore_prepared(_prepared(1, 0))  # older: kept out
    core.restore_prepared(_prepared(2, 0, voters=(1, 2, 3)))  # not newer either
    assert core.prepared_certificates(0) == (newer,)
    core.restore_prepared(_prepared(3, 0))
    assert [c.view for c in core.prepared_certificates(0)] == [3]
    moved, _, _ = make()
    assert moved.on_slot_proof(_proof(keys, [0, 2, 3]))
    moved.slot_delivered(0, 0.0)
    moved.restore_prepared(_prepared(1, 0))  # below the window: not taken
    moved.restore_prepared(_prepared(1, 1))  # at its low end: taken
    assert [c.slot for c in moved.prepared_certificates(0)] == [1]


# -- settled slots and jumps ------------------------------------------------------------------


def test_settled_slots_are_recorded_with_the_view_they_came_with() -> None:
    core, _, keys = make()
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    core.adopt_settled(1, (REF,))  # from a checkpointed segment: this view, no certificate
    assert core.committed(1) == CommittedSlot(0, 1, (REF,), ())
    core.install_view(2, (), 0, 0.0)
    proof = _proof(keys, [0, 2, 3])
    core.adopt_settled(2, (other,), view=1, certificate=proof.certificate)  # own durable
    assert core.committed(2) == CommittedSlot(1, 2, (other,), proof.certificate)
    core.adopt_settled(1, (other,))  # committed already: the first word stands
    assert core.committed(1) == CommittedSlot(0, 1, (REF,), ())


def test_settled_slots_below_the_window_are_not_recorded() -> None:
    core, _, keys = make()
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    core.slot_delivered(0, 0.0)
    core.forget_below(1)
    core.adopt_settled(0, (REF,))
    assert core.committed(0) is None


def test_a_jump_settles_the_slots_below_it_and_the_batches_it_names() -> None:
    core, _, keys = make()
    core.batch_available(REF, 1.0)  # waiting since 1.0
    upto = SETTINGS.checkpoint_interval
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    assert core.on_slot_proof(_proof_at(keys, upto, Batch(0, (b"at",)), origin=3))
    core.jump_to(upto, ((2, 1, ()),))  # the snapshot: REF, (2, 0), is ordered
    assert core.low == upto and core.is_ordered(2, 0) and core.ordered_low(2) == 1
    assert core.committed(0) is None  # settled by the snapshot
    assert core.committed(upto) is not None  # the slot at the jump is not
    assert core.batches_waiting() == 0 and core.oldest_pending() is None
    with pytest.raises(AssertionError):
        core.jump_to(upto, ())  # a jump goes forward


def test_the_sequencer_proposes_above_a_jump_and_not_what_it_settled() -> None:
    core, outbox, _ = make(member=0)
    core.suspend()  # not sequencing for a moment: REF is queued, not proposed
    core.batch_available(REF, 1.0)
    core.install_view(4, (), 0, 1.0)  # the leader of view 4 is member 0 again
    outbox.sends.clear()
    upto = SETTINGS.checkpoint_interval
    core.jump_to(upto, ((2, 1, ()),))
    after = BatchRef(2, 1, Batch(1, (b"after",)).digest())
    core.batch_available(after, 2.0)
    assert sent(outbox, Order) == [Order(4, upto, (after,))]  # REF is not proposed again


# -- second round: what the widened selection still left ------------------------------------


def _resent_only_after_the_interval(core: Ordering, outbox: Outbox, message: object,
                                    sent_at: float) -> None:
    """``message`` was sent at ``sent_at``: it is retransmitted one interval later, not
    before (each path that sends an own message must note when)."""
    interval = SETTINGS.retransmit_interval_s
    outbox.sends.clear()
    core.retransmit(sent_at + interval / 2)
    assert (None, message) not in outbox.sends
    core.retransmit(sent_at + interval)
    assert (None, message) in outbox.sends


def test_each_own_message_is_retransmitted_an_interval_after_it_was_sent() -> None:
    core, outbox, keys = make()
    order = Order(0, 0, (REF,))
    core.on_message(keys.sign(0, order), 1.0)
    core.batch_available(REF, 2.0)  # the batch arrives last: ECHO sent now
    _resent_only_after_the_interval(core, outbox, OrderEcho(0, 0, order.digest), 2.0)
    for member in (2, 3):
        core.on_message(keys.sign(member, OrderEcho(0, 0, order.digest)), 3.0)
    core.on_message(keys.sign(1, OrderEcho(0, 0, order.digest)), 4.0)  # prepared: READY
    _resent_only_after_the_interval(core, outbox, OrderReady(0, 0, order.digest), 4.0)

    late, outbox, keys = make()  # the ORDER arrives after the ECHOs
    late.batch_available(REF, 0.0)
    for member in (1, 2, 3):
        late.on_message(keys.sign(member, OrderEcho(0, 0, order.digest)), 1.0)
    late.on_message(keys.sign(0, order), 5.0)
    _resent_only_after_the_interval(late, outbox, OrderReady(0, 0, order.digest), 5.0)

    sequencer, outbox, keys = make(member=0)  # its own ORDER, batch still missing
    waiting = Order(0, 0, (BatchRef(3, 0, bytes(32)),))
    sequencer.on_message(keys.sign(0, waiting), 6.0)
    _resent_only_after_the_interval(sequencer, outbox, waiting, 6.0)

    restarted, outbox, keys = make()  # its own ECHO taken back completes the quorum
    restarted.on_message(keys.sign(0, order), 0.0)
    for member in (2, 3):
        restarted.on_message(keys.sign(member, OrderEcho(0, 0, order.digest)), 0.0)
    restarted.restore_own(keys.sign(1, OrderEcho(0, 0, order.digest)), 7.0)
    _resent_only_after_the_interval(restarted, outbox, OrderReady(0, 0, order.digest), 7.0)


def test_a_reproposal_echo_is_retransmitted_an_interval_after_the_view_began() -> None:
    core, outbox, _ = make(member=2)
    core.batch_available(REF, 0.0)
    core.suspend()
    core.install_view(1, (Reproposal(0, (REF,)),), 1, 3.0)
    _resent_only_after_the_interval(core, outbox, OrderEcho(1, 0, slot_digest(0, (REF,))), 3.0)


def test_a_suspended_member_echoes_nothing_when_a_batch_arrives() -> None:
    """After its VIEW-CHANGE a member must not vote in the old view any more."""
    core, outbox, keys = make()
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 0.0)
    core.suspend()
    core.batch_available(REF, 1.0)
    assert sent(outbox, OrderEcho) == []


def test_a_batch_announced_again_changes_nothing() -> None:
    core, _, keys = make()
    core.batch_available(REF, 1.0)
    core.batch_available(REF, 2.0)  # the same value again: it has waited since 1.0
    assert core.oldest_pending() == 1.0
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    core.slot_delivered(0, 3.0)
    assert core.batches_waiting() == 0 and core.available_refs() == []
    core.batch_available(REF, 4.0)  # ordered already: it does not come back
    assert core.batches_waiting() == 0 and core.oldest_pending() is None


def test_a_vote_for_a_slot_not_seen_yet_is_checked() -> None:
    core, _, keys = make()
    assert not core.needless(keys.sign(2, OrderEcho(0, 3, bytes(32))))


def test_a_message_of_another_protocol_is_dropped() -> None:
    core, outbox, keys = make()
    core.on_message(keys.sign(2, Checkpoint(4, bytes(32))), 0.0)
    assert outbox.dropped == {"order-unexpected-kind": 1}


def test_only_reproposals_count_as_uncommitted_reproposals() -> None:
    core, _, keys = make()
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 0.0)  # an ordinary proposal, open
    assert not core.uncommitted_reproposals()


def test_a_slot_committed_by_votes_is_recorded_as_committed() -> None:
    core, _, keys = make()
    order = Order(0, 0, (REF,))
    core.on_message(keys.sign(0, order), 0.0)
    readies = [keys.sign(m, OrderReady(0, 0, order.digest)) for m in (0, 2, 3)]
    for ready in readies:
        core.on_message(ready, 0.0)
    votes = tuple(Vote(r.sender, r.signature) for r in readies)
    assert core.committed(0) == CommittedSlot(0, 0, (REF,), votes)


def test_a_moving_sequencer_unqueues_the_batches_of_an_adopted_slot_proof() -> None:
    keys = Keys(N)
    core = Ordering(member=1, quorums=Quorums.for_cluster(N), settings=SETTINGS,
                    outbox=Outbox(), verify=keys.verifier().verify, proposer=MovingProposer)
    core.batch_available(REF, 0.0)
    assert core.proposer.queue[REF.origin] == {REF.counter: REF}
    assert core.on_slot_proof(_proof(keys, [0, 2, 3]))
    assert core.proposer.queue[REF.origin] == {}


def test_a_jump_unqueues_what_it_settled() -> None:
    core, _, _ = make(member=0)
    second = BatchRef(2, 1, Batch(1, (b"next",)).digest())
    core.batch_available(second, 1.0)  # queued: (2, 0) is missing, so not proposed yet
    assert core.proposer.queue[2] == {1: second}
    core.jump_to(SETTINGS.checkpoint_interval, ((2, 2, ()),))  # both are ordered
    assert core.proposer.queue[2] == {}


# -- linear votes: a collector gathers the votes and forwards the certificates ---------------

LINEAR = Settings(slot_window=8, checkpoint_interval=4, votes="linear")


def make_linear(member: int = 1) -> tuple[Ordering, Outbox, Keys]:
    keys = Keys(N)
    outbox = Outbox()
    core = Ordering(member=member, quorums=Quorums.for_cluster(N), settings=LINEAR,
                    outbox=outbox, verify=keys.verifier().verify)
    return core, outbox, keys


def _votes(keys: Keys, vote: OrderEcho, voters: tuple[int, ...] = (0, 2, 3)) -> tuple[Vote, ...]:
    return tuple(Vote(m, keys.sign(m, vote).signature) for m in voters)


def test_linear_votes_go_to_the_collector_and_its_certificates_drive_the_member() -> None:
    core, outbox, keys = make_linear()
    order = Order(0, 0, (REF,))
    core.batch_held(REF, 0.0)
    core.on_message(keys.sign(0, order), 0.0)
    echo = OrderEcho(0, 0, order.digest)
    assert outbox.sends == [(0, echo)]  # to the collector (the sequencer) only
    outbox.sends.clear()
    prepared = OrderPrepared(0, 0, (REF,), _votes(keys, echo))
    core.on_message(keys.sign(0, prepared), 0.1)
    ready = OrderReady(0, 0, order.digest)
    assert outbox.sends == [(0, ready)]
    assert [c.votes for c in outbox.prepared] == [prepared.votes]  # a prepared certificate
    assert core.committed(0) is None
    core.on_message(keys.sign(0, OrderCommitted(0, 0, order.digest, _votes(keys, ready))), 0.2)
    committed = core.committed(0)
    assert committed is not None and committed.refs == (REF,)
    assert [v.member for v in committed.certificate] == [0, 2, 3]


def test_the_collector_forwards_each_certificate_once_it_holds_q_votes() -> None:
    core, outbox, keys = make_linear(member=0)
    core.batch_available(REF, 0.0)
    (order,) = sent(outbox, Order)
    assert isinstance(order, Order)
    core.on_message(keys.sign(0, order), 0.0)
    echo = OrderEcho(0, 0, order.digest)
    assert (0, echo) in outbox.sends  # its own vote goes to itself
    for member in (0, 1):
        core.on_message(keys.sign(member, echo), 0.0)
    assert sent(outbox, OrderPrepared) == []  # q - 1 ECHOs: nothing to forward
    core.on_message(keys.sign(2, echo), 0.0)
    assert sent(outbox, OrderPrepared) == [OrderPrepared(0, 0, (REF,), _votes(keys, echo,
                                                                              (0, 1, 2)))]
    assert (None, sent(outbox, OrderPrepared)[0]) in outbox.sends  # to everyone
    ready = OrderReady(0, 0, order.digest)
    for member in (0, 1):
        core.on_message(keys.sign(member, ready), 0.0)
    assert sent(outbox, OrderCommitted) == []
    core.on_message(keys.sign(3, ready), 0.0)
    assert outbox.sends[-1] == (None, OrderCommitted(0, 0, order.digest,
                                                     _votes(keys, ready, (0, 1, 3))))


@pytest.mark.parametrize("lie", ["short", "other-value", "repeated", "bad-signature",
                                 "malformed"])
def test_a_forwarded_certificate_that_does_not_hold_is_dropped_and_counted(lie: str) -> None:
    core, outbox, keys = make_linear()
    order = Order(0, 0, (REF,))
    core.batch_held(REF, 0.0)
    core.on_message(keys.sign(0, order), 0.0)
    echo = OrderEcho(0, 0, order.digest)
    votes = _votes(keys, echo)
    refs: tuple[BatchRef, ...] = (REF,)
    if lie == "short":
        votes = votes[:2]
    elif lie == "other-value":
        votes = _votes(keys, OrderEcho(0, 0, bytes(32)))
    elif lie == "repeated":
        votes = (votes[0], votes[1], votes[1])
    elif lie == "bad-signature":
        votes = (*votes[:2], Vote(3, bytes(64)))
    else:
        refs = (REF, REF)
    core.on_message(keys.sign(0, OrderPrepared(0, 0, refs, votes)), 0.1)
    assert sent(outbox, OrderReady) == [] and outbox.prepared == []
    assert outbox.dropped["order-bad-certificate"] == 1
    ready = OrderReady(0, 0, order.digest)
    core.on_message(keys.sign(0, OrderCommitted(0, 0, order.digest,
                                                _votes(keys, ready)[:2])), 0.2)
    assert core.committed(0) is None
    assert outbox.dropped["order-bad-certificate"] == 2


def test_a_certificate_vote_contradicting_the_voters_earlier_vote_is_evidence() -> None:
    core, outbox, keys = make_linear()
    order = Order(0, 0, (REF,))
    core.on_message(keys.sign(0, order), 0.0)
    core.on_message(keys.sign(2, OrderEcho(0, 0, bytes(32))), 0.0)  # 2 votes another value
    echo = OrderEcho(0, 0, order.digest)
    core.on_message(keys.sign(0, OrderPrepared(0, 0, (REF,), _votes(keys, echo))), 0.1)
    assert [e.member for e in outbox.evidence] == [2]


def test_linear_votes_fall_back_to_everyone_for_the_rest_of_the_view() -> None:
    """A collector that forwards nothing: after a retransmit interval the votes go to every
    member, and so do those of the view's later slots from the start."""
    core, outbox, keys = make_linear()
    first = Order(0, 0, (REF,))
    core.batch_held(REF, 0.0)
    core.on_message(keys.sign(0, first), 0.0)
    interval = LINEAR.retransmit_interval_s
    outbox.sends.clear()
    core.retransmit(interval / 2)
    assert outbox.sends == []
    core.retransmit(interval)
    assert outbox.sends == [(None, OrderEcho(0, 0, first.digest))]
    for member in (0, 2, 3):
        core.on_message(keys.sign(member, OrderEcho(0, 0, first.digest)), interval)
    assert outbox.sends[-1] == (None, OrderReady(0, 0, first.digest))
    other = BatchRef(3, 0, Batch(0, (b"other",)).digest())
    core.batch_held(other, interval)
    second = Order(0, 1, (other,))
    core.on_message(keys.sign(0, second), interval)
    assert outbox.sends[-1] == (None, OrderEcho(0, 1, second.digest))


def test_a_new_view_collects_linearly_again_at_its_own_collector() -> None:
    core, outbox, keys = make_linear()
    core.batch_held(REF, 0.0)
    core.on_message(keys.sign(0, Order(0, 0, (REF,))), 0.0)
    core.retransmit(LINEAR.retransmit_interval_s)  # view 0 falls back
    core.suspend()
    core.install_view(1, (), 0, 1.0)
    outbox.sends.clear()
    order = Order(1, 0, (REF,))
    core.on_message(keys.sign(1, order), 1.0)  # member 1 leads view 1: it collects itself
    assert outbox.sends == [(1, OrderEcho(1, 0, order.digest))]


def test_certificates_for_steps_taken_already_are_needless() -> None:
    core, _, keys = make_linear()
    order = Order(0, 0, (REF,))
    core.batch_held(REF, 0.0)
    core.on_message(keys.sign(0, order), 0.0)
    echo, ready = OrderEcho(0, 0, order.digest), OrderReady(0, 0, order.digest)
    prepared = keys.sign(0, OrderPrepared(0, 0, (REF,), _votes(keys, echo)))
    committed = keys.sign(0, OrderCommitted(0, 0, order.digest, _votes(keys, ready)))
    assert not core.needless(prepared) and not core.needless(committed)
    core.on_message(prepared, 0.1)
    assert core.needless(prepared) and not core.needless(committed)
    core.on_message(committed, 0.2)
    assert core.needless(committed)
