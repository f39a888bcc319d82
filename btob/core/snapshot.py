"""A member's state at a checkpoint boundary, as the bytes a stable checkpoint certifies.

Everything in it is a deterministic function of the committed log below the boundary (and of
the application, which must be deterministic too), so every honest member that reached the
boundary holds the same bytes and signs the same Merkle root: the position in the log, the
chain value, the delivery log's per-origin counters and held-back payloads, which batches
are ordered, and the application's own snapshot. A member restored from these bytes delivers
exactly what the others deliver from there on.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from btob._errors import WireError
from btob.core.codec import BYTES, DIGEST, INT, Wired, pack, record, seq, unpack, wired
from btob.core.merkle import MerkleTree

__all__ = ["ClientSession", "EarlyPayload", "MemberState", "OriginWindow"]


@wired("origin window")
@attrs.frozen
class OriginWindow(Wired):
    """The ordered batches of one origin: all below ``low``, and those in ``above``."""

    WIRE: ClassVar = (INT, INT, seq(INT))
    origin: int
    low: int
    above: tuple[int, ...]


@wired("early payload")
@attrs.frozen
class EarlyPayload(Wired):
    """A payload the delivery log holds back until its origin's earlier ones arrive."""

    WIRE: ClassVar = (INT, INT, BYTES)
    origin: int
    counter: int
    payload: bytes


@wired("origin counter")
@attrs.frozen
class OriginCounter(Wired):
    """The next payload counter the delivery log expects from ``origin``."""

    WIRE: ClassVar = (INT, INT)
    origin: int
    next: int


@wired("client session")
@attrs.frozen
class ClientSession(Wired):
    """The delivery log's state for one client key: its session, the next seq it delivers,
    and the REQUEST frames held back until their predecessors arrive."""

    WIRE: ClassVar = (BYTES, INT, INT, seq(BYTES), seq(INT))
    client: bytes
    session: int
    next_seq: int
    held: tuple[bytes, ...]
    held_slots: tuple[int, ...]
    """The slot that committed each held request."""


@wired("member state")
@attrs.frozen
class MemberState(Wired):
    """What a member needs to continue from slot ``upto`` on, without the log below it."""

    WIRE: ClassVar = (INT, DIGEST, INT, seq(record(OriginCounter)), seq(record(EarlyPayload)),
                      seq(record(OriginWindow)), BYTES, seq(record(ClientSession)))
    upto: int
    chain: bytes
    next_index: int
    """The index of the next delivery."""
    counters: tuple[OriginCounter, ...]
    early: tuple[EarlyPayload, ...]
    ordered: tuple[OriginWindow, ...]
    app: bytes
    """The application's snapshot (``b""`` without an application)."""
    clients: tuple[ClientSession, ...] = ()
    """The client requests' delivery state, per client key."""

    Windows = tuple[tuple[int, int, tuple[int, ...]], ...]

    @classmethod
    def of(cls, *, upto: int, chain: bytes, next_index: int,
           counters: tuple[tuple[int, int], ...], early: tuple[tuple[int, int, bytes], ...],
           ordered: Windows, app: bytes,
           clients: tuple[tuple[bytes, int, int, tuple[bytes, ...], tuple[int, ...]], ...] = (),
           ) -> MemberState:
        """The state from what the cores export (plain tuples)."""
        return cls(upto, chain, next_index, tuple(OriginCounter(o, c) for o, c in counters),
                   tuple(EarlyPayload(o, c, p) for o, c, p in early),
                   tuple(OriginWindow(o, low, above) for o, low, above in ordered), app,
                   tuple(ClientSession(*row) for row in clients))

    @property
    def windows(self) -> Windows:
        """The ordered batches per origin, as the cores take them."""
        return tuple((w.origin, w.low, w.above) for w in self.ordered)

    @property
    def client_rows(self) -> tuple[tuple[bytes, int, int, tuple[bytes, ...], tuple[int, ...]],
                                   ...]:
        """The client sessions, as :meth:`btob.core.clients.ClientLog.restore` takes them."""
        return tuple((c.client, c.session, c.next_seq, c.held, c.held_slots)
                     for c in self.clients)

    @property
    def counter_pairs(self) -> tuple[tuple[int, int], ...]:
        """``(origin, next counter)`` per origin, as the delivery log takes them."""
        return tuple((c.origin, c.next) for c in self.counters)

    @property
    def early_triples(self) -> tuple[tuple[int, int, bytes], ...]:
        """``(origin, counter, payload)`` per held-back payload, as the delivery log takes
        them."""
        return tuple((e.origin, e.counter, e.payload) for e in self.early)

    def encode(self) -> bytes:
        """The canonical bytes (equal states, equal bytes)."""
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes, *, bytes_max: int) -> MemberState:
        """The state ``data`` encodes; :class:`~btob.WireError` if it is malformed or larger
        than ``bytes_max``."""
        if len(data) > bytes_max:
            raise WireError(f"snapshot of {len(data)} bytes exceeds {bytes_max}")
        return cls.from_wire(unpack(data, frame_bytes_max=bytes_max, items_max=len(data) + 1))

    @staticmethod
    def root_of(data: bytes, chunk_bytes: int) -> bytes:
        """The Merkle root of encoded state ``data`` in chunks of ``chunk_bytes``."""
        return MerkleTree(data, chunk_bytes).root
