"""Recovery: boundary snapshots kept while they can still stabilise, and the counters a member
restored from an empty durable state learns from its peers."""

from __future__ import annotations

import pytest

from btob import CountersUnknown, DurableState, Member, Settings
from btob.core.wire import Checkpoint, Status

from ..helpers import Keys, Router


def make(keys: Keys, member: int = 1, **settings: object) -> Member:
    return Member(member=member, registry=keys.registry, signing_key=keys.keys[member],
                  cluster_id=keys.cluster_id, settings=Settings(**settings))  # type: ignore[arg-type]


# -- snapshots and compaction -----------------------------------------------------------------


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
    assert max(held) <= 8 // 4 + 1, held


# -- restore ----------------------------------------------------------------------------------


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


def test_a_member_alone_in_its_cluster_has_no_counters_to_learn() -> None:
    keys = Keys(1)
    alone = make(keys, member=0)
    alone.restore(DurableState.EMPTY, 0.0)
    assert alone.statistics().counters_known
    assert str(alone.submit(b"p", 0.0)) == "0:0"
