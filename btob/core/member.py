"""One member of a btob cluster as a pure state machine: the cores wired together.

:class:`Member` is what every driver runs (the simulator and the Trio runtime alike). It takes
inputs - a payload to broadcast, a frame from the network, the passage of time - each with the
current time as an argument, and queues outputs: frames to send and deliveries. It never
awaits, reads a clock, or draws random numbers.

The cores and where their rules live: dissemination (:mod:`btob.core.dissemination`, one
strategy per variant), ordering with its proposer policy (:mod:`btob.core.ordering`,
:mod:`btob.core.proposers`), the view change (:mod:`btob.core.viewchange`), checkpoints
(:mod:`btob.core.checkpoint`), catch-up (:mod:`btob.core.catchup`), recovery - what is
kept on disk, snapshots, restore and state transfer - (:mod:`btob.core.recovery`) and
delivery (:mod:`btob.core.delivery`). This module only routes between them.

Input gate: every frame is decoded with bounds, its signature checked against the sender's
key under the domain tag of its kind, and only then parsed and handed to the core the
dispatch table names for its kind; anything that fails is dropped and counted. Output
discipline: messages are signed once and framed once, whatever the number of destinations;
messages to oneself are handled locally at once.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence

import attrs

from btob._errors import BtobError, ConfigError, WireError
from btob.core.application import StateMachine
from btob.core.batching import PendingPayloads
from btob.core.catchup import CatchUp
from btob.core.checkpoint import CheckpointTracker
from btob.core.clients import ClientAdmission, ClientLog
from btob.core.clientwire import Notice, Receipt, Reply, SignedReply, decode_request
from btob.core.contract import MemberStatistics, Outgoing
from btob.core.delivery import Delivery, DeliveryLog, MsgId
from btob.core.durable import DurableChanges, DurableState, SlotRecord, Snapshot
from btob.core.effects import Evidence, Outbox, VerifyFn
from btob.core.journal import SigningJournal
from btob.core.merkle import merkle_proofs
from btob.core.ordering import Ordering
from btob.core.quorum import Quorums
from btob.core.recovery import EncodedState, Recovery, StateWork
from btob.core.settings import Settings
from btob.core.transfer import ChunkServer, StateTransfer
from btob.core.variants import VARIANTS
from btob.core.variants import variant as variant_named
from btob.core.viewchange import NewViewPlan, ViewChanger, ViewInstalled
from btob.core.wire import (
    Batch,
    BatchRef,
    CheckpointCert,
    Chunk,
    LogSegment,
    Message,
    NewView,
    Order,
    Signed,
    SlotProof,
    Status,
    Vote,
    WireLimits,
    decode_frame,
)
from btob.crypto import Backend, KeyRegistry, Signer, SigningKey, Verifier

__all__ = [
    "VARIANTS", "BacklogFull", "ClientOutput", "CountersUnknown", "Member", "MemberStatistics",
    "Outgoing", "PayloadTooLarge", "RequestRefused", "ViewInstalled",
]

Handler = Callable[[Signed, float], None]


class PayloadTooLarge(BtobError):
    """A submitted payload exceeds ``Settings.payload_bytes_max`` (the caller's fault)."""


class BacklogFull(BtobError):
    """``Settings.pending_payloads_max`` payloads already wait for a batch; retry later."""


class CountersUnknown(BacklogFull):
    """The member restarted with nothing on disk and has not yet learned from its peers
    where its own counters stand (a new payload could reuse an id); retry later."""


class RequestRefused(BtobError):
    """A client request was not taken (malformed, not admitted, a bad signature, too large,
    already delivered, or the member's backlog is full); the message says which."""


ClientOutput = tuple[bytes, bytes]
"""``(client key, frame)``: a RECEIPT or NOTICE frame for the client holding that key."""


class Member:
    """The protocol of one member, sans-IO.

    Drive it with :meth:`submit`, :meth:`receive` and :meth:`tick`, then collect frames and
    deliveries with :meth:`take_outputs`. ``tick`` must be called at least every
    ``min(Settings.retransmit_interval_s, Settings.status_interval_s)`` seconds.

    ``quorums``, ``verify`` and ``ordering`` replace the thresholds, the signature check and
    the ordering core a member would build for itself; they exist so that a test kit can build
    deliberately broken members (:mod:`btob.testing.breaks`) without a switch in this code.

    ``app`` is the application the member feeds each delivery to and snapshots at every
    checkpoint (:class:`~btob.core.application.StateMachine`). Durability follows
    :mod:`btob.core.durable`: :meth:`take_durable` says what must be committed before the
    frames taken since the last call leave, and :meth:`restore` resumes from it.
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
        quorums: Quorums | None = None,
        verify: VerifyFn | None = None,
        ordering: type[Ordering] = Ordering,
        app: StateMachine | None = None,
        clients: ClientAdmission | None = None,
    ) -> None:
        n = registry.n
        if not 0 <= member < n:
            raise ConfigError(f"member id {member} is outside 0..{n - 1}")
        strategy = variant_named(variant)
        self.member = member
        self.variant = variant
        self.quorums = quorums or Quorums.for_cluster(n, f)
        if self.quorums.n != n:
            raise ConfigError(f"quorums for n={self.quorums.n} given to a cluster of {n}")
        self.settings = settings or Settings()
        self._limits = WireLimits(frame_bytes_max=self.settings.frame_bytes_max)
        self._signer = Signer(signing_key, cluster_id=cluster_id, backend=backend)
        if self._signer.public_key != registry.public_key(member):
            raise ConfigError(f"the signing key does not match member {member}'s public key")
        self._verifier = Verifier(
            registry, cluster_id=cluster_id, backend=backend,
            cache_entries_max=self.settings.verify_cache_entries_max,
        )
        self._verify = verify or self._verifier.verify
        self._outbox = Outbox()
        self._journal = SigningJournal(member, self._signer.sign)
        self._app = app
        common = dict(member=member, quorums=self.quorums, settings=self.settings,
                      outbox=self._outbox, verify=self._verify)
        self._order = ordering(**common, proposer=strategy.proposer)  # type: ignore[arg-type]
        order = self._order
        self._dissemination = strategy.dissemination(
            brb, **common,  # type: ignore[arg-type]
            leader=lambda: order.leader, ordered_low=order.ordered_low,
            sign=self._journal.sign,
        )
        self._checkpoints = CheckpointTracker(
            member=member, quorums=self.quorums, interval=self.settings.checkpoint_interval,
            window=self.settings.slot_window, retained=self.settings.log_retention_slots,
            outbox=self._outbox, verify=self._verify,
        )
        self._evidence: dict[int, Evidence] = {}
        self._view_changer = ViewChanger(**common, order=order,  # type: ignore[arg-type]
                                         checkpoints=self._checkpoints, evidence=self._evidence)
        vc = self._view_changer
        self._catchup = CatchUp(member=member, quorums=self.quorums, settings=self.settings,
                                outbox=self._outbox, order=order, checkpoints=self._checkpoints,
                                new_view=lambda: vc.new_view, seen=self._seen,
                                snapshot=lambda: self.snapshot)
        self._transfer = StateTransfer(member=member, quorums=self.quorums,
                                       settings=self.settings, outbox=self._outbox)
        self._chunk_server = ChunkServer(settings=self.settings, outbox=self._outbox)
        self._log = DeliveryLog(
            early_payloads_max_per_origin=self.settings.early_payloads_max_per_origin,
            clients=ClientLog(admission=clients or ClientAdmission(),
                              window=self.settings.client_window,
                              tracked_max=self.settings.clients_tracked_max,
                              frame_bytes_max=self.settings.request_bytes_max,
                              verify=self._verifier.verify_key,
                              hold_slots=self.settings.client_hold_slots),
        )
        self._admission = clients or ClientAdmission()
        # Requests a client asked this member to order, by (client, session, seq): whoever
        # relays them, this member sends the client a receipt when one is delivered.
        self._awaited: dict[tuple[bytes, int, int], None] = {}
        self._client_outputs: list[ClientOutput] = []
        self._replies: dict[tuple[bytes, int, int], bytes] = {}  # oldest first
        # Receipts of awaited requests that committed and wait for their delivery.
        self._committed_at: dict[tuple[bytes, int, int], Receipt] = {}
        # Recently delivered client requests: (delivery index, delivery slot), oldest first.
        self._delivered_requests: dict[tuple[bytes, int, int], tuple[int, int]] = {}
        self._batches: dict[tuple[int, int], tuple[bytes, Batch]] = {}
        self._pending = PendingPayloads(self.settings)
        self._next_payload = 0
        self._next_batch = 0
        self._own_in_flight: set[int] = set()
        self._recovery = Recovery(
            member=member, quorums=self.quorums, settings=self.settings, outbox=self._outbox,
            journal=self._journal, order=order, dissemination=self._dissemination,
            log=self._log, checkpoints=self._checkpoints, view_changer=vc,
            transfer=self._transfer, chunk_server=self._chunk_server, app=app,
            batches=self._batches, own_in_flight=self._own_in_flight, pending=self._pending,
            deliver_ready=self._deliver_ready, install_view=self._install_view,
        )
        self._frames: list[Outgoing] = []
        self._deliveries: list[Delivery] = []
        self._local: deque[Signed] = deque()
        self._messages_sent = 0
        self._bytes_sent = 0
        self._frames_received = 0
        self._submitted = 0
        self._gate_dropped: Counter[str] = Counter()
        dissemination = self._dissemination.on_message
        self._handlers: dict[str, Handler] = {
            "brb.send": dissemination, "brb.echo": dissemination, "brb.ready": dissemination,
            "brb.fetch": dissemination, "brb.final": dissemination,
            "uub.request": lambda signed, now: order.on_request(signed),
            "ord.order": self._on_order,
            "ord.echo": self._on_vote,
            "ord.ready": self._on_vote,
            "ord.prepared": self._on_vote,
            "ord.committed": self._on_vote,
            "ctl.status": self._on_status,
            "ctl.slot": self._on_slot_proof,
            "ctl.segment": self._on_segment,
            "ctl.chunkreq": lambda signed, now: self._chunk_server.on_request(
                signed.sender, signed.message, self.snapshot, now),  # type: ignore[arg-type]
            "ctl.chunk": self._on_chunk,
            "ckp.checkpoint": self._on_checkpoint,
            "vc.viewchange": vc.on_view_change,
            "vc.newview": self._on_new_view,
        }
        """The core that handles each message kind (every kind of :data:`wire.KINDS`)."""
        needless = self._dissemination.needless
        self._needless: dict[str, Callable[[Signed], bool]] = {
            "brb.send": needless, "brb.echo": needless, "brb.ready": needless,
            "brb.fetch": needless, "brb.final": needless,
            "ord.echo": order.needless, "ord.ready": order.needless,
            "ord.prepared": order.needless, "ord.committed": order.needless,
        }
        """Kinds whose late copies may be dropped before their signature check."""

    # -- inputs -------------------------------------------------------------------------------

    def submit(self, payload: bytes, now: float) -> MsgId:
        """TO-broadcast ``payload``; returns its message id.

        Raises :class:`PayloadTooLarge` or :class:`BacklogFull`; nothing is queued then.
        """
        if len(payload) > self.settings.payload_bytes_max:
            raise PayloadTooLarge(
                f"payload of {len(payload)} bytes exceeds {self.settings.payload_bytes_max}"
            )
        if not self._recovery.counters_known:
            raise CountersUnknown(f"member {self.member} restarted with nothing on disk and "
                                  f"is still learning its counters from its peers")
        if len(self._pending) >= self.settings.pending_payloads_max:
            raise BacklogFull(f"{len(self._pending)} payloads already wait for a batch")
        msg_id = MsgId(self.member, self._next_payload)
        self._next_payload += 1
        self._submitted += 1
        self._recovery.payload_accepted(msg_id.counter, bytes(payload))
        self._pending.add(bytes(payload), now)
        self._flush_batches(now)
        self._pump(now)
        return msg_id

    def submit_request(self, frame: bytes, now: float) -> None:
        """Take a client's signed REQUEST ``frame`` for ordering; its receipt (or a NOTICE)
        comes out of :meth:`take_client_outputs`, addressed to the client's key.

        Raises :class:`RequestRefused` naming the reason; nothing is queued then.
        """
        settings = self.settings
        bound = min(settings.request_bytes_max, settings.batch_bytes_max)
        if len(frame) > bound:
            raise RequestRefused(f"request of {len(frame)} bytes exceeds {bound}")
        try:
            request, body, signature = decode_request(
                frame, frame_bytes_max=settings.request_bytes_max)
        except WireError as exc:
            raise RequestRefused(f"malformed request: {exc}") from None
        if not self._admission.admits(request.client):
            raise RequestRefused("the client key is not admitted by this cluster")
        if not self._verifier.verify_key(request.client, "client.request", body, signature):
            raise RequestRefused("the request's signature does not verify")
        if len(request.payload) > settings.payload_bytes_max:
            raise RequestRefused(f"payload of {len(request.payload)} bytes exceeds "
                                 f"{settings.payload_bytes_max}")
        clients = self._log.clients
        assert clients is not None
        known = clients.next_seq(request.client)
        if known is not None and (request.session, request.seq) < known:
            key = (request.client, request.session, request.seq)
            again = [f for f in (self._receipt_again(key), self._replies.get(key)) if f]
            if again:  # delivered already: the client lost the receipt or the reply
                self._client_outputs += [(request.client, frame) for frame in again]
                return
            raise RequestRefused(f"request {request.session}.{request.seq} was delivered "
                                 f"already or its session is over")
        key = (request.client, request.session, request.seq)
        if key in self._awaited:
            return  # a retransmission: it is in a batch already, its receipt will come
        if (self._pending.requests >= settings.pending_requests_max
                or len(self._awaited) >= 2 * settings.pending_requests_max):
            raise RequestRefused(f"{self._pending.requests} requests already wait")
        self._awaited[key] = None
        self._pending.add_request(frame, now)
        self._flush_batches(now)
        self._pump(now)

    def reply(self, delivery: Delivery, result: bytes) -> None:
        """Send the client whose request ``delivery`` is the application's ``result``, as
        this member's signed REPLY (out of :meth:`take_client_outputs`)."""
        if not delivery.client:
            raise ValueError("only a client's request can be replied to")
        reply = Reply(delivery.client, delivery.msg_id.session, delivery.msg_id.counter,
                      delivery.index, bytes(result))
        frame = SignedReply.create(self.member, reply, self._signer.sign).to_frame()
        self._client_outputs.append((delivery.client, frame))
        # Kept for a while: a client that was not connected when its request was delivered
        # asks again, and gets the reply instead of "delivered already".
        self._replies[(reply.client, reply.session, reply.seq)] = frame
        while len(self._replies) > self.settings.pending_requests_max:
            del self._replies[next(iter(self._replies))]

    def take_client_outputs(self) -> list[ClientOutput]:
        """RECEIPT, NOTICE and REPLY frames for clients since the last call."""
        outputs, self._client_outputs = self._client_outputs, []
        return outputs

    def receive(self, frame: bytes, now: float, *, source: int | None = None) -> None:
        """Handle a frame from the network; bad frames are dropped and counted.

        ``source`` is the peer the transport says the frame came from; the protocol trusts
        signatures only and ignores it (fault drivers use it).
        """
        self._frames_received += 1
        if len(frame) > self.settings.frame_bytes_max:
            self._gate_dropped["oversized-frame"] += 1
            return
        try:
            raw = decode_frame(frame, self._limits)
        except WireError:
            self._gate_dropped["malformed-frame"] += 1
            return
        if raw.sender == self.member and not (
                raw.kind == "brb.send" and self._dissemination.lost_own()):
            self._gate_dropped["own-frame-returned"] += 1  # a forward or replay of ours
            return
        try:
            signed = raw.parse(self._limits)
        except WireError:
            self._gate_dropped["malformed-body"] += 1
            return
        needless = self._needless.get(signed.kind)
        if needless is not None and needless(signed):
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
        """Let time pass: suspect a stalled leader, retransmit stale messages and,
        periodically, send STATUS (and an unstable CHECKPOINT) to every peer."""
        self._view_changer.detect_failure(now)
        self._flush_batches(now)
        self._dissemination.retransmit(now)
        self._order.retransmit(now)
        self._view_changer.retransmit(now)
        if self._lacks_committed_batch():
            # The batch may be gone from the reliable broadcast everywhere (its slot was
            # delivered there): peers that see this member behind send the slot's proof.
            self._catchup.ask_soon()
        self._catchup.tick(now)
        self._transfer.tick(now)
        self._pump(now)

    def take_outputs(self) -> tuple[list[Outgoing], list[Delivery]]:
        """Frames to send and deliveries made since the last call (persist, send, deliver)."""
        frames, self._frames = self._frames, []
        deliveries, self._deliveries = self._deliveries, []
        return frames, deliveries

    def take_durable(self) -> DurableChanges:
        """Changes to the durable state since the last call (see :mod:`btob.core.durable`):
        commit them before any frame taken since then leaves."""
        return self._recovery.take_changes()

    @property
    def defer_state_work(self) -> bool:
        """Whether the driver encodes and hashes the checkpoint boundaries' states (see
        :meth:`take_state_work`); False (the default): the member does it as it reaches a
        boundary. A driver with an event loop sets it, to do that O(state) work in a thread."""
        return self._recovery.defer_state_work

    @defer_state_work.setter
    def defer_state_work(self, value: bool) -> None:
        self._recovery.defer_state_work = value

    def take_state_work(self) -> list[StateWork]:
        """With :attr:`defer_state_work`: the checkpoint boundaries' states captured since the
        last call, to encode and hash off the event loop (:meth:`StateWork.run
        <btob.core.recovery.StateWork.run>`), each result handed back to :meth:`state_done`
        in order. Without it, always empty: the member does that work itself."""
        work, self._recovery.state_work = self._recovery.state_work, []
        return work

    def state_done(self, done: EncodedState, now: float) -> None:
        """A boundary's state is encoded and hashed: sign its root in a CHECKPOINT, and take
        the snapshot if that boundary is already stable."""
        self._recovery.state_done(done)
        self._pump(now)

    def restore(self, state: DurableState, now: float) -> None:
        """Resume from committed ``state``; call on a fresh member before any other input.

        The member takes back what it signed (and repeats it rather than contradict it), its
        snapshot and the slots it delivered above it - handing out those deliveries again,
        with their original indices, for its driver to publish - the view it was in or
        changing to, its own batches in flight and the payloads still waiting for a batch.
        Everything it had only received is gone; peers retransmit it.

        An empty ``state`` is a member whose data directory is new - or was wiped: it takes
        no payload (:class:`CountersUnknown`) until the STATUS of ``n - 1 - f`` peers told it
        where its counters stand, and continues above the (f+1)-th highest report (one that
        some honest peer vouches for; a Byzantine one cannot push it into a gap). A member
        of a cluster of one has no peer to ask, and nobody who could have seen its counters.
        """
        counters = self._recovery.restore(state, now)
        if counters is not None:
            self._continue_above(*counters)
            self._pump(now)

    # -- queries ------------------------------------------------------------------------------

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """Proof of misbehaviour collected so far, at most one per member."""
        return tuple(self._evidence[m] for m in sorted(self._evidence))

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest stable snapshot this member holds (what it serves to laggards)."""
        return self._recovery.snapshot

    @property
    def transferred_to(self) -> int | None:
        """The delivery index a state transfer last jumped to (the deliveries below it were
        made elsewhere and are in the snapshot); None if it never transferred."""
        return self._recovery.transferred_to

    @property
    def next_slot(self) -> int:
        """Every slot below this one is delivered here."""
        return self._order.low

    @property
    def view(self) -> int:
        """The view this member is in (or leaving, while a view change is under way)."""
        return self._order.view

    @property
    def leader(self) -> int:
        """The leader of the current view (its sequencer, in the fixed variants)."""
        return self._order.leader

    def take_view_changes(self) -> list[ViewInstalled]:
        """Views installed since the last call."""
        return self._view_changer.take_installed()

    def statistics(self) -> MemberStatistics:
        """A frozen snapshot of counters and held-state sizes."""
        verifier = self._verifier.statistics()
        dropped = Counter(self._gate_dropped)
        dropped.update(self._outbox.dropped)
        vc_held = self._view_changer.held()
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
            brb_instances=self._dissemination.instances(),
            open_slots=self._order.slots_held(),
            pending_payloads=len(self._pending),
            early_payloads=self._log.early_held(),
            batches_held=len(self._batches),
            view=self._order.view,
            view_changes_started=self._view_changer.started,
            stable_checkpoint=self._checkpoints.stable_upto,
            proofs_held=self._order.proofs_held(),
            checkpoint_state_held=self._checkpoints.held(),
            history_slots_held=self._catchup.held(),
            view_changes_held=vc_held["view_changes"],
            slots_from_proofs=self._catchup.slots_from_proofs,
            slots_from_segments=self._catchup.slots_from_segments,
            transfer=self._transfer.statistics(),
            journal_refused=self._journal.refused,
            counters_known=self._recovery.counters_known,
        )

    def held_state(self) -> dict[str, int]:
        """Sizes of everything peers can make this member hold, by name (for bound checks)."""
        vc_held = self._view_changer.held()
        return {
            "brb_instances": self._dissemination.instances(),
            "open_slots": self._order.slots_held(),
            "batches_waiting": self._order.batches_waiting(),
            "batches_held": len(self._batches),
            "proofs": self._order.proofs_held(),
            "checkpoint_state": self._checkpoints.held(),
            "history_slots": self._catchup.held(),
            "transfer_chunks": self._transfer.held(),
            "snapshot_states": self._recovery.held(),
            "journal": self._journal.held(),
            "view_changes": vc_held["view_changes"],
            "early_payloads": self._log.early_held(),
            "evidence": len(self._evidence),
            "early_view_messages": vc_held["early_view_messages"],
            "verify_cache": self._verifier.statistics().cache_entries,
        }

    # -- routing ------------------------------------------------------------------------------

    def _dispatch(self, signed: Signed, now: float) -> None:
        self._handlers[signed.kind](signed, now)

    def _on_chunk(self, signed: Signed, now: float) -> None:
        chunk = signed.message
        assert isinstance(chunk, Chunk)
        if self._recovery.on_chunk(signed.sender, chunk, now):
            self._catchup.ask_soon()
            while self._deliver_ready(now):
                pass

    def _on_order(self, signed: Signed, now: float) -> None:
        order = signed.message
        assert isinstance(order, Order)
        if not self._dissemination.admit_order(order):
            self._outbox.drop("order-bad-carried-batches")
        elif not self._view_changer.hold_early(signed):
            self._dissemination.on_order(signed, self._order.leader)
            self._order.on_message(signed, now)

    def _on_vote(self, signed: Signed, now: float) -> None:
        if not self._view_changer.hold_early(signed):
            self._order.on_message(signed, now)

    def _on_status(self, signed: Signed, now: float) -> None:
        status = signed.message
        assert isinstance(status, Status)
        self._catchup.on_status(signed.sender, status, now)
        learned = self._recovery.learn_counters(signed.sender, status)
        if learned is not None:
            self._continue_above(*learned)
            self._order.reconsider(now)  # it may sign ordering messages again (above a floor)

    def _continue_above(self, batch: int, payload: int) -> None:
        """Own counters continue at least at ``batch`` and ``payload`` (what a restart found
        or the peers reported): no id is used twice."""
        self._next_batch = max(self._next_batch, batch)
        self._next_payload = self._submitted = max(self._next_payload, payload)

    def known_counters(self, origin: int) -> tuple[int, int]:
        """The next batch and payload counters of ``origin`` this member knows of (ordered
        or in flight), as its STATUS reports them."""
        seen = self._seen()
        return seen[2 * origin], seen[2 * origin + 1]

    def _seen(self) -> tuple[int, ...]:
        """Per origin: the next batch and payload counters known here (for STATUS)."""
        seen: list[int] = []
        for origin in range(self.quorums.n):
            batch, payload = self._dissemination.seen_from(origin)
            seen += [max(batch, self._order.ordered_low(origin)),
                     max(payload, self._log.next_counter(origin))]
        if self._recovery.counters_known:  # our own counters, once we know them
            seen[2 * self.member:2 * self.member + 2] = [
                max(seen[2 * self.member], self._next_batch),
                max(seen[2 * self.member + 1], self._next_payload)]
        return tuple(seen)

    def _on_checkpoint(self, signed: Signed, now: float) -> None:
        cert = self._checkpoints.on_checkpoint(signed)
        if cert is not None:
            self._stable(cert)

    def _adopt_checkpoint(self, cert: CheckpointCert) -> None:
        if self._checkpoints.adopt(cert):
            self._stable(cert)

    def _stable(self, cert: CheckpointCert) -> None:
        """A checkpoint became stable: release proofs below it, and snapshot if we can."""
        self._order.forget_below(cert.upto)
        self._recovery.maybe_snapshot(cert.upto)

    def _on_new_view(self, signed: Signed, now: float) -> None:
        plan = self._view_changer.on_new_view(signed, now)
        if plan is not None:
            self._recovery.view_installed(signed.to_frame())
            new_view = signed.message
            assert isinstance(new_view, NewView)
            self._install_view(plan, new_view.excluded, now)

    def _install_view(self, plan: NewViewPlan, excluded: tuple[int, ...], now: float) -> None:
        """Enter a verified view in every core: its checkpoint, its re-proposals, the new
        sequencer for dissemination, and the ordering messages that came ahead of it."""
        if plan.checkpoint is not None:
            self._adopt_checkpoint(plan.checkpoint)
        self._order.install_view(plan.view, plan.reproposals, plan.first_free_slot, now,
                                 excluded)
        self._dissemination.view_installed(now)
        for item in plan.reproposals:
            for ref in item.refs:
                if (ref.origin, ref.counter) not in self._batches and \
                        not self._order.is_ordered(ref.origin, ref.counter):
                    self._dissemination.want(ref, now)
        for early in self._view_changer.release_early(plan.view):
            self._order.on_message(early, now)

    def _on_slot_proof(self, signed: Signed, now: float) -> None:
        proof = signed.message
        assert isinstance(proof, SlotProof)
        if self._catchup.on_slot_proof(proof):
            self._keep_proven_batches(proof.refs, proof.batches)

    def _on_segment(self, signed: Signed, now: float) -> None:
        segment = signed.message
        assert isinstance(segment, LogSegment)
        if not segment.entries and segment.start == segment.cert.upto:
            self._recovery.offer(segment.cert, now)
            return
        adopted = self._catchup.on_segment(segment)
        if adopted is None:
            return
        for refs, batches in adopted.entries:
            self._keep_proven_batches(refs, batches)
        while self._deliver_ready(now):
            pass
        self._adopt_checkpoint(adopted.cert)
        self._catchup.ask_soon()  # ask for the next segment at the next tick

    def _keep_proven_batches(self, refs: tuple[BatchRef, ...],
                             batches: tuple[Batch, ...]) -> None:
        """Batches of a proven slot replace any other value held for the same instance (an
        equivocating origin's other batch, in the variants without reliable broadcast)."""
        for ref, batch in zip(refs, batches, strict=True):
            key = (ref.origin, ref.counter)
            held = self._batches.get(key)
            if held is None or held[0] != ref.digest:
                self._batches[key] = (ref.digest, batch)

    # -- outputs ------------------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        """Run queued outputs and local messages until nothing more happens."""
        outbox = self._outbox
        while True:
            if outbox.held:
                holdings, outbox.held = outbox.held, []
                for d in holdings:
                    self._batches[(d.origin, d.counter)] = (d.digest, d.batch)
                    self._order.batch_held(BatchRef(d.origin, d.counter, d.digest), now)
            elif outbox.brb_deliveries:
                deliveries, outbox.brb_deliveries = outbox.brb_deliveries, []
                for d in deliveries:
                    self._batches[(d.origin, d.counter)] = (d.digest, d.batch)
                    self._order.batch_available(BatchRef(d.origin, d.counter, d.digest), now)
            elif outbox.wanted:
                wanted, outbox.wanted = outbox.wanted, []
                for ref in wanted:
                    if not self._holds(ref):  # a catch-up proof may have brought it
                        self._dissemination.want(ref, now)
            elif outbox.sends:
                sends, outbox.sends = outbox.sends, []
                for destination, item in sends:
                    self._send(destination, item)
            elif self._local:
                self._dispatch(self._local.popleft(), now)
            elif not self._deliver_ready(now):
                break
        if outbox.prepared:
            for cert in outbox.prepared:
                self._recovery.prepared(cert)
            outbox.prepared.clear()
        if outbox.evidence:
            for ev in outbox.evidence:
                if ev.member != self.member:
                    self._evidence.setdefault(ev.member, ev)
            outbox.evidence.clear()

    def _send(self, destination: int | None, item: Message | Signed) -> None:
        if isinstance(item, Order):
            # An ORDER signed before (a retransmission, or before a restart) goes out as it
            # was; only a new one gets what this variant adds to it (UB: the batches).
            outgoing = self._journal.held_for(item) or self._dissemination.outgoing_order(item)
            if outgoing is None:
                return
            item = outgoing
        signed = item if isinstance(item, Signed) else self._journal.sign(item)
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

    def _holds(self, ref: BatchRef) -> bool:
        """True if the batch held for ``ref``'s instance is the value ``ref`` names."""
        held = self._batches.get((ref.origin, ref.counter))
        return held is not None and held[0] == ref.digest

    def _lacks_committed_batch(self) -> bool:
        """True if the next slot to deliver committed but a batch it names is not here."""
        committed = self._order.committed(self._order.low)
        return committed is not None and any(
            not self._order.is_ordered(r.origin, r.counter) and not self._holds(r)
            for r in committed.refs)

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
                if held is not None:
                    self._dissemination.want(ref, now)  # we hold another value: fetch this one
                return False  # still on its way through dissemination or a catch-up proof
            batches.append(held[1])
            fresh.append(ref)
        deliveries = self._log.deliver_slot(tuple(fresh), tuple(batches), slot)
        if deliveries or self._awaited:
            self._receipts(committed.view, slot, committed.refs, committed.certificate,
                           fresh, batches, deliveries)
        if self._app is not None:
            for delivery in deliveries:
                result = self._app.apply(delivery)
                if result is not None and delivery.client:
                    self.reply(delivery, result)
        self._deliveries.extend(deliveries)
        self._recovery.slot_delivered(SlotRecord(committed.view, slot, committed.refs,
                                                 committed.certificate, tuple(batches)))
        self._catchup.slot_delivered(slot, committed.refs, fresh, batches, now,
                                     view=committed.view, certificate=committed.certificate)
        for ref in fresh:
            self._batches.pop((ref.origin, ref.counter), None)
            self._dissemination.forget(ref.origin, ref.counter)
            if ref.origin == self.member:
                self._own_in_flight.discard(ref.counter)
        self._order.slot_delivered(slot, now)
        self._view_changer.progressed()
        boundary = self._checkpoints.slot_delivered(slot, committed.refs)
        if boundary is not None:
            self._recovery.checkpoint_at(boundary)
        self._flush_batches(now)
        return True

    def _receipts(self, view: int, slot: int, refs: tuple[BatchRef, ...],
                  certificate: tuple[Vote, ...], fresh: list[BatchRef], batches: list[Batch],
                  deliveries: list[Delivery]) -> None:
        """Receipts for the awaited requests: where each was committed is noted when its
        slot commits (this one, or an earlier one if the request waited there for an earlier
        request of its session), and the receipt leaves when the request is delivered."""
        if certificate:
            self._note_commits(view, slot, refs, certificate, fresh, batches)
        for d in deliveries:
            if not d.client:
                continue
            key = (d.client, d.msg_id.session, d.msg_id.counter)
            self._delivered_requests[key] = (d.index, d.slot)
            if len(self._delivered_requests) > self.settings.pending_requests_max:
                del self._delivered_requests[next(iter(self._delivered_requests))]
            if key not in self._awaited:
                continue
            del self._awaited[key]
            receipt = self._committed_at.pop(key, None)
            if receipt is None:
                # Adopted from a checkpointed segment: no per-slot certificate proves it.
                self._client_outputs.append((d.client, Notice(
                    key[1], key[2], "delivered, but this member holds no certificate for "
                    "its slot").to_frame()))
                continue
            self._client_outputs.append((d.client,
                                         attrs.evolve(receipt, index=d.index).to_frame()))

    def _note_commits(self, view: int, slot: int, refs: tuple[BatchRef, ...],
                      certificate: tuple[Vote, ...], fresh: list[BatchRef],
                      batches: list[Batch]) -> None:
        wanted = {k for k in self._awaited if k not in self._committed_at}
        for key, receipt in self._find_receipts(wanted, view, slot, refs, certificate,
                                                fresh, batches):
            self._committed_at[key] = receipt
        # A request committed but never delivered (a Byzantine client's, beyond its window)
        # must not keep its receipt forever.
        while len(self._committed_at) > self.settings.pending_requests_max:
            stale = next(iter(self._committed_at))
            del self._committed_at[stale]
            self._awaited.pop(stale, None)

    def _find_receipts(self, wanted: set[tuple[bytes, int, int]], view: int, slot: int,
                       refs: tuple[BatchRef, ...], certificate: tuple[Vote, ...],
                       fresh: Sequence[BatchRef], batches: Sequence[Batch],
                       ) -> list[tuple[tuple[bytes, int, int], Receipt]]:
        """Receipts (index -1) for the ``wanted`` requests among the batches of committed
        ``slot``."""
        if not wanted:
            return []
        position = {(r.origin, r.counter): i for i, r in enumerate(refs)}
        bound = self.settings.request_bytes_max
        found = []
        for ref, batch in zip(fresh, batches, strict=True):
            places = []
            for j, frame in enumerate(batch.requests):
                try:
                    request, _, _ = decode_request(frame, frame_bytes_max=bound)
                except WireError:
                    continue
                key = (request.client, request.session, request.seq)
                if key in wanted:
                    places.append((len(batch.payloads) + j, frame, key))
            if not places:
                continue
            entries = batch.entries
            paths = merkle_proofs(entries, [entry for entry, _, _ in places])
            for (entry, frame, key), path in zip(places, paths, strict=True):
                found.append((key, Receipt(
                    frame, view, slot, refs, certificate, position[(ref.origin, ref.counter)],
                    batch.first_counter, len(batch.payloads), len(entries), entry, path, -1)))
        return found

    def _receipt_again(self, key: tuple[bytes, int, int]) -> bytes | None:
        """The receipt of delivered request ``key`` rebuilt from the retained log (a client
        that asks again after its delivery: it lost the receipt, or asked this member only
        then), or None if the slot is no longer retained with its certificate."""
        delivered = self._delivered_requests.get(key)
        if delivered is None:
            return None
        index, slot = delivered
        # The request was committed in its delivery slot, or earlier if it waited there for
        # an earlier request of its session (at most client_window slots back).
        for commit in range(slot, max(-1, slot - self.settings.client_window - 1), -1):
            held = self._catchup.delivered(commit)
            certified = self._catchup.certificate(commit)
            if held is None or certified is None:
                return None
            refs, batches = held
            found = self._find_receipts({key}, certified[0], commit, refs, certified[1], refs,
                                        batches)
            if found:
                return attrs.evolve(found[0][1], index=index).to_frame()
        return None

    def _flush_batches(self, now: float) -> None:
        """Cut pending payloads into batches while fewer than the limit are in flight."""
        settings = self.settings
        while len(self._own_in_flight) < settings.own_batches_in_flight_max:
            cut = self._pending.cut(now)
            if cut is None:
                return
            payloads, requests = cut
            first = self._next_payload - len(self._pending) - len(payloads)
            if payloads:
                self._recovery.payloads_batched(first, len(payloads))
            # Above any own SEND a peer sent back since a wiped disk (never sign one twice).
            counter = max(self._next_batch, self._dissemination.seen_from(self.member)[0])
            self._next_batch = counter + 1
            self._own_in_flight.add(counter)
            self._dissemination.broadcast(counter, Batch(first, tuple(payloads), tuple(requests)),
                                          now)
