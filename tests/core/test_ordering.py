"""The ordering core's rules, driven directly (no network)."""

from __future__ import annotations

from btob.core.effects import Outbox
from btob.core.ordering import Ordering
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    Order,
    OrderEcho,
    OrderReady,
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


def test_refuses_a_ref_whose_digest_differs_from_what_brb_delivered() -> None:
    core, outbox, keys = make()
    core.batch_available(REF, 0.0)
    core.on_message(keys.sign(0, Order(0, 0, (BatchRef(2, 0, bytes(32)),))), 0.0)
    assert sent(outbox, OrderEcho) == []
    assert outbox.dropped["order-batch-digest-mismatch"] == 1


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
