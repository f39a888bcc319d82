"""The crash-only baseline core: one order everywhere, no signatures, btob's batching."""

from __future__ import annotations

import pytest

from btob import BacklogFull, MsgId, PayloadTooLarge, Settings
from btob.bench.baseline import SEQUENCER, CrashOnlySequencer


def _run_baseline(n: int, submits: list[tuple[int, bytes]], settings: Settings,
                  ) -> list[list[MsgId]]:
    """Drive n baseline cores over a perfect in-order network; every member's deliveries."""
    cores = [CrashOnlySequencer(member=i, n=n, settings=settings) for i in range(n)]
    delivered: list[list[MsgId]] = [[] for _ in range(n)]
    for member, payload in submits:
        cores[member].submit(payload, 0.0)
    moved = True
    while moved:
        moved = False
        for core in cores:
            frames, deliveries = core.take_outputs()
            delivered[core.member] += [d.msg_id for d in deliveries]
            for out in frames:
                cores[out.destination].receive(out.frame, 0.0)
                moved = True
    return delivered


def test_baseline_delivers_one_order_everywhere_fifo_per_origin() -> None:
    submits = [(m, b"%d-%d" % (m, k)) for k in range(40) for m in (0, 1, 3)]
    delivered = _run_baseline(4, submits, Settings(batch_payloads_max=7,
                                                   own_batches_in_flight_max=2))
    assert all(d == delivered[0] for d in delivered)
    assert sorted(delivered[0]) == sorted(MsgId(m, k) for k in range(40) for m in (0, 1, 3))
    for origin in (0, 1, 3):
        counters = [i.counter for i in delivered[0] if i.origin == origin]
        assert counters == sorted(counters)


def test_baseline_sends_no_signatures_and_n_messages_per_batch() -> None:
    core = CrashOnlySequencer(member=2, n=4)
    core.submit(b"x" * 10, 0.0)
    frames, _ = core.take_outputs()
    assert [f.destination for f in frames] == [SEQUENCER]  # UB: only to the sequencer
    stats = core.statistics()
    assert stats.signatures_made == stats.signatures_verified == 0
    seq = CrashOnlySequencer(member=SEQUENCER, n=4)
    seq.receive(frames[0].frame, 0.0)
    out, deliveries = seq.take_outputs()
    assert sorted(f.destination for f in out) == [1, 2, 3]
    assert [d.msg_id for d in deliveries] == [MsgId(2, 0)]


def test_baseline_batches_like_btob_and_refuses_like_btob() -> None:
    settings = Settings(batch_payloads_max=4, own_batches_in_flight_max=1,
                        batch_delay_s=0.01, pending_payloads_max=10)
    core = CrashOnlySequencer(member=1, n=4, settings=settings)
    core.submit(b"a", 0.0)
    assert core.take_outputs()[0] == []  # waits for company up to the delay
    core.tick(0.011)
    assert len(core.take_outputs()[0]) == 1  # the delay passed: the batch leaves
    for k in range(9):
        core.submit(b"b%d" % k, 0.02)
    assert core.take_outputs()[0] == []  # one batch in flight already
    with pytest.raises(BacklogFull):
        for _ in range(5):
            core.submit(b"c", 0.02)
    with pytest.raises(PayloadTooLarge):
        core.submit(b"x" * (settings.payload_bytes_max + 1), 0.0)


def test_the_baseline_sequencer_batches_its_own_payloads_between_outside_inputs() -> None:
    # Regression: it cut one batch per own payload (nothing acknowledges its own batches),
    # which overflowed the transport's send queues and hung a 100,000-payload run.
    settings = Settings(own_batches_in_flight_max=2)
    seq = CrashOnlySequencer(member=SEQUENCER, n=4, settings=settings)
    for k in range(100):
        seq.submit(b"p%d" % k, 0.0)
    frames, deliveries = seq.take_outputs()
    assert len(frames) <= 2 * 3  # two batches to three peers
    seq.tick(0.05)
    frames, more = seq.take_outputs()
    assert len(deliveries) + len(more) == 100  # the rest left together on the next input


def test_a_member_outside_the_cluster_is_refused() -> None:
    with pytest.raises(ValueError, match=r"member 4 is not in 0\.\.3"):
        CrashOnlySequencer(member=4, n=4)


def test_orders_out_of_sequence_wait_and_repeats_are_ignored() -> None:
    seq = CrashOnlySequencer(member=SEQUENCER, n=3)
    for origin in (1, 2):
        member = CrashOnlySequencer(member=origin, n=3)
        member.submit(b"from %d" % origin, 0.0)
        (request,), _ = member.take_outputs()
        seq.receive(request.frame, 0.0)
    orders, _ = seq.take_outputs()
    to_one = [o.frame for o in orders if o.destination == 1]
    assert len(to_one) == 2
    follower = CrashOnlySequencer(member=1, n=3)
    follower.receive(to_one[1], 0.0)  # sequence number 1 before 0
    assert follower.take_outputs()[1] == []
    follower.receive(to_one[0], 0.0)
    follower.receive(to_one[0], 0.0)  # a duplicate of a delivered order
    _, deliveries = follower.take_outputs()
    assert [(d.index, d.msg_id) for d in deliveries] == [(0, MsgId(1, 0)), (1, MsgId(2, 0))]
    stats = follower.statistics()
    assert stats.deliveries == 2 and stats.slots_delivered == 2
    assert stats.open_slots == 0  # the duplicate is not kept either
