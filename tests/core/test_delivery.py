"""The delivery log: deterministic, gap-free, duplicate-free, FIFO per origin, bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from btob.core.delivery import DeliveryLog, MsgId
from btob.core.wire import Batch, BatchRef


def _slot(*batches: tuple[int, int, int]) -> tuple[tuple[BatchRef, ...], tuple[Batch, ...]]:
    """Batches given as (origin, first counter, count)."""
    bs = tuple(Batch(first, tuple(b"%d:%d" % (o, first + i) for i in range(count)))
               for o, first, count in batches)
    pairs = zip(batches, bs, strict=True)
    refs = tuple(BatchRef(o, first, b.digest()) for (o, first, _), b in pairs)
    return refs, bs


def test_in_order_batches_deliver_with_consecutive_indexes() -> None:
    log = DeliveryLog(early_payloads_max_per_origin=10)
    out = log.deliver_slot(*_slot((1, 0, 2), (2, 0, 1)))
    assert [(d.index, str(d.msg_id)) for d in out] == [(0, "1:0"), (1, "1:1"), (2, "2:0")]
    assert out[0].payload == b"1:0" and out[2].origin == 2


def test_duplicates_are_skipped() -> None:
    log = DeliveryLog(early_payloads_max_per_origin=10)
    log.deliver_slot(*_slot((1, 0, 2)))
    out = log.deliver_slot(*_slot((1, 0, 3)))
    assert [str(d.msg_id) for d in out] == ["1:2"]  # 1:0 and 1:1 were delivered already
    assert log.next_index == 3


def test_early_payloads_wait_for_their_predecessor() -> None:
    log = DeliveryLog(early_payloads_max_per_origin=10)
    assert log.deliver_slot(*_slot((1, 2, 2))) == []
    assert log.early_held() == 2
    out = log.deliver_slot(*_slot((1, 0, 2)))
    assert [d.msg_id for d in out] == [MsgId(1, c) for c in range(4)]
    assert log.early_held() == 0


def test_early_buffer_is_bounded() -> None:
    log = DeliveryLog(early_payloads_max_per_origin=3)
    log.deliver_slot(*_slot((1, 5, 10)))
    assert log.early_held() == 3 and log.dropped_early == 7


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 8), st.integers(1, 4)),
                min_size=1, max_size=12))
def test_deliveries_are_fifo_and_deterministic(batches: list[tuple[int, int, int]]) -> None:
    logs = [DeliveryLog(early_payloads_max_per_origin=100) for _ in range(2)]
    outs = [[d for b in batches for d in log.deliver_slot(*_slot(b))] for log in logs]
    assert outs[0] == outs[1]
    seen: dict[int, int] = {}
    for i, d in enumerate(outs[0]):
        assert d.index == i
        assert d.msg_id.counter == seen.get(d.origin, 0)  # gap-free FIFO per origin
        seen[d.origin] = d.msg_id.counter + 1
