"""Hypothesis strategies for the durable-state contract: sequences of changes a member could
commit (keys drawn from a few, so puts and deletes collide; slots appended in slot order;
snapshots now and then, each dropping the slots below it)."""

from __future__ import annotations

from hypothesis import strategies as st

from btob.core.durable import DurableChanges, SlotRecord, Snapshot
from btob.core.wire import Batch, BatchRef, CheckpointCert, Vote

KEYS = st.sampled_from([f"k{i}" for i in range(6)] + ["echo/3/1", "prepared/0/7", ""])
VALUES = st.binary(max_size=40)


def _slot(view: int, slot: int, payload: bytes) -> SlotRecord:
    batch = Batch(slot, (payload,))
    ref = BatchRef(slot % 4, slot, batch.digest())
    return SlotRecord(view, slot, (ref,), (Vote(slot % 4, bytes(64)),), (batch,))


@st.composite
def change_sequences(draw: st.DrawFn, max_steps: int = 12) -> list[DurableChanges]:
    """A list of changes in commit order; together they append slots 0, 1, 2, ... with
    gaps (never one twice), and now and then a snapshot, never below the one before."""
    steps: list[DurableChanges] = []
    next_slot = upto_before = 0
    for _ in range(draw(st.integers(0, max_steps))):
        put = tuple(draw(st.lists(st.tuples(KEYS, VALUES), max_size=4)))
        delete = tuple(draw(st.lists(KEYS, max_size=3, unique=True)))
        slots = []
        for _ in range(draw(st.integers(0, 3))):
            next_slot += draw(st.integers(0, 2))
            slots.append(_slot(draw(st.integers(0, 3)), next_slot, draw(VALUES)))
            next_slot += 1
        snapshot = None
        if draw(st.booleans()) and draw(st.booleans()):
            # now and then past the next slot (a snapshot fetched from peers), so that a
            # later slot may fall below it
            upto = draw(st.integers(upto_before, max(upto_before, next_slot + 3)))
            upto_before = upto  # a stable checkpoint never goes back
            cert = CheckpointCert(upto, draw(st.binary(min_size=32, max_size=32)),
                                  (Vote(0, bytes(64)),))
            snapshot = Snapshot(cert, draw(VALUES))
        # put keys are unique within one step, as in a merged DurableChanges
        steps.append(DurableChanges(tuple(dict(put).items()), delete, tuple(slots), snapshot))
    return steps
