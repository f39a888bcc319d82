"""The durable-state contract: changes compose as their steps would, records round-trip."""

from __future__ import annotations

from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btob import WireError
from btob.core.durable import DurableChanges, DurableState, SlotRecord, Snapshot
from btob.core.wire import Batch, BatchRef, CheckpointCert, Vote

from ..strategies import change_sequences


def _slot(slot: int) -> SlotRecord:
    batch = Batch(slot, (b"p%d" % slot,))
    return SlotRecord(0, slot, (BatchRef(1, slot, batch.digest()),),
                      (Vote(0, bytes(64)),), (batch,))


def _snapshot(upto: int) -> Snapshot:
    return Snapshot(CheckpointCert(upto, bytes(32), (Vote(1, bytes(64)),), b"\x01" * 32),
                    b"state-%d" % upto)


KEYS = st.sampled_from(["a", "b", "c", "d"])
CHANGES = st.builds(
    DurableChanges,
    put=st.lists(st.tuples(KEYS, st.binary(max_size=3)), max_size=3).map(
        lambda kv: tuple(dict(kv).items())),
    delete=st.lists(KEYS, max_size=2, unique=True).map(tuple),
    slots=st.just(()),
    snapshot=st.none() | st.integers(0, 3).map(_snapshot),
)


@given(st.lists(CHANGES, max_size=6))
def test_a_group_of_changes_commits_to_what_its_steps_commit_one_by_one(
        steps: list[DurableChanges]) -> None:
    one_by_one, merged = DurableState.EMPTY, DurableChanges.EMPTY
    for changes in steps:
        # A key a step both puts and deletes is never produced by a member; keep it out.
        changes = DurableChanges(tuple((k, v) for k, v in changes.put
                                       if k not in changes.delete),
                                 changes.delete, changes.slots, changes.snapshot)
        one_by_one = one_by_one.apply(changes)
        merged = merged.then(changes)
    assert DurableState.EMPTY.apply(merged) == one_by_one


def test_a_later_put_revives_a_key_an_earlier_step_deleted() -> None:
    merged = DurableChanges(put=(("k", b"1"),)).then(DurableChanges(delete=("k",))).then(
        DurableChanges(put=(("k", b"2"),)))
    assert dict(DurableState.EMPTY.apply(merged).entries) == {"k": b"2"}


def test_a_snapshot_drops_the_slots_below_it() -> None:
    state = DurableState.EMPTY.apply(DurableChanges(slots=tuple(_slot(s) for s in range(6))))
    state = state.apply(DurableChanges(slots=(_slot(6),), snapshot=_snapshot(4)))
    assert [s.slot for s in state.slots] == [4, 5, 6]
    assert state.snapshot == _snapshot(4)
    merged = DurableChanges(slots=(_slot(0), _slot(1))).then(
        DurableChanges(snapshot=_snapshot(1)))
    assert [s.slot for s in merged.slots] == [1]


def test_empty_changes_and_state_are_false_and_compose_away() -> None:
    assert not DurableChanges.EMPTY and not DurableState.EMPTY
    changes = DurableChanges(delete=("x",))
    assert changes and DurableChanges.EMPTY.then(changes) is changes
    assert changes.then(DurableChanges.EMPTY) is changes
    assert DurableState.EMPTY.apply(DurableChanges.EMPTY) is DurableState.EMPTY


def test_records_round_trip_and_damage_is_a_wire_error() -> None:
    assert SlotRecord.decode(_slot(3).encode()) == _slot(3)
    assert Snapshot.decode(_snapshot(8).encode()) == _snapshot(8)
    assert _snapshot(8).upto == 8
    with pytest.raises(WireError):
        SlotRecord.decode(_slot(3).encode()[:-2])
    with pytest.raises(WireError):
        Snapshot.decode(b"\x01")


@settings(max_examples=200, deadline=None)
@given(change_sequences())
def test_merged_changes_apply_like_the_steps_one_by_one(steps: list[DurableChanges]) -> None:
    """With delivered slots and snapshots too (the node merges whole groups of steps)."""
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
