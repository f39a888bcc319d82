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

from btob._brb import make_brb
from btob._delivery import Delivery, DeliveryLog, MsgId
from btob._effects import Evidence, Outbox
from btob._errors import BtobError, ConfigError, WireError
from btob._order import FixedSequencerOrder
from btob._quorum import Quorums
from btob._settings import Settings
from btob._wire import (
    Batch,
    BatchRef,
    Echo,
    Final,
    Message,
    Order,
    OrderEcho,
    Send,
    Signed,
    SlotProof,
    Status,
    decode_frame,
)
from crypto import Backend, KeyRegistry, Signer, SigningKey, Verifier

__all__ = ["BacklogFull", "Member", "MemberStatistics", "Outgoing", "PayloadTooLarge"]


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
        settings: Settings | None = None,
        backend: Backend | None = None,
    ) -> None:
        n = registry.n
        if not 0 <= member < n:
            raise ConfigError(f"member id {member} is outside 0..{n - 1}")
        self.member = member
        self.quorums = Quorums.for_cluster(n, f)
        self.settings = settings or Settings()
        self._signer = Signer(signing_key, cluster_id=cluster_id, backend=backend)
        if self._signer.public_key != registry.public_key(member):
            raise ConfigError(f"the signing key does not match member {member}'s public key")
        self._verifier = Verifier(
            registry, cluster_id=cluster_id, backend=backend,
            cache_entries_max=self.settings.verify_cache_entries_max,
        )
        self._outbox = Outbox()
        common = dict(member=member, quorums=self.quorums, settings=self.settings,
                      outbox=self._outbox, verify=self._verifier.verify)
        self._brb = make_brb(brb, **common)  # type: ignore[arg-type]
        self._order = FixedSequencerOrder(**common)  # type: ignore[arg-type]
        self._log = DeliveryLog(
            early_payloads_max_per_origin=self.settings.early_payloads_max_per_origin
        )
        self._batches: dict[tuple[int, int], tuple[bytes, Batch]] = {}
        self._history: dict[int, tuple[Batch, ...]] = {}
        self._delivered_at: dict[int, float] = {}
        self._pending: deque[bytes] = deque()
        self._next_payload = 0
        self._next_batch = 0
        self._own_in_flight: set[int] = set()
        self._frames: list[Outgoing] = []
        self._deliveries: list[Delivery] = []
        self._local: deque[Signed] = deque()
        self._evidence: dict[int, Evidence] = {}
        self._served_at: dict[int, float] = {}
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
        self._pending.append(bytes(payload))
        self._flush_batches(now)
        self._pump(now)
        return msg_id

    def receive(self, frame: bytes, now: float) -> None:
        """Handle a frame from the network; bad frames are dropped and counted."""
        self._frames_received += 1
        try:
            raw = decode_frame(frame)
        except WireError:
            self._gate_dropped["malformed-frame"] += 1
            return
        if raw.sender == self.member:
            self._gate_dropped["own-frame-returned"] += 1  # a forward or replay of ours
            return
        if not self._verifier.verify(raw.sender, raw.kind, raw.body, raw.signature):
            self._gate_dropped["bad-signature"] += 1
            return
        try:
            signed = raw.parse()
        except WireError:
            self._gate_dropped["malformed-body"] += 1
            return
        self._dispatch(signed, now)
        self._pump(now)

    def tick(self, now: float) -> None:
        """Let time pass: retransmit stale messages and, periodically, send STATUS."""
        self._brb.retransmit(now)
        self._order.retransmit(now)
        if now - self._last_status >= self.settings.status_interval_s:
            self._last_status = now
            self._outbox.send(None, Status(self._order.low))
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
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _dispatch(self, signed: Signed, now: float) -> None:
        message = signed.message
        if isinstance(message, (Send, Echo, Final)):
            self._brb.on_message(signed, now)
        elif isinstance(message, (Order, OrderEcho)):
            self._order.on_message(signed, now)
        elif isinstance(message, Status):
            self._on_status(signed.sender, message, now)
        elif isinstance(message, SlotProof) and self._order.on_slot_proof(message):
            for ref, batch in zip(message.refs, message.batches, strict=True):
                self._batches.setdefault((ref.origin, ref.counter), (ref.digest, batch))

    def _pump(self, now: float) -> None:
        """Run queued outputs and local messages until nothing more happens."""
        outbox = self._outbox
        while True:
            if outbox.brb_deliveries:
                deliveries, outbox.brb_deliveries = outbox.brb_deliveries, []
                for d in deliveries:
                    self._batches.setdefault((d.origin, d.counter), (d.digest, d.batch))
                    self._order.batch_available(BatchRef(d.origin, d.counter, d.digest), now)
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
        for ref in committed.refs:
            held = self._batches.get((ref.origin, ref.counter))
            if held is None or held[0] != ref.digest:
                return False  # still on its way through BRB or a catch-up proof
            batches.append(held[1])
        batch_tuple = tuple(batches)
        self._deliveries.extend(self._log.deliver_slot(committed.refs, batch_tuple))
        self._history[slot] = batch_tuple
        self._delivered_at[slot] = now
        for ref in committed.refs:
            self._batches.pop((ref.origin, ref.counter), None)
            self._brb.forget(ref.origin, ref.counter)
            if ref.origin == self.member:
                self._own_in_flight.discard(ref.counter)
        self._order.slot_delivered(slot, now)
        self._flush_batches(now)
        return True

    def _flush_batches(self, now: float) -> None:
        """Cut pending payloads into batches while fewer than the limit are in flight."""
        settings = self.settings
        while self._pending and len(self._own_in_flight) < settings.own_batches_in_flight_max:
            payloads: list[bytes] = []
            size = 0
            while self._pending and len(payloads) < settings.batch_payloads_max:
                nxt = len(self._pending[0])
                if payloads and size + nxt > settings.batch_bytes_max:
                    break
                payloads.append(self._pending.popleft())
                size += nxt
            first = self._next_payload - len(self._pending) - len(payloads)
            counter = self._next_batch
            self._next_batch += 1
            self._own_in_flight.add(counter)
            self._brb.broadcast(counter, Batch(first, tuple(payloads)), now)

    def _on_status(self, peer: int, status: Status, now: float) -> None:
        """Send a lagging peer the commit proofs of the slots it misses (rate limited)."""
        low = self._order.low
        if status.next_slot >= low:
            return
        if now - self._served_at.get(peer, float("-inf")) < self.settings.status_interval_s:
            return
        self._served_at[peer] = now
        end = min(low, status.next_slot + self.settings.catchup_slots_max)
        for slot in range(status.next_slot, end):
            delivered_at = self._delivered_at.get(slot)
            if delivered_at is None or now - delivered_at < self.settings.catchup_grace_s:
                break
            self._outbox.send(peer, self._order.slot_proof(slot, self._history[slot]))
