"""One member of a btob cluster as a pure state machine: the cores wired together.

:class:`Member` is what every driver runs (the simulator now, the Trio runtime later). It
takes inputs - a payload to broadcast, a frame from the network, the passage of time - each
with the current time as an argument, and queues outputs: frames to send and deliveries. It
never awaits, reads a clock, or draws random numbers.

Input gate: every frame is decoded with bounds, its signature checked against the sender's
key under the domain tag of its kind, and only then parsed and handed to a core; anything
that fails is dropped and counted. Output discipline: messages are signed once and framed
once, whatever the number of destinations; messages to oneself are handled locally at once.
"""

from __future__ import annotations

from collections import Counter, deque

import attrs

from btob._errors import BtobError, ConfigError, WireError
from btob.core.batching import PendingPayloads
from btob.core.brb import BrachaBroadcast, SignedEchoBroadcast, make_brb
from btob.core.checkpoint import CheckpointTracker, chain_step
from btob.core.delivery import Delivery, DeliveryLog, MsgId
from btob.core.direct import DirectDissemination
from btob.core.effects import Evidence, Outbox
from btob.core.ordering import FixedSequencerOrder
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.viewchange import (
    Timeouts,
    plan_new_view,
    valid_prepared_cert,
    valid_view_change,
    verify_new_view,
)
from btob.core.wire import (
    Batch,
    BatchRef,
    Checkpoint,
    CheckpointCert,
    Echo,
    Final,
    LogSegment,
    Message,
    NewView,
    Order,
    OrderEcho,
    Request,
    Send,
    Signed,
    SlotProof,
    Status,
    ViewChange,
    decode_frame,
)
from btob.crypto import Backend, KeyRegistry, Signer, SigningKey, Verifier

VARIANTS = ("bb", "ub", "uub", "moving")
"""Sequencer variants a member can run."""

__all__ = [
    "VARIANTS", "BacklogFull", "Member", "MemberStatistics", "Outgoing", "PayloadTooLarge",
    "ViewInstalled",
]


class PayloadTooLarge(BtobError):
    """A submitted payload exceeds ``Settings.payload_bytes_max`` (the caller's fault)."""


class BacklogFull(BtobError):
    """``Settings.pending_payloads_max`` payloads already wait for a batch; retry later."""


@attrs.frozen
class Outgoing:
    """A frame for one destination member."""

    destination: int
    frame: bytes


@attrs.frozen
class ViewInstalled:
    """This member entered ``view`` at time ``at`` (its sequencer is ``view mod n``)."""

    view: int
    at: float


@attrs.frozen
class MemberStatistics:
    """A snapshot of one member's counters and the sizes of everything it holds."""

    member: int
    payloads_submitted: int
    deliveries: int
    slots_delivered: int
    messages_sent: int
    bytes_sent: int
    frames_received: int
    signatures_made: int
    signatures_verified: int
    verify_cache_hits: int
    dropped: dict[str, int]
    evidence: tuple[int, ...]
    brb_instances: int
    open_slots: int
    pending_payloads: int
    early_payloads: int
    batches_held: int
    view: int
    view_changes_started: int
    stable_checkpoint: int
    proofs_held: int
    checkpoint_state_held: int
    history_slots_held: int
    view_changes_held: int
    slots_from_proofs: int
    slots_from_segments: int


class Member:
    """The protocol of one member, sans-IO.

    Drive it with :meth:`submit`, :meth:`receive` and :meth:`tick`, then collect frames and
    deliveries with :meth:`take_outputs`. ``tick`` must be called at least every
    ``min(Settings.retransmit_interval_s, Settings.status_interval_s)`` seconds.
    """

    def __init__(
        self,
        *,
        member: int,
        registry: KeyRegistry,
        signing_key: SigningKey,
        cluster_id: bytes,
        f: int | None = None,
        brb: str = "bracha",
        variant: str = "bb",
        settings: Settings | None = None,
        backend: Backend | None = None,
    ) -> None:
        n = registry.n
        if not 0 <= member < n:
            raise ConfigError(f"member id {member} is outside 0..{n - 1}")
        self.member = member
        self.quorums = Quorums.for_cluster(n, f)
        self.settings = settings or Settings()
        broken = self.settings.unsafe_test_break
        if broken == "quorum-one-short":
            self.quorums = attrs.evolve(self.quorums, quorum=self.quorums.quorum - 1)
        self._signer = Signer(signing_key, cluster_id=cluster_id, backend=backend)
        if self._signer.public_key != registry.public_key(member):
            raise ConfigError(f"the signing key does not match member {member}'s public key")
        self._verifier = Verifier(
            registry, cluster_id=cluster_id, backend=backend,
            cache_entries_max=self.settings.verify_cache_entries_max,
        )
        self._outbox = Outbox()
        verify = self._verifier.verify
        if broken == "skip-signature-checks":
            def verify(member: int, kind: str, body: bytes, signature: bytes) -> bool:
                return True
        self._verify = verify
        common = dict(member=member, quorums=self.quorums, settings=self.settings,
                      outbox=self._outbox, verify=verify)
        if variant not in VARIANTS:
            raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        self.variant = variant
        self._order = FixedSequencerOrder(
            member=member, quorums=self.quorums, settings=self.settings, outbox=self._outbox,
            verify=verify, moving=variant == "moving", granting=variant == "uub",
        )
        self._brb: BrachaBroadcast | SignedEchoBroadcast | DirectDissemination
        if variant in ("ub", "uub"):
            order = self._order
            self._brb = DirectDissemination(
                member=member, quorums=self.quorums, settings=self.settings,
                outbox=self._outbox, sequencer=lambda: order.sequencer,
                view=lambda: order.view, ordered_low=order.ordered_low,
                sign=lambda send: Signed.create(member, send, self._signer.sign),
                grants=variant == "uub",
            )
        else:
            self._brb = make_brb(brb, **common)  # type: ignore[arg-type]
        self._checkpoints = CheckpointTracker(
            member=member, quorums=self.quorums, interval=self.settings.checkpoint_interval,
            window=self.settings.slot_window, retained=self.settings.log_retention_slots,
            outbox=self._outbox, verify=verify,
        )
        self._timeouts = Timeouts(self.settings.view_change_timeout_s,
                                  self.settings.view_change_timeout_max_s)
        self._view_changes: dict[int, Signed] = {}
        self._changing_to: int | None = None
        self._vc_deadline = 0.0
        self._vc_last_sent = 0.0
        self._new_view: Signed | None = None
        self._new_view_last_sent = 0.0
        self._views: list[ViewInstalled] = []
        self._early_view_messages: deque[Signed] = deque(
            maxlen=self.settings.future_view_messages_max
        )
        self._view_changes_started = 0
        self._slots_from_proofs = 0
        self._slots_from_segments = 0
        self._log = DeliveryLog(
            early_payloads_max_per_origin=self.settings.early_payloads_max_per_origin
        )
        self._batches: dict[tuple[int, int], tuple[bytes, Batch]] = {}
        self._history: dict[int, tuple[tuple[BatchRef, ...], tuple[Batch, ...]]] = {}
        self._delivered_at: dict[int, float] = {}
        self._pending = PendingPayloads(self.settings)
        self._next_payload = 0
        self._next_batch = 0
        self._own_in_flight: set[int] = set()
        self._frames: list[Outgoing] = []
        self._deliveries: list[Delivery] = []
        self._local: deque[Signed] = deque()
        self._evidence: dict[int, Evidence] = {}
        self._served_at: dict[int, tuple[float, tuple[int, int]]] = {}
        self._last_status = float("-inf")
        self._messages_sent = 0
        self._bytes_sent = 0
        self._frames_received = 0
        self._submitted = 0
        self._gate_dropped: Counter[str] = Counter()

    # -- inputs -------------------------------------------------------------------------------

    def submit(self, payload: bytes, now: float) -> MsgId:
        """TO-broadcast ``payload``; returns its message id.

        Raises :class:`PayloadTooLarge` or :class:`BacklogFull`; nothing is queued then.
        """
        if len(payload) > self.settings.payload_bytes_max:
            raise PayloadTooLarge(
                f"payload of {len(payload)} bytes exceeds {self.settings.payload_bytes_max}"
            )
        if len(self._pending) >= self.settings.pending_payloads_max:
            raise BacklogFull(f"{len(self._pending)} payloads already wait for a batch")
        msg_id = MsgId(self.member, self._next_payload)
        self._next_payload += 1
        self._submitted += 1
        self._pending.add(bytes(payload), now)
        self._flush_batches(now)
        self._pump(now)
        return msg_id

    def receive(self, frame: bytes, now: float) -> None:
        """Handle a frame from the network; bad frames are dropped and counted."""
        self._frames_received += 1
        if len(frame) > self.settings.frame_bytes_max:
            self._gate_dropped["oversized-frame"] += 1
            return
        try:
            raw = decode_frame(frame)
        except WireError:
            self._gate_dropped["malformed-frame"] += 1
            return
        if raw.sender == self.member:
            self._gate_dropped["own-frame-returned"] += 1  # a forward or replay of ours
            return
        try:
            signed = raw.parse()
        except WireError:
            self._gate_dropped["malformed-body"] += 1
            return
        if self._needless(signed):
            # Checked before the signature: it is what a late vote costs, and such a vote
            # is dropped unread, so it cannot matter whether it was genuine.
            self._gate_dropped["late-vote-unchecked"] += 1
            return
        if not self._verify(raw.sender, raw.kind, raw.body, raw.signature):
            self._gate_dropped["bad-signature"] += 1
            return
        self._dispatch(signed, now)
        self._pump(now)

    def tick(self, now: float) -> None:
        """Let time pass: suspect a stalled sequencer, retransmit stale messages and,
        periodically, send STATUS (and an unstable CHECKPOINT) to every peer."""
        self._detect_failure(now)
        self._flush_batches(now)
        self._brb.retransmit(now)
        self._order.retransmit(now)
        interval = self.settings.retransmit_interval_s
        if self._changing_to is not None and now - self._vc_last_sent >= interval:
            own = self._view_changes.get(self.member)
            if own is not None:
                self._vc_last_sent = now
                self._outbox.send(None, own)
        if (self._new_view is not None and self._order.sequencer == self.member
                and self._order.uncommitted_reproposals()
                and now - self._new_view_last_sent >= interval):
            self._new_view_last_sent = now
            self._outbox.send(None, self._new_view)
        if now - self._last_status >= self.settings.status_interval_s:
            self._last_status = now
            self._outbox.send(None, Status(self._order.low, self._order.view))
            checkpoint = self._checkpoints.own_checkpoint()
            if checkpoint is not None:
                self._outbox.send(None, checkpoint)
        self._pump(now)

    def take_outputs(self) -> tuple[list[Outgoing], list[Delivery]]:
        """Frames to send and deliveries made since the last call (persist, send, deliver)."""
        frames, self._frames = self._frames, []
        deliveries, self._deliveries = self._deliveries, []
        return frames, deliveries

    # -- queries ------------------------------------------------------------------------------

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """Proof of misbehaviour collected so far, at most one per member."""
        return tuple(self._evidence[m] for m in sorted(self._evidence))

    @property
    def next_slot(self) -> int:
        """Every slot below this one is delivered here."""
        return self._order.low

    @property
    def view(self) -> int:
        """The view this member is in (or leaving, while a view change is under way)."""
        return self._order.view

    def take_view_changes(self) -> list[ViewInstalled]:
        """Views installed since the last call."""
        views, self._views = self._views, []
        return views

    def statistics(self) -> MemberStatistics:
        """A frozen snapshot of counters and held-state sizes."""
        verifier = self._verifier.statistics()
        dropped = Counter(self._gate_dropped)
        dropped.update(self._outbox.dropped)
        return MemberStatistics(
            member=self.member,
            payloads_submitted=self._submitted,
            deliveries=self._log.next_index,
            slots_delivered=self._order.low,
            messages_sent=self._messages_sent,
            bytes_sent=self._bytes_sent,
            frames_received=self._frames_received,
            signatures_made=self._signer.signatures_made,
            signatures_verified=verifier.verifications,
            verify_cache_hits=verifier.cache_hits,
            dropped=dict(sorted(dropped.items())),
            evidence=tuple(sorted(self._evidence)),
            brb_instances=self._brb.instances(),
            open_slots=self._order.slots_held(),
            pending_payloads=len(self._pending),
            early_payloads=self._log.early_held(),
            batches_held=len(self._batches),
            view=self._order.view,
            view_changes_started=self._view_changes_started,
            stable_checkpoint=self._checkpoints.stable_upto,
            proofs_held=self._order.proofs_held(),
            checkpoint_state_held=self._checkpoints.held(),
            history_slots_held=len(self._history),
            view_changes_held=len(self._view_changes),
            slots_from_proofs=self._slots_from_proofs,
            slots_from_segments=self._slots_from_segments,
        )

    def held_state(self) -> dict[str, int]:
        """Sizes of everything peers can make this member hold, by name (for bound checks)."""
        return {
            "brb_instances": self._brb.instances(),
            "open_slots": self._order.slots_held(),
            "batches_waiting": self._order.batches_waiting(),
            "batches_held": len(self._batches),
            "proofs": self._order.proofs_held(),
            "checkpoint_state": self._checkpoints.held(),
            "history_slots": len(self._history),
            "view_changes": len(self._view_changes),
            "early_payloads": self._log.early_held(),
            "evidence": len(self._evidence),
            "early_view_messages": len(self._early_view_messages),
            "verify_cache": self._verifier.statistics().cache_entries,
        }

    # -- plumbing -----------------------------------------------------------------------------

    def _needless(self, signed: Signed) -> bool:
        """True for a frame that could not change this member's state (see the cores)."""
        message = signed.message
        if isinstance(message, (Send, Echo, Final)):
            return self._brb.needless(signed)
        if isinstance(message, OrderEcho):
            return self._order.needless(signed)
        return False

    def _dispatch(self, signed: Signed, now: float) -> None:
        message = signed.message
        if isinstance(message, (Send, Echo, Final)):
            self._brb.on_message(signed, now)
        elif isinstance(message, Request):
            self._on_request(signed, message)
        elif isinstance(message, Order) and not self._carried_ok(message):
            self._outbox.drop("order-bad-carried-batches")
        elif isinstance(message, (Order, OrderEcho)):
            view = self._order.view
            if view < message.view <= view + self.settings.view_window:
                # The NEW-VIEW may trail its view's first messages: hold them, boundedly.
                self._early_view_messages.append(signed)
            else:
                if (isinstance(message, Order) and self.variant == "uub"
                        and signed.sender == self._order.sequencer
                        and all(r.origin == self.member for r in message.refs)):
                    assert isinstance(self._brb, DirectDissemination)
                    self._brb.on_grant(signed)  # our slot: broadcast batch and grant
                self._order.on_message(signed, now)
        elif isinstance(message, Status):
            self._on_status(signed.sender, message, now)
        elif isinstance(message, Checkpoint):
            cert = self._checkpoints.on_checkpoint(signed)
            if cert is not None:
                self._order.forget_below(cert.upto)
        elif isinstance(message, ViewChange):
            self._on_view_change(signed, message, now)
        elif isinstance(message, NewView):
            self._on_new_view(signed, message, now)
        elif isinstance(message, LogSegment):
            self._on_segment(message, now)
        elif isinstance(message, SlotProof):
            known = self._order.committed(message.slot) is not None
            if not self._order.on_slot_proof(message):
                return
            self._slots_from_proofs += not known
            self._keep_proven_batches(message.refs, message.batches)
            if not known:
                # Catching up: ask for the next slots at the next tick, not a status
                # interval later (only a valid commit certificate gets here).
                self._last_status = float("-inf")

    def _on_request(self, signed: Signed, request: Request) -> None:
        """UUB sequencer: answer a slot request with a signed grant, to the origin only."""
        grants = self._order.grant(BatchRef(signed.sender, request.counter, request.digest))
        if not grants:
            self._outbox.drop("request-not-granted")
        for grant in grants:
            origin = grant.refs[0].origin
            self._outbox.send(origin, grant)
            if origin != self.member:
                self._outbox.send(self.member, grant)

    def _keep_proven_batches(self, refs: tuple[BatchRef, ...],
                             batches: tuple[Batch, ...]) -> None:
        """Batches of a proven slot replace any other value held for the same instance (an
        equivocating origin's other batch, in the variants without reliable broadcast)."""
        for ref, batch in zip(refs, batches, strict=True):
            key = (ref.origin, ref.counter)
            held = self._batches.get(key)
            if held is None or held[0] != ref.digest:
                self._batches[key] = (ref.digest, batch)

    def _carried_ok(self, order: Order) -> bool:
        """UB: every batch an ORDER names travels in it, signed by its origin; the others
        carry none. Held batches become available before the ORDER is considered."""
        if self.variant != "ub":
            return not order.carried
        if len(order.carried) != len(order.refs):
            return False
        for frame, ref in zip(order.carried, order.refs, strict=True):
            try:
                raw = decode_frame(frame)
                if raw.kind != Send.KIND or raw.sender != ref.origin:
                    return False
                if not self._verify(raw.sender, raw.kind, raw.body, raw.signature):
                    return False
                signed = raw.parse()
            except WireError:
                return False
            message = signed.message
            assert isinstance(message, Send)
            if message.counter != ref.counter or message.batch.digest() != ref.digest:
                return False
            assert isinstance(self._brb, DirectDissemination)
            self._brb.accept(signed, authoritative=True)
        return True

    def _pump(self, now: float) -> None:
        """Run queued outputs and local messages until nothing more happens."""
        outbox = self._outbox
        while True:
            if outbox.brb_deliveries:
                deliveries, outbox.brb_deliveries = outbox.brb_deliveries, []
                for d in deliveries:
                    self._batches[(d.origin, d.counter)] = (d.digest, d.batch)
                    self._order.batch_available(BatchRef(d.origin, d.counter, d.digest), now)
            elif outbox.wanted:
                wanted, outbox.wanted = outbox.wanted, []
                if isinstance(self._brb, DirectDissemination):
                    for ref in wanted:
                        self._brb.want(ref, now)
            elif outbox.sends:
                sends, outbox.sends = outbox.sends, []
                for destination, item in sends:
                    self._send(destination, item)
            elif self._local:
                self._dispatch(self._local.popleft(), now)
            elif not self._deliver_ready(now):
                break
        if outbox.evidence:
            for ev in outbox.evidence:
                if ev.member != self.member:
                    self._evidence.setdefault(ev.member, ev)
            outbox.evidence.clear()

    def _send(self, destination: int | None, item: Message | Signed) -> None:
        if isinstance(item, Order) and self.variant == "ub" and not item.carried:
            assert isinstance(self._brb, DirectDissemination)
            item = attrs.evolve(item, carried=self._brb.carried(item.refs))
        signed = item if isinstance(item, Signed) else Signed.create(
            self.member, item, self._signer.sign
        )
        if destination == self.member:
            self._local.append(signed)
            return
        frame = signed.to_frame()
        targets = range(self.quorums.n) if destination is None else (destination,)
        for target in targets:
            if target == self.member:
                if signed.sender == self.member:
                    self._local.append(signed)
                continue
            self._frames.append(Outgoing(target, frame))
            self._messages_sent += 1
            self._bytes_sent += len(frame)

    def _deliver_ready(self, now: float) -> bool:
        """Deliver the next committed slot if its batches are here; True if one was."""
        slot = self._order.low
        committed = self._order.committed(slot)
        if committed is None:
            return False
        batches: list[Batch] = []
        fresh: list[BatchRef] = []
        for ref in committed.refs:
            if self._order.is_ordered(ref.origin, ref.counter):
                continue  # ordered in an earlier slot already: every payload is a repeat
            held = self._batches.get((ref.origin, ref.counter))
            if held is None or held[0] != ref.digest:
                if held is not None and isinstance(self._brb, DirectDissemination):
                    self._brb.want(ref, now)  # we hold an equivocated value: fetch this one
                return False  # still on its way through BRB or a catch-up proof
            batches.append(held[1])
            fresh.append(ref)
        self._deliveries.extend(self._log.deliver_slot(tuple(fresh), tuple(batches)))
        self._history[slot] = (committed.refs, tuple(
            self._history_batch(ref, fresh, batches) for ref in committed.refs
        ))
        self._delivered_at[slot] = now
        for ref in fresh:
            self._batches.pop((ref.origin, ref.counter), None)
            self._brb.forget(ref.origin, ref.counter)
            if ref.origin == self.member:
                self._own_in_flight.discard(ref.counter)
        self._order.slot_delivered(slot, now)
        self._timeouts.progressed()
        checkpoint = self._checkpoints.slot_delivered(slot, committed.refs)
        if checkpoint is not None:
            self._outbox.send(None, checkpoint)
        self._prune_history()
        self._flush_batches(now)
        return True

    def _history_batch(self, ref: BatchRef, fresh: list[BatchRef], batches: list[Batch]) -> Batch:
        """The batch behind ``ref`` for the served log: a repeated ref keeps its first copy."""
        if ref in fresh:
            return batches[fresh.index(ref)]
        for _, earlier in reversed(self._history.values()):
            for batch in earlier:
                if batch.digest() == ref.digest:
                    return batch
        return Batch(0, ())  # only after the first copy left retention; never served then

    def _prune_history(self) -> None:
        floor = self._order.low - self.settings.log_retention_slots
        while self._history:
            oldest = next(iter(self._history))
            if oldest >= floor:
                break
            del self._history[oldest]
            self._delivered_at.pop(oldest, None)

    def _flush_batches(self, now: float) -> None:
        """Cut pending payloads into batches while fewer than the limit are in flight."""
        settings = self.settings
        while len(self._own_in_flight) < settings.own_batches_in_flight_max:
            payloads = self._pending.cut(now)
            if payloads is None:
                return
            first = self._next_payload - len(self._pending) - len(payloads)
            counter = self._next_batch
            self._next_batch += 1
            self._own_in_flight.add(counter)
            self._brb.broadcast(counter, Batch(first, tuple(payloads)), now)

    def _on_status(self, peer: int, status: Status, now: float) -> None:
        """Help a lagging peer: the NEW-VIEW of a view it missed, then commit proofs of the
        slots it misses or, below the checkpoints, verified log segments (rate limited)."""
        low = self._order.low
        if status.next_slot > low and now - self._last_status >= self.settings.catchup_grace_s:
            # A peer is ahead: say where we are at the next tick rather than a status
            # interval later, so help comes now (a lie costs one extra STATUS at most).
            self._last_status = float("-inf")
        behind_view = status.view < self._order.view and self._new_view is not None
        if status.next_slot >= low and not behind_view:
            return
        # Only the f+1 members after the laggard (in ring order) answer: one of them is
        # correct, and a slow member is not buried under n-1 copies of the same help.
        if (self.member - peer) % self.quorums.n > self.quorums.one_honest:
            return
        key = (status.next_slot, status.view)
        last = self._served_at.get(peer)
        # Half the status interval: a laggard's periodic STATUS must never fall inside the
        # window its previous one opened (it did, by a hair, and help came a period late).
        if last is not None and last[1] == key and \
                now - last[0] < self.settings.status_interval_s / 2:
            return
        self._served_at[peer] = (now, key)
        if behind_view and self._new_view is not None:
            self._outbox.send(peer, self._new_view)
        budget = self.settings.catchup_slots_max
        slot = status.next_slot
        interval = self.settings.checkpoint_interval
        while slot < low and budget > 0:
            delivered_at = self._delivered_at.get(slot)
            if delivered_at is None or now - delivered_at < self.settings.catchup_grace_s:
                return
            proof = self._order.slot_proof(slot, self._history[slot][1])
            if proof is not None:
                self._outbox.send(peer, proof)
                slot += 1
                budget -= 1
                continue
            start = slot - slot % interval
            segment = self._segment(start)
            if segment is None:
                return
            self._outbox.send(peer, segment)
            slot = start + interval
            budget -= interval

    def _segment(self, start: int) -> LogSegment | None:
        """The checkpointed slots ``start..start+K-1`` with their batches, if all are held."""
        upto = start + self.settings.checkpoint_interval
        cert = self._checkpoints.cert_at(upto)
        if cert is None or any(s not in self._history for s in range(start, upto)):
            return None
        return LogSegment(cert, start, tuple(self._history[s] for s in range(start, upto)))

    def _on_segment(self, segment: LogSegment, now: float) -> None:
        """Adopt a checkpointed segment of the log: verified against its certificate by
        recomputing the hash chain from this member's own chain value at its start."""
        interval = self.settings.checkpoint_interval
        cert, start = segment.cert, segment.start
        low = self._order.low
        if start % interval or cert.upto != start + interval or len(segment.entries) != interval:
            self._outbox.drop("segment-malformed")
            return
        chain = self._checkpoints.chain_at(start)
        if low >= cert.upto or low < start or chain is None:
            self._outbox.drop("segment-not-needed")
            return
        for offset, (refs, batches) in enumerate(segment.entries):
            if len(refs) != len(batches) or len(refs) > self.settings.slot_refs_max or any(
                b.digest() != r.digest for b, r in zip(batches, refs, strict=True)
            ):
                self._outbox.drop("segment-malformed")
                return
            chain = chain_step(chain, start + offset, refs)
        if chain != cert.digest or not self._checkpoints.verify_cert(cert):
            self._outbox.drop("segment-bad-certificate")
            return
        for offset, (refs, batches) in enumerate(segment.entries):
            slot = start + offset
            if slot < low:
                continue
            self._order.adopt_settled(slot, refs)
            self._slots_from_segments += 1
            self._keep_proven_batches(refs, batches)
        while self._deliver_ready(now):
            pass
        self._adopt_checkpoint(cert)
        self._last_status = float("-inf")  # ask for the next segment at the next tick

    def _adopt_checkpoint(self, cert: CheckpointCert) -> None:
        if self._checkpoints.adopt(cert):
            self._order.forget_below(cert.upto)

    # -- view change ------------------------------------------------------------------------------

    def _detect_failure(self, now: float) -> None:
        """Suspect the sequencer when known work waited a timeout or this member holds proof
        that it equivocated, or move on to the next view when the NEW-VIEW for the one we
        are changing to does not come in time."""
        if self._changing_to is not None:
            # Move on only when q members were ready for the view we wait for (so its
            # sequencer really failed us); a member alone ahead would wait with nobody.
            if now >= self._vc_deadline and \
                    self._view_changes_at_least(self._changing_to) >= self.quorums.quorum:
                self._start_view_change(self._changing_to + 1, now)
            return
        if self.variant != "moving" and self._order.sequencer in self._evidence:
            # Proven Byzantine (two conflicting signed messages): replace it now, not when it
            # finally stalls - it may go on ordering while lying to some members.
            self._start_view_change(self._order.view + 1, now)
            return
        oldest = self._order.oldest_pending()
        if oldest is not None and now - oldest >= self._timeouts.current_s:
            self._start_view_change(self._order.view + 1, now)

    def _start_view_change(self, view: int, now: float) -> None:
        self._timeouts.view_changed()
        self._view_changes_started += 1
        self._order.suspend()
        self._changing_to = view
        self._vc_deadline = now + self._timeouts.current_s
        self._vc_last_sent = now
        stable = self._checkpoints.stable
        floor = 0 if stable is None else stable.upto
        prepared = tuple(  # our own certificates are valid by construction; check anyway
            cert for cert in self._order.prepared_certificates(floor)
            if valid_prepared_cert(cert, quorums=self.quorums, verify=self._verify)
        )
        change = ViewChange(view, stable, prepared)
        self._outbox.send(None, change)

    def _on_view_change(self, signed: Signed, change: ViewChange, now: float) -> None:
        current = self._order.view
        if change.view <= current:
            self._outbox.drop("viewchange-stale")
            return
        if change.view > current + self.settings.view_window:
            self._outbox.drop("viewchange-beyond-window")
            return
        held = self._view_changes.get(signed.sender)
        if held is not None:
            held_change = held.message
            assert isinstance(held_change, ViewChange)
            if held_change.view >= change.view:
                return
        if signed.sender != self.member and not valid_view_change(
            change, interval=self.settings.checkpoint_interval, quorums=self.quorums,
            verify=self._verify, prepared_max=self._prepared_max,
        ):
            self._outbox.drop("viewchange-invalid")
            return
        self._view_changes[signed.sender] = signed
        # Join: f+1 members want a higher view, so at least one honest member does.
        target = self._changing_to if self._changing_to is not None else current
        higher = sorted(v for v in self._wanted_views() if v > target)
        if len(higher) >= self.quorums.one_honest:
            self._start_view_change(higher[0], now)
        self._maybe_new_view(change.view, now)

    @property
    def _prepared_max(self) -> int:
        """Most prepared certificates a VIEW-CHANGE may carry: the slots between a stable
        checkpoint and the top of the watermark window."""
        return self.settings.slot_window + self.settings.log_retention_slots

    def _view_changes_at_least(self, view: int) -> int:
        """Members (this one included) whose latest VIEW-CHANGE is for ``view`` or higher."""
        return sum(1 for v in self._wanted_views() if v >= view)

    def _wanted_views(self) -> list[int]:
        views = []
        for held in self._view_changes.values():
            message = held.message
            assert isinstance(message, ViewChange)
            views.append(message.view)
        return views

    def _maybe_new_view(self, view: int, now: float) -> None:
        """As the sequencer of ``view``, start it once q VIEW-CHANGEs for it are in."""
        if view % self.quorums.n != self.member or self._changing_to != view:
            return
        changes = [s for s in self._view_changes.values()
                   if isinstance(s.message, ViewChange) and s.message.view == view]
        if len(changes) < self.quorums.quorum:
            return
        chosen = sorted(changes, key=lambda s: s.sender)[: self.quorums.quorum]
        messages = [s.message for s in chosen if isinstance(s.message, ViewChange)]
        plan = plan_new_view(view, messages)
        excluded: tuple[int, ...] = ()
        if self._order.moving:
            # Take the member whose turn stalled out of the rotation (at most f stay out).
            culprit = self._order.proposer(plan.first_free_slot)
            kept = tuple(m for m in self._order.excluded if m != culprit)
            excluded = (*kept, culprit)[-self.quorums.f:] if self.quorums.f else ()
        new_view = NewView(view, tuple(s.to_frame() for s in chosen), plan.reproposals,
                           excluded)
        self._outbox.send(None, new_view)
        self._new_view_last_sent = now

    def _on_new_view(self, signed: Signed, new_view: NewView, now: float) -> None:
        current = self._order.view
        if new_view.view <= current:  # each view is installed once
            self._outbox.drop("newview-stale")
            return
        if new_view.view > current + self.settings.view_window:
            self._outbox.drop("newview-beyond-window")
            return
        plan = verify_new_view(
            new_view, signed.sender, interval=self.settings.checkpoint_interval,
            quorums=self.quorums, verify=self._verify, prepared_max=self._prepared_max,
        )
        if plan is None:
            self._outbox.drop("newview-invalid")
            return
        excluded = new_view.excluded
        if len(set(excluded)) != len(excluded) or len(excluded) > self.quorums.f or any(
            not 0 <= m < self.quorums.n for m in excluded
        ) or (excluded and not self._order.moving):
            self._outbox.drop("newview-invalid")
            return
        if plan.checkpoint is not None:
            self._adopt_checkpoint(plan.checkpoint)
        self._changing_to = None
        self._new_view = signed
        for member in [m for m, s in self._view_changes.items()
                       if isinstance(s.message, ViewChange) and s.message.view <= plan.view]:
            del self._view_changes[member]
        self._order.install_view(plan.view, plan.reproposals, plan.first_free_slot, now,
                                 excluded)
        self._views.append(ViewInstalled(plan.view, now))
        if isinstance(self._brb, DirectDissemination):
            self._brb.view_installed(now)
            for item in plan.reproposals:
                for ref in item.refs:
                    if (ref.origin, ref.counter) not in self._batches and \
                            not self._order.is_ordered(ref.origin, ref.counter):
                        self._brb.want(ref, now)
        held, self._early_view_messages = self._early_view_messages, deque(
            maxlen=self.settings.future_view_messages_max
        )
        for early in held:
            message = early.message
            if isinstance(message, (Order, OrderEcho)) and message.view == plan.view:
                self._order.on_message(early, now)
            elif isinstance(message, (Order, OrderEcho)) and message.view > plan.view:
                self._early_view_messages.append(early)
