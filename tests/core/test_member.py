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
