"""Recovery: what a member writes down to come back from, the snapshots that bound it, and the
one path by which a member takes a snapshot's state - after a restart or from its peers.

Theory of operation. A member must remember what it said (:mod:`btob.core.durable` says why),
so every step queues durable changes: its signed messages (kept by the
:class:`~btob.core.journal.SigningJournal`), its prepared certificates (``prep/<slot>``), the
payloads it accepted but did not batch yet (``pay/<counter>``), the NEW-VIEW it installed
(``installed``), every slot it delivered, and its stable snapshot. :class:`Recovery` queues
them and hands them out in :meth:`Recovery.take_changes`; it is also the only reader of these
keys, so what is written and how it is read back live in one place.

Why snapshots. Without them the log of delivered slots, and the journal, grow with history.
At each checkpoint boundary a member captures its state there
(:class:`~btob.core.snapshot.MemberState`), encodes and hashes it (a :class:`StateWork`, which
a driver with an event loop runs in a worker thread), signs the state's Merkle root in its
CHECKPOINT,
and keeps the bytes until a stable certificate for that boundary arrives. Certificates can
only come for boundaries at most ``slot_window`` beyond the stable one, so states of older
boundaries are dropped: a member that never sees a boundary stabilise holds a few states, not
one per boundary. The state of a boundary plus its certificate is a snapshot: it is what the
member serves to laggards by state transfer, and it replaces, on disk, every slot below it.

When compaction happens. As soon as the member holds both the state and the stable
certificate of a boundary (whichever came second), and only for a boundary above its current
snapshot: the journal forgets votes and proposals of slots below it or of earlier views, its
checkpoints up to it and the instances whose batch is ordered; prepared certificates below it
are deleted; and the snapshot goes to disk, where it drops the slots below it. Nobody can
ask the member to repeat any of that, since everything below a stable checkpoint is settled.

One adoption path. A restart (:meth:`Recovery.restore`) and a state transfer
(:meth:`Recovery.on_chunk`) both end in the same step: continue from a snapshot - the
position and windows of ordering and dissemination, the delivery log's counters, the
checkpoint certificate, the application's state. What differs is around it. A restart then
delivers again the slots stored above the snapshot, takes back the view it was in, its
prepared certificates and its own proposals and votes, and sends its unordered batches
again, writing none of it down a second time (it is on disk already). A transfer has nothing
of its own above the snapshot: it drops the slot records queued below it, compacts, and
queues the fetched snapshot for the disk. A member whose disk was empty has no counters to
continue above; it learns them from its peers' STATUS (:meth:`Recovery.learn_counters`).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from btob._errors import ConfigError, WireError
from btob.core.application import StateMachine
from btob.core.batching import PendingPayloads
from btob.core.checkpoint import CheckpointTracker
from btob.core.codec import pack, unpack
from btob.core.delivery import DeliveryLog
from btob.core.dissemination import Dissemination
from btob.core.durable import DurableChanges, DurableState, SlotRecord, Snapshot
from btob.core.effects import Outbox
from btob.core.journal import SigningJournal
from btob.core.merkle import MerkleTree
from btob.core.ordering import Ordering
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.snapshot import MemberState
from btob.core.transfer import ChunkServer, StateTransfer
from btob.core.viewchange import NewViewPlan, ViewChanger
from btob.core.wire import (
    Batch,
    CheckpointCert,
    Chunk,
    NewView,
    PreparedCert,
    Send,
    Status,
    ViewChange,
    WireLimits,
    decode_frame,
)

__all__ = ["EncodedState", "Recovery", "StateWork"]

InstallView = Callable[[NewViewPlan, tuple[int, ...], float], None]
"""The member's entry into a verified view: its plan, the excluded members, the time."""


@attrs.frozen
class EncodedState:
    """A boundary's state as bytes, with the Merkle tree of its chunks (whose root the
    member signs)."""

    upto: int
    state: bytes
    tree: MerkleTree


@attrs.frozen
class StateWork:
    """Encoding a boundary's captured state and hashing it into its Merkle tree: O(state),
    so a driver with an event loop runs :meth:`run` in a worker thread and hands the result
    to :meth:`Member.state_done <btob.Member.state_done>`. Pure: the same bytes and root
    wherever it runs."""

    upto: int
    parts: MemberState
    chunk_bytes: int

    def run(self) -> EncodedState:
        """Encode and hash (no side effects; safe in any thread)."""
        state = self.parts.encode()
        return EncodedState(self.upto, state, MerkleTree(state, self.chunk_bytes))


class Recovery:
    """A member's durable changes, boundary snapshots, compaction and state adoption.

    It shares the member's cores and three of its collections: ``batches`` (held batches by
    origin and counter), ``own_in_flight`` (own batch counters not ordered yet) and
    ``pending`` (payloads waiting for a batch). ``deliver_ready`` delivers the next slot if
    it can (True if it did) and ``install_view`` enters a view: the member's own routing,
    which a restart goes through again.
    """

    def __init__(
        self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
        journal: SigningJournal, order: Ordering, dissemination: Dissemination,
        log: DeliveryLog, checkpoints: CheckpointTracker, view_changer: ViewChanger,
        transfer: StateTransfer, chunk_server: ChunkServer, app: StateMachine | None,
        batches: dict[tuple[int, int], tuple[bytes, Batch]], own_in_flight: set[int],
        pending: PendingPayloads, deliver_ready: Callable[[float], bool],
        install_view: InstallView,
    ) -> None:
        self._member = member
        self._quorums = quorums
        self._settings = settings
        self._limits = WireLimits(frame_bytes_max=settings.frame_bytes_max)
        self._outbox = outbox
        self._journal = journal
        self._order = order
        self._dissemination = dissemination
        self._log = log
        self._checkpoints = checkpoints
        self._view_changer = view_changer
        self._transfer = transfer
        self._chunk_server = chunk_server
        self._app = app
        self._batches = batches
        self._own_in_flight = own_in_flight
        self._pending = pending
        self._deliver_ready = deliver_ready
        self._install_view = install_view
        self._durable_put: dict[str, bytes] = {}
        self._durable_delete: set[str] = set()
        self._slot_records: list[SlotRecord] = []
        self._new_snapshot: Snapshot | None = None
        self._prepared_saved: set[int] = set()
        self._restoring = False
        self._states: dict[int, bytes] = {}
        self.defer_state_work = False
        """Leave each boundary's :class:`StateWork` in :attr:`state_work` for the driver."""
        self.state_work: list[StateWork] = []
        """Boundaries' states captured and not yet handed to the driver."""
        """Own encoded states at boundaries not yet covered by a stable snapshot."""
        self._transfer_cert: CheckpointCert | None = None
        self._learning: dict[int, tuple[int, int]] | None = None
        """While not None: what each peer's STATUS says of this member's counters."""
        self._positions: dict[int, int] = {}
        """Meanwhile, each peer's reported position (next slot): where its sign floor goes."""
        self.snapshot: Snapshot | None = None
        """The latest stable snapshot this member holds (what it serves to laggards)."""
        self.transferred_to: int | None = None
        """The delivery index a state transfer last jumped to; None if it never transferred."""

    # -- what is written ----------------------------------------------------------------------

    def payload_accepted(self, counter: int, payload: bytes) -> None:
        """Keep own payload ``counter`` until a batch's SEND holds it."""
        self._put(f"pay/{counter}", payload)

    def payloads_batched(self, first: int, count: int) -> None:
        """Own payloads ``first`` .. ``first + count - 1`` went into a batch: its SEND, in the
        journal, holds them now."""
        for counter in range(first, first + count):
            self._delete(f"pay/{counter}")

    def view_installed(self, frame: bytes) -> None:
        """Keep the NEW-VIEW (as its signed frame) that installed the member's current view."""
        self._put("installed", frame)

    def prepared(self, cert: PreparedCert) -> None:
        """Keep a prepared certificate: a VIEW-CHANGE after a restart must report it."""
        self._put(f"prep/{cert.slot}", pack(cert.to_wire()))
        self._prepared_saved.add(cert.slot)

    def slot_delivered(self, record: SlotRecord) -> None:
        """Keep a slot just delivered (unless a restart delivers it again from the disk)."""
        if not self._restoring:
            self._slot_records.append(record)

    def take_changes(self) -> DurableChanges:
        """Everything queued for the disk since the last call, the journal's included."""
        put, delete = self._journal.take_changes()
        put.update(self._durable_put)
        delete |= self._durable_delete
        if not (put or delete or self._slot_records or self._new_snapshot):
            return DurableChanges.EMPTY
        changes = DurableChanges(tuple(put.items()), tuple(sorted(delete)),
                                 tuple(self._slot_records), self._new_snapshot)
        self._durable_put, self._durable_delete = {}, set()
        self._slot_records, self._new_snapshot = [], None
        return changes

    def _put(self, key: str, value: bytes) -> None:
        self._durable_put[key] = value
        self._durable_delete.discard(key)

    def _delete(self, key: str) -> None:
        self._durable_put.pop(key, None)
        self._durable_delete.add(key)

    # -- how it is read back ------------------------------------------------------------------

    @property
    def counters_known(self) -> bool:
        """False while a member restored from nothing still learns its counters."""
        return self._learning is None

    def restore(self, state: DurableState, now: float) -> tuple[int, int] | None:
        """Take back committed ``state`` (``Member.restore`` says what that means); returns
        the next own batch and payload counters it implies, None if ``state`` is empty (the
        counters are then learned: :meth:`learn_counters`)."""
        if not state:
            if self._quorums.n - 1 - self._quorums.f > 0:
                self._learning = {}
                self._order.sign_floor = float("inf")  # until it knows where the cluster is
            return None
        self._restoring = True
        order = self._order
        order.active = False  # no proposals or votes until its view is back
        self._journal.load(dict(state.entries), self._limits)
        if state.snapshot is not None:
            self._adopt(state.snapshot, MemberState.decode(
                state.snapshot.state, bytes_max=self._settings.snapshot_bytes_max))
        for record in state.slots:
            self._redeliver(record, now)
        order.active = True
        installed = state.entries.get("installed")
        if installed is not None:
            signed = decode_frame(installed, self._limits).parse(self._limits)
            plan = self._view_changer.on_new_view(signed, now, restoring=True)
            if plan is not None:
                new_view = signed.message
                assert isinstance(new_view, NewView)
                self._install_view(plan, new_view.excluded, now)
        for name, data in state.entries.items():
            if name.startswith("prep/"):
                order.restore_prepared(PreparedCert.from_wire(
                    unpack(data, frame_bytes_max=len(data), items_max=len(data))))
                self._prepared_saved.add(int(name[5:]))
        for kind in ("order", "oecho", "oready"):
            for signed in self._journal.signed(kind):
                order.restore_own(signed, now)
        wanted = [s.message.view for s in self._journal.signed("viewchange")
                  if isinstance(s.message, ViewChange)]
        if wanted and max(wanted) > order.view:
            self._view_changer.start(max(wanted), now)  # the journal repeats its VIEW-CHANGE
        counters = self._restore_own_batches(state, now)
        self._restoring = False
        return counters

    def learn_counters(self, sender: int, status: Status) -> tuple[int, int] | None:
        """Count what a peer's STATUS says of this member's counters while it learns them;
        returns the next batch and payload counters once ``n - 1 - f`` peers said, else None.

        The (f+1)-th highest report wins: some honest peer vouches for it, so a Byzantine
        one cannot push this member into a gap its later batches would wait on forever."""
        learning, n = self._learning, self._quorums.n
        if learning is None or sender == self._member or len(status.seen) != 2 * n:
            return None
        learning[sender] = (status.seen[2 * self._member], status.seen[2 * self._member + 1])
        self._positions[sender] = status.next_slot
        f = self._quorums.f
        if len(learning) < n - 1 - f:
            return None
        rank = min(f, len(learning) - 1)
        batch = sorted((b for b, _ in learning.values()), reverse=True)[rank]
        payload = sorted((p for _, p in learning.values()), reverse=True)[rank]
        self._learning = None
        # This member delivered no further than its peers, as a rule (it was down since),
        # and voted at most a window above where it was. The highest report counts, but a
        # Byzantine one can push the floor no more than a window above one an honest peer
        # vouches for. Where nobody has delivered a slot yet the directory is taken for a
        # new member's (every member of a new cluster starts so; sitting out would stall it).
        positions = sorted(self._positions.values(), reverse=True)
        window = self._settings.slot_window
        position = min(positions[0], positions[rank] + window)
        self._order.sign_floor = position + window if position > 0 else 0.0
        self._positions = {}
        return batch, payload

    def _adopt(self, snapshot: Snapshot, state: MemberState) -> None:
        """Continue from ``snapshot`` (after a restart, or fetched by state transfer): the
        position, chain, ordering, dissemination and delivery state, the application's."""
        order, windows = self._order, state.windows
        order.jump_to(state.upto, windows)
        self._dissemination.restore_finished(windows)
        for key in [k for k in self._batches if order.is_ordered(*k)]:
            del self._batches[key]
        self._own_in_flight.difference_update(
            [c for c in self._own_in_flight if order.is_ordered(self._member, c)])
        self._log.restore(state.next_index, state.counter_pairs, state.early_triples)
        if self._log.clients is not None:
            self._log.clients.restore(state.client_rows)
        self._checkpoints.restore(snapshot.cert)
        if self._app is not None:
            self._app.restore(state.app)
        self.snapshot = snapshot

    def _redeliver(self, record: SlotRecord, now: float) -> None:
        """Deliver again a slot this member delivered before a restart."""
        order = self._order
        order.adopt_settled(record.slot, record.refs, view=record.view,
                            certificate=record.certificate)
        fresh = [r for r in record.refs if not order.is_ordered(r.origin, r.counter)]
        for ref, batch in zip(fresh, record.batches, strict=True):
            self._batches[(ref.origin, ref.counter)] = (ref.digest, batch)
        delivered = self._deliver_ready(now)
        assert delivered, f"slot {record.slot} of the durable state cannot be delivered again"

    def _restore_own_batches(self, state: DurableState, now: float) -> tuple[int, int]:
        """Own batches not ordered yet go out again (the journal repeats their SENDs), and
        payloads not yet in a batch wait again; the counters continue above all of them."""
        member = self._member
        next_batch = self._order.ordered_low(member)
        next_payload = self._log.next_counter(member)
        for signed in self._journal.signed("send"):
            send = signed.message
            assert isinstance(send, Send)
            next_batch = max(next_batch, send.counter + 1)
            next_payload = max(next_payload,
                               send.batch.first_counter + len(send.batch.payloads))
            if not self._order.is_ordered(member, send.counter):
                self._own_in_flight.add(send.counter)
                self._dissemination.broadcast(send.counter, send.batch, now)
        waiting = sorted((int(name[4:]), data) for name, data in state.entries.items()
                         if name.startswith("pay/"))
        for counter, payload in waiting:
            assert counter >= next_payload - 1 or not waiting, "payloads wait in order"
            self._pending.add(payload, now)
        if waiting:
            next_payload = max(next_payload, waiting[-1][0] + 1)
        return next_batch, next_payload

    # -- snapshots and compaction -------------------------------------------------------------

    def held(self) -> int:
        """Boundary states kept until a stable certificate covers them."""
        return len(self._states)

    def checkpoint_at(self, upto: int) -> None:
        """At a boundary: capture the state (the cores' exports and the application's
        snapshot, now, before the next delivery changes them); its encoding and Merkle root
        are :class:`StateWork` - done here, or by the driver off its event loop when the
        member defers it - and :meth:`state_done` signs the root in a CHECKPOINT and keeps the
        state until a stable certificate covers it."""
        counters, early = self._log.export()
        work = StateWork(upto, MemberState.of(
            upto=upto, chain=self._checkpoints.chain, next_index=self._log.next_index,
            counters=counters, early=early, ordered=self._order.ordered_windows(),
            app=b"" if self._app is None else self._app.snapshot(),
            clients=() if self._log.clients is None else self._log.clients.export(),
        ), self._settings.chunk_bytes)
        if self.defer_state_work:
            self.state_work.append(work)
        else:
            self.state_done(work.run())

    def state_done(self, done: EncodedState) -> None:
        """Finish a boundary's :class:`StateWork` (a result of :meth:`StateWork.run`).

        Raises :class:`~btob.ConfigError` if the state exceeds ``snapshot_bytes_max``, and
        :class:`~btob.StateDiverged` if a stable certificate for the boundary certifies
        another state. A result for a boundary this member has since left behind (a state
        transfer past it, or a checkpoint pruned) is dropped."""
        upto, state = done.upto, done.state
        if len(state) > self._settings.snapshot_bytes_max:
            raise ConfigError(f"the snapshot at slot {upto} has {len(state)} bytes, more than "
                              f"snapshot_bytes_max={self._settings.snapshot_bytes_max}")
        if self._checkpoints.chain_at(upto) is None or \
                (self.snapshot is not None and self.snapshot.upto >= upto):
            return
        self._states[upto] = state
        # Only boundaries a certificate can still come for are kept: CHECKPOINT votes are
        # taken up to slot_window beyond the stable one (a member that sees none stabilise
        # must not hold a snapshot per boundary forever).
        floor = upto - self._settings.slot_window
        for boundary in [u for u in self._states if u < floor]:
            del self._states[boundary]
        self._chunk_server.adopt(upto, done.tree)
        self._outbox.send(None, self._checkpoints.boundary_checkpoint(upto, done.tree.root))
        self.maybe_snapshot(upto)

    def maybe_snapshot(self, upto: int) -> None:
        """Once this member holds both the state at ``upto`` and a stable certificate for it,
        that snapshot replaces everything below it, in memory and on disk."""
        cert = self._checkpoints.cert_at(upto)
        state = self._states.get(upto)
        if cert is None or state is None or (self.snapshot and self.snapshot.upto >= upto):
            return
        self.snapshot = Snapshot(cert, state)
        if not self._restoring:
            self._new_snapshot = self.snapshot
        self._compact(upto)

    def _compact(self, upto: int) -> None:
        """Forget what nobody can ask this member to repeat once ``upto`` is stable: boundary
        states up to it, votes and proposals for slots below it or for earlier views,
        checkpoints up to it, instances whose batch is ordered, and prepared certificates."""
        for boundary in [u for u in self._states if u <= upto]:
            del self._states[boundary]
        order, view = self._order, self._order.view
        slot_kinds, instance_kinds = ("order", "oecho", "oready"), ("send", "request", "echo",
                                                                      "ready")

        def done(key: tuple[str, int, int]) -> bool:
            what, a, b = key
            if what in slot_kinds:
                return b < upto or a < view
            if what in instance_kinds:
                return b < order.ordered_low(a)
            if what == "checkpoint":
                return a <= upto
            return a < view  # VIEW-CHANGE, NEW-VIEW

        self._journal.forget(done)
        for slot in [s for s in self._prepared_saved if s < upto]:
            self._prepared_saved.discard(slot)
            self._delete(f"prep/{slot}")

    # -- state transfer -----------------------------------------------------------------------

    def offer(self, cert: CheckpointCert, now: float) -> None:
        """A peer that no longer holds the log we miss offers the state at ``cert``: fetch it
        (chunk by chunk, each checked against the certified root) if it is ahead of us."""
        target = self._transfer.target
        if cert.upto <= self._order.low or (self._transfer.active and target is not None
                                            and target.upto >= cert.upto):
            self._outbox.drop("snapshot-offer-not-needed")
            return
        if not self._checkpoints.verify_cert(cert):
            self._outbox.drop("snapshot-offer-bad-certificate")
            return
        self._transfer_cert = cert
        self._transfer.retarget(cert.upto, cert.state, None, None, now)

    def on_chunk(self, sender: int, chunk: Chunk, now: float) -> bool:
        """Take a verified CHUNK of the transfer; True once the member jumped to the
        snapshot it completed (everything below it is settled there)."""
        state = self._transfer.on_chunk(sender, chunk, now)
        cert = self._transfer_cert
        if state is None or cert is None or cert.upto != chunk.upto:
            return False
        self._transfer_cert = None
        snapshot = Snapshot(cert, state)
        try:
            decoded = MemberState.decode(state, bytes_max=self._settings.snapshot_bytes_max)
        except WireError:
            # The root verified, so a quorum signed these bytes: honest members made them.
            self._outbox.drop("snapshot-undecodable")
            return False
        if decoded.upto != snapshot.upto or snapshot.upto <= self._order.low:
            self._outbox.drop("snapshot-not-needed")
            return False
        self._adopt(snapshot, decoded)
        self._new_snapshot = snapshot
        self._slot_records = [r for r in self._slot_records if r.slot >= snapshot.upto]
        self._compact(snapshot.upto)
        self.transferred_to = decoded.next_index
        return True
