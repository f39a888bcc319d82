"""The durable-state contract: changes compose as one group commit, a snapshot replaces the
slots below it, and stored records round-trip (damage is a WireError)."""

from __future__ import annotations

import pytest

from btob import WireError
from btob.core.durable import DurableChanges, DurableState, SlotRecord, Snapshot
from btob.core.wire import Batch, BatchRef, CheckpointCert, Vote

D = bytes(32)
SIG = bytes(range(64))


def _record(slot: int) -> SlotRecord:
    batch = Batch(slot, (b"p%d" % slot,))
    return SlotRecord(0, slot, (BatchRef(1, slot, batch.digest()),), (Vote(2, SIG),), (batch,))


def _snapshot(upto: int) -> Snapshot:
    return Snapshot(CheckpointCert(upto, D, (Vote(0, SIG),)), b"state at %d" % upto)


def test_empty_changes_and_state_are_false() -> None:
    assert not DurableChanges.EMPTY and not DurableState.EMPTY
    assert DurableChanges(put=(("k", b"v"),))
    assert DurableChanges(snapshot=_snapshot(16))
    assert DurableState.EMPTY.apply(DurableChanges.EMPTY) is DurableState.EMPTY


def test_changes_compose_in_order() -> None:
    first = DurableChanges(put=(("a", b"1"), ("b", b"1")), slots=(_record(0),))
    later = DurableChanges(put=(("a", b"2"),), delete=("b",), slots=(_record(1),))
    both = first.then(later)
    assert dict(both.put) == {"a": b"2"} and both.delete == ("b",)
    assert [r.slot for r in both.slots] == [0, 1]
    assert first.then(DurableChanges.EMPTY) is first
    assert DurableChanges.EMPTY.then(later) is later
    state = DurableState(entries={"b": b"0", "c": b"0"})
    assert state.apply(both) == state.apply(first).apply(later)
    assert dict(state.apply(both).entries) == {"a": b"2", "c": b"0"}


def test_a_snapshot_replaces_the_slots_below_it() -> None:
    changes = DurableChanges(slots=tuple(_record(s) for s in range(20)))
    with_snapshot = changes.then(DurableChanges(snapshot=_snapshot(16)))
    assert [r.slot for r in with_snapshot.slots] == [16, 17, 18, 19]
    state = DurableState.EMPTY.apply(changes).apply(DurableChanges(snapshot=_snapshot(16)))
    assert state.snapshot == _snapshot(16) and [r.slot for r in state.slots] == [16, 17, 18, 19]
    newer = state.apply(DurableChanges(snapshot=_snapshot(32)))
    assert newer.snapshot is not None and newer.snapshot.upto == 32 and newer.slots == ()


def test_records_and_snapshots_round_trip_through_their_bytes() -> None:
    record = _record(3)
    assert SlotRecord.decode(record.encode()) == record
    snapshot = _snapshot(16)
    assert Snapshot.decode(snapshot.encode()) == snapshot and snapshot.upto == 16


@pytest.mark.parametrize("damage", [b"", b"\xc1", b"\x93\x01\x02\x03"])
def test_damaged_records_are_wire_errors(damage: bytes) -> None:
    with pytest.raises(WireError):
        SlotRecord.decode(damage)
    with pytest.raises(WireError):
        Snapshot.decode(damage)
    with pytest.raises(WireError):
        Snapshot.decode(_snapshot(16).encode()[:-3])
