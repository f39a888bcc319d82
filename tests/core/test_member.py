"""The member's input gate and submission limits."""

from __future__ import annotations

import pytest

from btob import BacklogFull, ConfigError, Member, PayloadTooLarge, Settings
from btob.core.wire import Batch, Chunk, ChunkRequest, Echo, Send, Signed

from ..helpers import Keys


def make(keys: Keys, member: int = 1, **settings: object) -> Member:
    return Member(member=member, registry=keys.registry, signing_key=keys.keys[member],
                  cluster_id=keys.cluster_id, settings=Settings(**settings))  # type: ignore[arg-type]


def test_bad_frames_are_dropped_and_counted_never_raised() -> None:
    keys = Keys(4)
    node = make(keys)
    good = keys.sign(2, Send(0, Batch(0, (b"x",))))
    other_cluster = Keys(4, cluster_id=b"another").sign(2, Send(0, Batch(0, (b"x",))))
    impostor = Signed(2, good.message, good.body, keys.sign(3, good.message).signature)
    own = keys.sign(1, Echo(2, 0, bytes(32)))
    for frame in (b"", b"\x00garbage", other_cluster.to_frame(), impostor.to_frame(),
                  own.to_frame(), good.to_frame()[:-3]):
        node.receive(frame, 0.0)
    stats = node.statistics()
    assert stats.dropped["malformed-frame"] == 3
    assert stats.dropped["bad-signature"] == 2
    assert stats.dropped["own-frame-returned"] == 1
    frames, _ = node.take_outputs()
    assert frames == []  # nothing reacted to the bad input
    node.receive(good.to_frame(), 0.0)  # and it still works: echoes the genuine SEND
    frames, _ = node.take_outputs()
    assert {f.destination for f in frames} == {0, 2, 3}


def test_chunks_are_served_only_from_a_stable_snapshot_and_taken_only_when_fetching() -> None:
    keys = Keys(4)
    node = make(keys)
    node.receive(keys.sign(2, ChunkRequest(16, 0)).to_frame(), 0.0)
    node.receive(keys.sign(3, Chunk(16, bytes(32), 1, 0, b"", ())).to_frame(), 0.0)
    dropped = node.statistics().dropped
    assert dropped["chunkreq-not-held"] == 1 and dropped["chunk-unexpected"] == 1
    assert node.take_outputs() == ([], [])


def test_submit_limits() -> None:
    keys = Keys(4)
    node = make(keys, payload_bytes_max=10, pending_payloads_max=2, own_batches_in_flight_max=1,
                batch_payloads_max=1, batch_bytes_max=10)
    with pytest.raises(PayloadTooLarge):
        node.submit(b"x" * 11, 0.0)
    ids = [node.submit(b"a", 0.0) for _ in range(3)]  # one in flight, two pending
    assert [str(i) for i in ids] == ["1:0", "1:1", "1:2"]
    with pytest.raises(BacklogFull):
        node.submit(b"b", 0.0)
    assert node.statistics().pending_payloads == 2


def test_configuration_errors() -> None:
    keys = Keys(4)
    with pytest.raises(ConfigError, match="does not match"):
        Member(member=1, registry=keys.registry, signing_key=keys.keys[2],
               cluster_id=keys.cluster_id)
    with pytest.raises(ConfigError, match="outside"):
        Member(member=4, registry=keys.registry, signing_key=keys.keys[0],
               cluster_id=keys.cluster_id)
    with pytest.raises(ConfigError):
        Member(member=0, registry=keys.registry, signing_key=keys.keys[0],
               cluster_id=keys.cluster_id, brb="gossip")
    with pytest.raises(ConfigError):
        Settings(batch_payloads_max=0)


def test_four_members_wired_directly_deliver_the_same_sequence() -> None:
    keys = Keys(4)
    nodes = [make(keys, i) for i in range(4)]
    for i, node in enumerate(nodes):
        for k in range(5):
            node.submit(b"%d-%d" % (i, k), 0.0)
    delivered: list[list[str]] = [[] for _ in nodes]
    pending = True
    while pending:
        pending = False
        for i, node in enumerate(nodes):
            frames, deliveries = node.take_outputs()
            delivered[i] += [str(d.msg_id) for d in deliveries]
            for out in frames:
                pending = True
                nodes[out.destination].receive(out.frame, 0.0)
    assert len(delivered[0]) == 20
    assert all(d == delivered[0] for d in delivered)


def test_late_matching_votes_are_dropped_before_their_signature_check() -> None:
    from btob import SimConfig, simulate

    result = simulate(SimConfig(n=4, seed=3, messages=200, rate=2000.0))
    assert result.ok and result.complete
    late = sum(s.dropped.get("late-vote-unchecked", 0) for s in result.statistics)
    received = sum(s.frames_received for s in result.statistics)
    verified = sum(s.signatures_verified for s in result.statistics)
    assert late > 0
    assert verified <= received - late  # each skipped vote saved a verification


def test_a_member_back_from_nothing_continues_above_what_an_honest_peer_vouches_for() -> None:
    """A Byzantine peer that reports huge counters for us cannot push us into a gap (our
    later batches would wait for predecessors forever): the (f+1)-th highest report wins."""
    from btob import CountersUnknown, DurableState
    from btob.core.wire import Status

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


def test_snapshots_of_boundaries_that_never_stabilise_are_not_kept_forever() -> None:
    from btob.core.wire import Checkpoint

    from ..helpers import Router

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


def test_a_member_restored_from_nothing_takes_payloads_once_its_peers_said_its_counters(
        ) -> None:
    from btob import CountersUnknown
    from btob.core.durable import DurableState

    from ..helpers import Router

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
    from btob.core.durable import DurableState

    keys = Keys(1)
    alone = make(keys, member=0)
    alone.restore(DurableState.EMPTY, 0.0)
    assert alone.statistics().counters_known
    assert str(alone.submit(b"p", 0.0)) == "0:0"
