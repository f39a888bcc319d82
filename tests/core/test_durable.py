"""The durable-state contract: a group commit of several steps (``DurableChanges.then``)
leaves the same state as committing them one by one; records survive their encoding."""

from __future__ import annotations

from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from btob.core.durable import DurableChanges, DurableState, SlotRecord, Snapshot

from ..strategies import change_sequences


@settings(max_examples=200, deadline=None)
@given(change_sequences())
def test_merged_changes_apply_like_the_steps_one_by_one(steps: list[DurableChanges]) -> None:
    one_by_one = reduce(DurableState.apply, steps, DurableState.EMPTY)
    merged = reduce(DurableChanges.then, steps, DurableChanges.EMPTY)
    assert DurableState.EMPTY.apply(merged) == one_by_one


@settings(max_examples=200, deadline=None)
@given(change_sequences(), st.data())
def test_merging_is_associative(steps: list[DurableChanges], data: st.DataObject) -> None:
    """A group may be merged in any bracketing (the node merges it as a balanced tree)."""

    def bracketed(part: list[DurableChanges]) -> DurableChanges:
        if not part:
            return DurableChanges.EMPTY
        if len(part) == 1:
            return part[0]
        cut = data.draw(st.integers(1, len(part) - 1))
        return bracketed(part[:cut]).then(bracketed(part[cut:]))

    one_by_one = reduce(DurableState.apply, steps, DurableState.EMPTY)
    assert DurableState.EMPTY.apply(bracketed(steps)) == one_by_one


def test_a_key_deleted_then_put_again_survives_the_merge() -> None:
    """Regression: the merge kept the earlier delete, applied after the later put."""
    state = DurableState(entries={"k": b"old"})
    steps = [DurableChanges(delete=("k",)), DurableChanges(put=(("k", b"new"),))]
    assert state.apply(steps[0].then(steps[1])).entries == {"k": b"new"}


@given(change_sequences())
def test_slots_and_snapshots_decode_to_themselves(steps: list[DurableChanges]) -> None:
    for step in steps:
        for record in step.slots:
            assert SlotRecord.decode(record.encode()) == record
        if step.snapshot is not None:
            assert Snapshot.decode(step.snapshot.encode()) == step.snapshot
