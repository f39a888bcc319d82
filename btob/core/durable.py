"""What a member keeps on disk: raft's ``Ready`` contract, made explicit.

Theory of operation. A member never has to remember what it *received*: peers retransmit, and
a vote it did not count yet can be counted again. It must remember what it *said*, because an
honest member that contradicts a message it signed - a second ECHO for one slot, a second SEND
for one counter - is indistinguishable from a Byzantine one, and a quorum argument that counts
it as honest breaks. So each step of a member produces, next to its frames and deliveries, a
:class:`DurableChanges`: the signed messages that may conflict with a later one (keyed by what
they would conflict on), its prepared certificates (a VIEW-CHANGE must report them), the
payloads it accepted, the slots it delivered, and - at a stable checkpoint - a snapshot that
replaces everything below it. The driver commits the changes (in a worker thread, several
steps at once) *before* any frame of those steps leaves, and before their deliveries are
published; a member restarted from the committed :class:`DurableState` (``Member.restore``)
signs nothing that contradicts what it signed before.

The store is generic: keyed entries (put/delete), an append-only tail of delivered slots and
one snapshot. Only the member interprets the keys. Everything here is bounded by the member's
windows: entries below a stable checkpoint are deleted when it stabilises, and the snapshot
replaces the slots below it, so disk use is O(snapshot + window), independent of history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, TypeVar

import attrs

from btob.core.codec import BYTES, INT, Wired, pack, record, unpack, wired
from btob.core.wire import BATCHES, REFS, VOTES, Batch, BatchRef, CheckpointCert, Vote

__all__ = ["DurableChanges", "DurableState", "SlotRecord", "Snapshot"]

W = TypeVar("W", bound=Wired)


def _stored(cls: type[W], data: bytes) -> W:
    """A record read back from the store: our own bytes, bounded by their own length."""
    return cls.from_wire(unpack(data, frame_bytes_max=len(data), items_max=len(data)))


@wired("slot record")
@attrs.frozen
class SlotRecord(Wired):
    """A delivered slot: its value, the commit certificate that proves it (empty for a slot
    settled by a stable checkpoint) and the batches it names."""

    WIRE: ClassVar = (INT, INT, REFS, VOTES, BATCHES)
    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    certificate: tuple[Vote, ...]
    batches: tuple[Batch, ...]

    def encode(self) -> bytes:
        """The record's bytes in the store."""
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> SlotRecord:
        """The record stored as ``data``; :class:`~btob.WireError` if it is damaged."""
        return _stored(cls, data)


@wired("snapshot")
@attrs.frozen
class Snapshot(Wired):
    """A member's state at a stable checkpoint: the certificate (which signs the state's
    digest) and the state itself (protocol state and application snapshot, see
    :mod:`btob.core.snapshot`)."""

    WIRE: ClassVar = (record(CheckpointCert), BYTES)
    cert: CheckpointCert
    state: bytes

    @property
    def upto(self) -> int:
        """Every slot below this one is in the snapshot."""
        return self.cert.upto

    def encode(self) -> bytes:
        """The snapshot's bytes in the store."""
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> Snapshot:
        """The snapshot stored as ``data``; :class:`~btob.WireError` if it is damaged."""
        return _stored(cls, data)


@attrs.frozen
class DurableChanges:
    """What one or more member steps changed in the durable state, to commit atomically.

    Applied in this order: ``put`` (insert or replace each key), ``delete``, ``slots``
    (appended), then ``snapshot`` (which replaces the previous one and drops every slot
    below it).
    """

    put: tuple[tuple[str, bytes], ...] = ()
    delete: tuple[str, ...] = ()
    slots: tuple[SlotRecord, ...] = ()
    snapshot: Snapshot | None = None

    EMPTY: ClassVar[DurableChanges]

    def __bool__(self) -> bool:
        return bool(self.put or self.delete or self.slots or self.snapshot is not None)

    def then(self, later: DurableChanges) -> DurableChanges:
        """These changes followed by ``later``, as one (a group commit of several steps)."""
        if not self:
            return later
        if not later:
            return self
        gone = set(later.delete)
        put = {k: v for k, v in self.put if k not in gone}
        put.update(later.put)
        revived = {k for k, _ in later.put}
        delete = tuple(dict.fromkeys([k for k in self.delete if k not in revived]
                                     + list(later.delete)))
        slots = self.slots + later.slots
        snapshot = later.snapshot or self.snapshot
        if snapshot is not None:
            slots = tuple(s for s in slots if s.slot >= snapshot.upto)
        return DurableChanges(tuple(put.items()), delete, slots, snapshot)


DurableChanges.EMPTY = DurableChanges()


@attrs.frozen
class DurableState:
    """Everything a member committed: where ``Member.restore`` resumes from."""

    entries: Mapping[str, bytes] = attrs.field(factory=dict)
    slots: tuple[SlotRecord, ...] = ()
    """Delivered slots above the snapshot, in slot order."""
    snapshot: Snapshot | None = None

    EMPTY: ClassVar[DurableState]

    def __bool__(self) -> bool:
        return bool(self.entries or self.slots or self.snapshot is not None)

    def apply(self, changes: DurableChanges) -> DurableState:
        """The state after committing ``changes`` (the in-memory store of the simulator and
        the reference every real store must agree with)."""
        if not changes:
            return self
        entries = dict(self.entries)
        entries.update(changes.put)
        for key in changes.delete:
            entries.pop(key, None)
        slots = self.slots + changes.slots
        snapshot = changes.snapshot or self.snapshot
        if snapshot is not None:
            slots = tuple(s for s in slots if s.slot >= snapshot.upto)
        return DurableState(entries, slots, snapshot)


DurableState.EMPTY = DurableState()
