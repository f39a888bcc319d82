"""Recovery: boundary snapshots and the compaction a stable one allows, restore from the
durable state, counters learned after an empty one, and a transferred snapshot installed."""

from __future__ import annotations

import pytest

from btob import CountersUnknown, DurableState, Member, Settings
from btob.core.durable import Snapshot
from btob.core.effects import Outbox
from btob.core.snapshot import MemberState
from btob.core.transfer import ChunkServer
from btob.core.wire import (
    Batch,
    BatchRef,
    Checkpoint,
    CheckpointCert,
    ChunkRequest,
    LogSegment,
    Order,
    Send,
    Status,
    Vote,
    decode_frame,
)

from ..helpers import Keys, Router

SMALL = dict(checkpoint_interval=4, slot_window=8, batch_payloads_max=1)
"""A boundary every four slots, so a short run stabilises several."""


def make(keys: Keys, member: int = 1, **settings: object) -> Member:
    return Member(member=member, registry=keys.registry, signing_key=keys.keys[member],
                  cluster_id=keys.cluster_id, settings=Settings(**settings))  # type: ignore[arg-type]


def _busy_cluster(keys: Keys, payloads: int = 22) -> Router:
    router = Router(keys, **SMALL)
    for k in range(payloads):
        router.members[k % 4].submit(b"p%d" % k, router.now)
        router.pump()
    router.advance(1.0)
    return router


# -- snapshots and compaction -----------------------------------------------------------------


def test_a_stable_boundary_becomes_the_snapshot_and_what_lies_below_it_is_deleted() -> None:
    router = _busy_cluster(Keys(4))
    member = router.members[1]
    snapshot = member.snapshot
    assert snapshot is not None and snapshot.upto >= 16
    assert snapshot.upto % 4 == 0 and snapshot.upto == member.statistics().stable_checkpoint
    changes = member.take_durable()
    assert changes.snapshot == snapshot  # queued for the disk, where it drops older slots
    below = [key for key in changes.delete
             if key.startswith("prep/") and int(key[5:]) < snapshot.upto]
    assert below  # prepared certificates below the snapshot are deleted ...
    assert [key for key, _ in changes.put
            if key.startswith("prep/") and int(key[5:]) < snapshot.upto] == []  # ... not kept
    assert member.held_state()["snapshot_states"] <= 8 // 4


def test_snapshots_of_boundaries_that_never_stabilise_are_not_kept_forever() -> None:
    keys = Keys(4)
    router = Router(keys, checkpoint_interval=4, slot_window=8, batch_payloads_max=1)
    router.allow = lambda src, dst, message: not isinstance(message, Checkpoint)
    for k in range(60):
        router.members[k % 4].submit(b"p%d" % k, router.now)
        router.pump()
    router.advance(2.0)
    held = [m.held_state()["snapshot_states"] for m in router.members]
    assert min(m.next_slot for m in router.members) >= 40  # ten boundaries and more
    assert all(m.statistics().stable_checkpoint == 0 for m in router.members)
    assert all(m.snapshot is None for m in router.members)
    assert max(held) <= 8 // 4 + 1, held


# -- restore ----------------------------------------------------------------------------------


def test_a_restart_resumes_from_the_snapshot_and_delivers_again_only_what_lies_above_it(
        ) -> None:
    keys = Keys(4)
    router = _busy_cluster(keys)
    before = router.members[1]
    state = DurableState.EMPTY.apply(before.take_durable())
    assert state.snapshot is not None and state.snapshot == before.snapshot
    above = MemberState.decode(state.snapshot.state, bytes_max=1 << 20).next_index
    assert 0 < above < len(router.delivered[1])
    back = make(keys, **SMALL)
    back.restore(state, router.now)
    _, redelivered = back.take_outputs()
    assert [d.index for d in redelivered] == list(range(above, len(router.delivered[1])))
    assert [str(d.msg_id) for d in redelivered] == [i for i, _ in router.delivered[1][above:]]
    assert back.snapshot == before.snapshot and back.next_slot == before.next_slot
    assert back.statistics().payloads_submitted == before.statistics().payloads_submitted
    changes = back.take_durable()
    assert changes.slots == () and changes.snapshot is None  # on disk already: not again


def test_a_member_back_from_nothing_continues_above_what_an_honest_peer_vouches_for() -> None:
    """A Byzantine peer that reports huge counters for us cannot push us into a gap (our
    later batches would wait for predecessors forever): the (f+1)-th highest report wins."""
    keys = Keys(4)
    node = make(keys)
    node.restore(DurableState.EMPTY, 0.0)
    with pytest.raises(CountersUnknown):
        node.submit(b"too early", 0.0)

    def status(sender: int, batch: int, payload: int) -> bytes:
        seen = [0] * 8
        seen[2:4] = [batch, payload]  # what it says of member 1
        return keys.sign(sender, Status(0, 0, tuple(seen))).to_frame()

    node.receive(status(3, 10**6, 10**6), 0.1)  # the liar
    with pytest.raises(CountersUnknown):
        node.submit(b"still too early", 0.1)  # one report is not n-1-f = 2
    node.receive(status(2, 3, 7), 0.2)
    assert str(node.submit(b"now", 0.3)) == "1:7"
    assert node.known_counters(1) == (4, 8)  # batch 3 went out, holding payload 7


def test_a_member_restored_from_nothing_takes_payloads_once_its_peers_said_its_counters(
        ) -> None:
    router = Router(Keys(4))
    for k in range(3):
        router.members[3].submit(b"p%d" % k, router.now)
    router.advance(1.0)
    assert all(len(d) == 3 for d in router.delivered)
    wiped = make(Keys(4), member=3)  # its disk is gone: it restores from nothing
    wiped.restore(DurableState.EMPTY, router.now)
    assert not wiped.statistics().counters_known
    with pytest.raises(CountersUnknown):
        wiped.submit(b"too early", router.now)
    router.members[3] = wiped
    router.advance(1.0)  # STATUS from its peers says where its counters stand
    assert wiped.statistics().counters_known
    assert wiped.statistics().payloads_submitted == 3
    assert str(wiped.submit(b"p3", router.now)) == "3:3"  # no id used twice


@pytest.mark.parametrize(("positions", "echoes"), [
    ((0, 0), True),  # nobody delivered a slot: a new cluster, whose members all start so
    ((5, 3), False),  # it may have voted on slots up to a window above where its peers are
    ((10**6, 3), False),  # a liar's report counts, but only up to a window above an honest one
])
def test_a_member_back_from_nothing_signs_no_ordering_vote_where_it_may_have_voted(
        positions: tuple[int, int], echoes: bool) -> None:
    """It forgot what it signed: it signs no ordering message while it learns where the
    cluster stands, and then none for a slot below a window above the peers' positions."""
    keys = Keys(4)
    node = make(keys, slot_window=8, checkpoint_interval=4)
    node.restore(DurableState.EMPTY, 0.0)
    batch = Batch(0, (b"x",))
    node.receive(keys.sign(2, Send(0, batch)).to_frame(), 0.0)
    order = keys.sign(0, Order(0, 0, (BatchRef(2, 0, batch.digest()),))).to_frame()
    node.receive(order, 0.0)

    def echoed() -> bool:
        frames, _ = node.take_outputs()
        return any(decode_frame(f.frame).kind == "ord.echo" for f in frames)

    assert not echoed()  # still learning
    for sender, position in zip((2, 3), positions, strict=True):
        node.receive(keys.sign(sender, Status(position, 0, (0,) * 8)).to_frame(), 0.1)
    assert node.statistics().counters_known
    assert echoed() is echoes
    if positions[0] == 10**6:  # the floor is 3 + 8 + 8, not above a million
        assert node._order.sign_floor == 19


def test_a_member_alone_in_its_cluster_has_no_counters_to_learn() -> None:
    keys = Keys(1)
    alone = make(keys, member=0)
    alone.restore(DurableState.EMPTY, 0.0)
    assert alone.statistics().counters_known
    assert str(alone.submit(b"p", 0.0)) == "0:0"


# -- a transferred snapshot -------------------------------------------------------------------

UPTO = 16  # the first boundary at the default checkpoint interval
KEYS = Keys(4)


def _state(upto: int = UPTO, next_index: int = 5) -> bytes:
    return MemberState.of(upto=upto, chain=bytes(32), next_index=next_index,
                          counters=((0, next_index),), early=(), ordered=(), app=b"").encode()


STATE = _state()


def _cert(state: bytes, voters: tuple[int, ...]) -> CheckpointCert:
    root = MemberState.root_of(state, Settings().chunk_bytes)
    checkpoint = Checkpoint(UPTO, bytes(32), root)
    return CheckpointCert(UPTO, bytes(32), tuple(
        Vote(m, KEYS.sign(m, checkpoint).signature) for m in voters), root)


def _offer_and_serve(node: Member, cert: CheckpointCert, state: bytes) -> int:
    """Peer 2 offers ``cert``; every peer asked for a chunk serves it from ``state``.
    Returns the number of chunks asked for."""
    node.receive(KEYS.sign(2, LogSegment(cert, UPTO, ())).to_frame(), 0.0)
    server = ChunkServer(settings=Settings(), outbox=Outbox())
    asked = 0
    frames, _ = node.take_outputs()
    for out in frames:
        request = decode_frame(out.frame).parse().message
        if isinstance(request, ChunkRequest):
            asked += 1
            chunk = server.serve(request, UPTO, state)
            assert chunk is not None
            node.receive(KEYS.sign(out.destination, chunk).to_frame(), 0.1)
    return asked


def _transferred(state: bytes, voters: tuple[int, ...] = (0, 2, 3),
                 ) -> tuple[Member, CheckpointCert, int]:
    """A fresh member 1 offered ``state`` under a certificate of ``voters``: the member, the
    certificate and the number of chunks it asked for."""
    node = make(KEYS)
    cert = _cert(state, voters)
    return node, cert, _offer_and_serve(node, cert, state)


def test_a_transferred_snapshot_is_adopted_and_queued_for_the_disk() -> None:
    node, cert, asked = _transferred(STATE)
    assert asked == 1
    assert node.next_slot == UPTO and node.transferred_to == 5
    assert node.snapshot == Snapshot(cert, STATE)
    assert node.statistics().stable_checkpoint == UPTO
    assert node.take_durable().snapshot == Snapshot(cert, STATE)


@pytest.mark.parametrize(("state", "reason"), [
    (b"\xff not a member state", "snapshot-undecodable"),
    (_state(upto=2 * UPTO), "snapshot-not-needed"),  # its own upto is not the certified one
])
def test_a_certified_state_that_is_no_use_is_dropped_and_nothing_is_adopted(
        state: bytes, reason: str) -> None:
    node, _, asked = _transferred(state)
    assert asked == 1
    assert node.statistics().dropped[reason] == 1
    assert node.next_slot == 0 and node.transferred_to is None and node.snapshot is None
    assert node.take_durable().snapshot is None


def test_an_offer_with_a_certificate_short_of_a_quorum_is_not_fetched() -> None:
    node, _, asked = _transferred(STATE, voters=(0, 2))
    assert asked == 0
    assert node.statistics().dropped["snapshot-offer-bad-certificate"] == 1
    assert node.next_slot == 0 and node.snapshot is None


def test_an_offer_at_or_below_the_position_is_not_fetched_again() -> None:
    node, cert, _ = _transferred(STATE)
    assert _offer_and_serve(node, cert, STATE) == 0  # it is at UPTO now
    assert node.statistics().dropped["snapshot-offer-not-needed"] == 1
    assert node.statistics().transfer.completed == 1


def test_deferred_state_work_signs_the_same_checkpoints_once_it_is_handed_back() -> None:
    """A member that defers its boundaries' state work sends no CHECKPOINT until the driver
    hands the result back; then it signs the root an inline member signs, and the boundary
    stabilises and compacts alike. A result for a boundary it has left behind is dropped."""
    from btob.core.wire import Checkpoint

    def run(deferred: set[int]) -> tuple[list[bytes], list[int]]:
        router = Router(Keys(4), checkpoint_interval=4, slot_window=8, batch_payloads_max=1)
        for i in deferred:
            router.members[i].defer_state_work = True
        roots: list[bytes] = []
        seen = router.allow
        router.allow = lambda src, dst, message: (
            roots.append(message.state) if isinstance(message, Checkpoint) and src == 0
            and dst == 1 else None) is None and seen(src, dst, message)
        held: list[object] = []
        for k in range(12):
            router.members[k % 4].submit(b"p%d" % k, router.now)
            router.pump()
            for i in deferred:
                held += router.members[i].take_state_work()
        if deferred:
            assert held and roots == []  # nothing signed before the work is done
            for work in held:
                router.members[0].state_done(work.run(), router.now)  # type: ignore[attr-defined]
            router.pump()
        router.advance(1.0)
        for i in deferred:
            for work in router.members[i].take_state_work():
                router.members[i].state_done(work.run(), router.now)
        router.advance(1.0)
        return roots, [m.statistics().stable_checkpoint for m in router.members]

    inline_roots, inline_stable = run(set())
    deferred_roots, deferred_stable = run({0})
    assert deferred_roots[:len(inline_roots)] == inline_roots and inline_roots
    assert deferred_stable == inline_stable and min(inline_stable) >= 8
    # a result for a boundary below the member's snapshot changes nothing
    router = Router(Keys(4), checkpoint_interval=4, slot_window=8, batch_payloads_max=1)
    member = router.members[0]
    member.defer_state_work = True
    for k in range(8):
        member.submit(b"q%d" % k, router.now)
        router.pump()
    stale = member.take_state_work()
    for work in stale:
        member.state_done(work.run(), router.now)
    router.advance(1.0)
    before = (member.snapshot, member.statistics().stable_checkpoint, member.held_state())
    assert before[0] is not None
    member.state_done(stale[0].run(), router.now)
    assert member.take_outputs() == ([], [])  # not signed again
    assert (member.snapshot, member.statistics().stable_checkpoint,
            member.held_state()) == before
