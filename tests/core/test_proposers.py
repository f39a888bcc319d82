"""Proposer policies, driven through the ordering core: who proposes which slot, with what,
and when - fixed, moving (with exclusions) and granting (one slot per batch)."""

from __future__ import annotations

from btob.core.effects import Outbox
from btob.core.ordering import Ordering
from btob.core.proposers import (
    FixedProposer,
    GrantingProposer,
    MovingProposer,
    Proposer,
    view_leader,
)
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    Order,
    OrderReady,
    Request,
    SlotProof,
    Vote,
    slot_digest,
)

from ..helpers import Keys

KEYS4 = Keys(4)
KEYS7 = Keys(7)


def _core(proposer: type[Proposer], member: int, n: int = 4, view: int = 0,
          **settings: object) -> tuple[Ordering, Outbox]:
    keys = KEYS4 if n == 4 else KEYS7
    outbox = Outbox()
    core = Ordering(member=member, quorums=Quorums.for_cluster(n),
                    settings=Settings(**settings),  # type: ignore[arg-type]
                    outbox=outbox, verify=keys.verifier().verify, view=view,
                    proposer=proposer)
    return core, outbox


def _ref(origin: int, counter: int) -> BatchRef:
    return BatchRef(origin, counter, Batch(counter, (b"%d-%d" % (origin, counter),)).digest())


def _orders(outbox: Outbox) -> list[Order]:
    return [m for _, m in outbox.sends if type(m) is Order]


def _commit_by_proof(core: Ordering, slot: int, refs: tuple[BatchRef, ...]) -> None:
    digest = slot_digest(slot, refs)
    votes = tuple(Vote(m, KEYS4.sign(m, OrderReady(core.view, slot, digest)).signature)
                  for m in (0, 2, 3))
    batches = tuple(Batch(r.counter, (b"%d-%d" % (r.origin, r.counter),)) for r in refs)
    assert core.on_slot_proof(SlotProof(core.view, slot, refs, votes, batches))


def _commit_by_votes(core: Ordering, order: Order) -> None:
    core.on_message(KEYS4.sign(core.proposer.proposer_of(order.slot), order), 0.0)
    for member in (0, 2, 3):
        core.on_message(KEYS4.sign(member, OrderReady(order.view, order.slot, order.digest)),
                        0.0)
    assert core.committed(order.slot) is not None


def test_the_leader_of_a_view_is_the_view_modulo_n() -> None:
    assert [view_leader(v, 4) for v in range(6)] == [0, 1, 2, 3, 0, 1]
    assert view_leader(9, 7) == 2


# -- fixed ----------------------------------------------------------------------------------


def test_the_fixed_sequencer_proposes_every_slot_of_its_view() -> None:
    core, _ = _core(FixedProposer, member=2, view=5)
    assert core.leader == 1
    assert {core.proposer.proposer_of(s) for s in range(20)} == {1}


def test_only_the_sequencer_proposes_and_within_the_pipeline_bound() -> None:
    follower, follower_out = _core(FixedProposer, member=1)
    leader, outbox = _core(FixedProposer, member=0, slots_in_flight_max=2, slot_refs_max=1)
    for origin in (1, 2, 3):
        follower.batch_available(_ref(origin, 0), 0.0)
        leader.batch_available(_ref(origin, 0), 0.0)
    assert _orders(follower_out) == []
    assert _orders(outbox) == [Order(0, 0, (_ref(1, 0),)), Order(0, 1, (_ref(2, 0),))]
    _commit_by_proof(leader, 0, (_ref(1, 0),))
    leader.slot_delivered(0, 0.0)  # one slot left the pipeline: the next one goes
    assert _orders(outbox)[2:] == [Order(0, 2, (_ref(3, 0),))]


def test_a_new_sequencer_proposes_everything_held_each_origin_in_counter_order() -> None:
    core, outbox = _core(FixedProposer, member=1, slot_refs_max=2, slots_in_flight_max=8)
    held = [_ref(o, c) for o in (1, 2, 3) for c in range(3)]
    for ref in reversed(held):
        core.batch_available(ref, 0.0)
    _commit_by_proof(core, 0, (_ref(3, 0),))
    core.slot_delivered(0, 0.0)  # (3, 0) is ordered already
    core.suspend()
    core.install_view(1, (), 1, 1.0)  # member 1 leads view 1, from slot 1
    orders = _orders(outbox)
    assert [o.slot for o in orders] == list(range(1, 1 + len(orders)))
    proposed = [r for o in orders for r in o.refs]
    assert sorted(proposed, key=lambda r: (r.origin, r.counter)) == [
        r for r in held if r != _ref(3, 0)]  # each once, the ordered one not again
    assert all(len(o.refs) <= 2 for o in orders)
    for origin in (1, 2, 3):
        counters = [r.counter for r in proposed if r.origin == origin]
        assert counters == sorted(counters)
    firsts = [o.refs[0].origin for o in orders]
    assert len(set(firsts[:2])) == 2  # a different origin goes first each time


def test_a_new_sequencer_does_not_queue_what_its_new_view_reproposes() -> None:
    from btob.core.wire import Reproposal

    core, outbox = _core(FixedProposer, member=1)
    for ref in (_ref(2, 0), _ref(3, 0)):
        core.batch_available(ref, 0.0)
    core.suspend()
    core.install_view(1, (Reproposal(0, (_ref(2, 0),)),), 1, 1.0)
    assert [o.refs for o in _orders(outbox)] == [(_ref(3, 0),)]


def test_fixed_and_moving_sequencers_grant_no_slot_requests() -> None:
    for proposer in (FixedProposer, MovingProposer):
        core, outbox = _core(proposer, member=0)
        core.on_request(KEYS4.sign(2, Request(0, bytes(32))))
        assert outbox.dropped["request-not-granted"] == 1 and outbox.sends == []


def test_a_fixed_sequencer_excludes_nobody() -> None:
    core, _ = _core(FixedProposer, member=0)
    assert core.proposer.exclusions(3) == ()
    assert core.proposer.exclusions_valid(())
    assert not core.proposer.exclusions_valid((1,))


# -- moving ---------------------------------------------------------------------------------


def test_the_moving_proposer_of_a_slot_rotates_with_view_and_slot() -> None:
    core, _ = _core(MovingProposer, member=0)
    assert [core.proposer.proposer_of(s) for s in range(6)] == [0, 1, 2, 3, 0, 1]
    core.suspend()
    core.install_view(1, (), 0, 0.0, excluded=(2,))
    assert [core.proposer.proposer_of(s) for s in range(6)] == [1, 3, 0, 1, 3, 0]


def test_a_moving_member_proposes_its_turn_only_once_the_slot_before_committed() -> None:
    core, outbox = _core(MovingProposer, member=1)
    core.batch_available(_ref(2, 0), 0.0)
    assert _orders(outbox) == []  # slot 0 is member 0's turn
    _commit_by_votes(core, Order(0, 0, (_ref(3, 0),)))  # the token passes
    assert _orders(outbox) == [Order(0, 1, (_ref(2, 0),))]
    core.batch_available(_ref(2, 1), 0.0)
    assert len(_orders(outbox)) == 1  # one slot in flight: its next turn is slot 5


def test_the_first_turn_of_a_new_view_waits_for_the_reproposed_slot_before_it() -> None:
    from btob.core.wire import Reproposal

    core, outbox = _core(MovingProposer, member=2)
    core.batch_available(_ref(3, 0), 0.0)
    core.suspend()
    reproposed = (_ref(1, 0),)
    core.install_view(1, (Reproposal(0, reproposed),), 1, 1.0)
    assert core.proposer.proposer_of(1) == 2
    assert [o.slot for o in _orders(outbox)] == []  # slot 0 has not committed here yet
    digest = slot_digest(0, reproposed)
    for member in (0, 1, 3):
        core.on_message(KEYS4.sign(member, OrderReady(1, 0, digest)), 1.0)
    assert core.committed(0) is not None
    assert _orders(outbox) == [Order(1, 1, (_ref(3, 0),))]  # the token arrived


def test_a_batch_another_member_got_committed_leaves_every_queue() -> None:
    core, outbox = _core(MovingProposer, member=1)
    core.batch_available(_ref(2, 0), 0.0)
    _commit_by_votes(core, Order(0, 0, (_ref(2, 0),)))  # member 0 ordered it first
    assert _orders(outbox) == []  # nothing left to propose in member 1's turn


def test_a_stalled_turn_excludes_its_member_keeping_at_most_f() -> None:
    small, _ = _core(MovingProposer, member=0)
    assert small.proposer.exclusions(2) == (2,)  # f = 1
    core, _ = _core(MovingProposer, member=0, n=7)  # f = 2
    assert core.proposer.exclusions(3) == (3,)
    core.suspend()
    core.install_view(1, (), 0, 0.0, excluded=(3,))  # rotation 0 1 2 4 5 6
    culprit = core.proposer.proposer_of(4)
    assert culprit == 6 and core.proposer.exclusions(4) == (3, 6)
    core.suspend()
    core.install_view(2, (), 0, 0.0, excluded=(3, 6))  # rotation 0 1 2 4 5
    assert core.proposer.proposer_of(0) == 2
    assert core.proposer.exclusions(0) == (6, 2)  # the oldest exclusion is lifted


def test_a_new_view_may_exclude_at_most_f_distinct_members_of_the_cluster() -> None:
    core, _ = _core(MovingProposer, member=0, n=7)
    valid = core.proposer.exclusions_valid
    assert valid(()) and valid((3,)) and valid((3, 6))
    assert not valid((3, 3))
    assert not valid((1, 2, 3))
    assert not valid((7,))


# -- granting -------------------------------------------------------------------------------


def _request(core: Ordering, origin: int, counter: int, digest: bytes | None = None) -> None:
    ref = _ref(origin, counter)
    core.on_request(KEYS4.sign(origin, Request(counter, ref.digest if digest is None
                                                   else digest)))


def _grants(outbox: Outbox) -> list[tuple[int | None, Order]]:
    return [(dest, m) for dest, m in outbox.sends if type(m) is Order]


def test_the_leader_grants_a_requested_slot_to_the_origin_and_itself() -> None:
    core, outbox = _core(GrantingProposer, member=0)
    _request(core, 2, 0)
    grant = Order(0, 0, (_ref(2, 0),))
    assert _grants(outbox) == [(2, grant), (0, grant)]
    outbox.sends.clear()
    _request(core, 0, 0)  # its own batch: the grant goes to itself once
    assert _grants(outbox) == [(0, Order(0, 1, (_ref(0, 0),)))]


def test_one_slot_per_batch_ever() -> None:
    core, outbox = _core(GrantingProposer, member=0)
    _request(core, 2, 0)
    _request(core, 2, 0)  # a repeat gets the same grant again
    assert [g.slot for _, g in _grants(outbox)] == [0, 0, 0, 0]
    outbox.sends.clear()
    _request(core, 2, 0, digest=bytes(32))  # another value of the granted batch: nothing
    assert _grants(outbox) == [] and outbox.dropped["request-not-granted"] == 1


def test_an_early_request_waits_for_its_predecessors_grant() -> None:
    core, outbox = _core(GrantingProposer, member=0)
    _request(core, 3, 2)
    _request(core, 3, 1)
    assert _grants(outbox) == [] and outbox.dropped["request-not-granted"] == 2
    _request(core, 3, 0)  # unblocks both, in counter order, in consecutive slots
    granted = [(g.slot, g.refs) for dest, g in _grants(outbox) if dest == 3]
    assert granted == [(0, (_ref(3, 0),)), (1, (_ref(3, 1),)), (2, (_ref(3, 2),))]


def test_requests_far_ahead_are_not_remembered() -> None:
    core, outbox = _core(GrantingProposer, member=0, brb_window=4)
    _request(core, 3, 4)  # beyond the window: forgotten
    for counter in range(4):
        _request(core, 3, counter)
    assert [g.refs[0].counter for dest, g in _grants(outbox) if dest == 3] == [0, 1, 2, 3]


def test_grants_stop_at_the_end_of_the_slot_window() -> None:
    core, outbox = _core(GrantingProposer, member=0, slot_window=4, checkpoint_interval=4,
                         log_retention_slots=8)
    for counter in range(5):
        _request(core, 1, counter)
    assert [g.slot for dest, g in _grants(outbox) if dest == 1] == [0, 1, 2, 3]
    assert outbox.dropped["request-not-granted"] == 1


def test_only_the_leader_grants_and_nobody_proposes_on_its_own() -> None:
    follower, outbox = _core(GrantingProposer, member=1)
    _request(follower, 2, 0)
    assert _grants(outbox) == [] and outbox.dropped["request-not-granted"] == 1
    leader, leader_out = _core(GrantingProposer, member=0)
    leader.batch_available(_ref(2, 0), 0.0)
    assert _grants(leader_out) == []  # batches wait for their origin's request


def test_a_new_leader_grants_from_the_first_free_slot_skipping_reproposed_batches() -> None:
    from btob.core.wire import Reproposal

    core, outbox = _core(GrantingProposer, member=1)
    core.suspend()
    core.install_view(1, (Reproposal(0, (_ref(2, 0),)),), 1, 1.0)
    _request(core, 2, 0)  # re-proposed already: no second slot for it
    assert _grants(outbox) == []
    _request(core, 2, 1)
    assert _grants(outbox) == [(2, Order(1, 1, (_ref(2, 1),))), (1, Order(1, 1, (_ref(2, 1),)))]
    assert core.proposer.held() == 1  # type: ignore[attr-defined]


def test_a_fixed_sequencer_proposes_no_slot_that_committed_here_by_a_proof() -> None:
    """A lagging sequencer learns slots by catch-up: its next proposal goes above them, not
    into a slot already committed (its batches would wait there for nothing)."""
    leader, outbox = _core(FixedProposer, member=0, slots_in_flight_max=4)
    _commit_by_proof(leader, 0, (_ref(1, 0),))
    _commit_by_proof(leader, 1, (_ref(2, 0),))  # proven before this member got to it
    leader.slot_delivered(0, 0.0)
    leader.batch_available(_ref(3, 0), 0.0)
    assert [o.slot for o in _orders(outbox)] == [2]
