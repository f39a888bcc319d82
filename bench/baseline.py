"""The benchmark's baseline: a crash-only, unsigned fixed sequencer (UB), as a sans-IO core.

This is the survey's "unicast-broadcast" fixed sequencer (Defago, Schiper and Urban, 2004):
an origin hands its message to the sequencer, the sequencer gives it the next sequence number
and sends it to every member, and members deliver in sequence-number order. Nothing is
signed or verified, nothing is echoed, and a faulty member is not tolerated at all (the
survey leaves sequencer replacement to a group membership service, which the baseline does
not have: it is measured fault-free only).

It batches exactly as :class:`btob.Member` does (``batch_payloads_max``, ``batch_bytes_max``,
``batch_delay_s``, ``own_batches_in_flight_max``) and runs on the same driver
(:func:`btob.open_core_node`) and transport, so the ratio btob / baseline prices what
Byzantine tolerance costs, not a different runtime.

Wire format (msgpack arrays, unauthenticated beyond the transport's handshake):
``[REQUEST, origin, first_counter, [payload, ...]]`` to the sequencer and
``[ORDER, seq, origin, first_counter, [payload, ...]]`` from it.
"""

from __future__ import annotations

import msgpack

from btob import BacklogFull, Delivery, MemberStatistics, MsgId, Outgoing, PayloadTooLarge
from btob import Settings as _Settings
from btob._errors import ConfigError
from btob.core.batching import PendingPayloads
from btob.core.durable import DurableChanges, DurableState

__all__ = ["SEQUENCER", "CrashOnlySequencer"]

SEQUENCER = 0
"""The baseline's fixed sequencer."""

_REQUEST = 0
_ORDER = 1


class CrashOnlySequencer:
    """One member of the crash-only, unsigned UB fixed-sequencer baseline (sans-IO)."""

    def __init__(self, *, member: int, n: int, settings: _Settings | None = None) -> None:
        if not 0 <= member < n:
            raise ValueError(f"member {member} is not in 0..{n - 1}")
        self.member = member
        self.n = n
        self.settings = settings if settings is not None else _Settings()
        self.view = 0
        self._pending = PendingPayloads(self.settings)
        self._next_payload = 0
        self._in_flight = 0  # own batches handed to the sequencer and not yet ordered back
        self._own_budget = self.settings.own_batches_in_flight_max  # sequencer: see _flush
        self._next_seq = 0  # sequencer: next number to give out
        self._next_deliver = 0
        self._early: dict[int, tuple[int, int, list[bytes]]] = {}
        self._frames: list[Outgoing] = []
        self._deliveries: list[Delivery] = []
        self._delivered = 0
        self._messages_sent = 0
        self._bytes_sent = 0
        self._frames_received = 0
        self._slots = 0

    # -- the Core interface ---------------------------------------------------------------

    def submit(self, payload: bytes, now: float) -> MsgId:
        """Queue ``payload`` for the next batch; raises like :meth:`btob.Member.submit`."""
        settings = self.settings
        if len(payload) > settings.payload_bytes_max:
            raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds "
                                  f"{settings.payload_bytes_max}")
        if len(self._pending) >= settings.pending_payloads_max:
            raise BacklogFull(f"{len(self._pending)} payloads already wait for a batch")
        msg_id = MsgId(self.member, self._next_payload)
        self._next_payload += 1
        self._pending.add(bytes(payload), now)
        self._flush(now)
        return msg_id

    def receive(self, frame: bytes, now: float, *, source: int | None = None) -> None:
        """Handle a REQUEST (at the sequencer) or an ORDER (everywhere)."""
        self._frames_received += 1
        self._own_budget = self.settings.own_batches_in_flight_max
        message = msgpack.unpackb(frame, use_list=True, raw=True)
        if message[0] == _REQUEST and self.member == SEQUENCER:
            self._sequence(message[1], message[2], message[3])
        elif message[0] == _ORDER:
            self._on_order(message[1], message[2], message[3], message[4])
        self._flush(now)

    def tick(self, now: float) -> None:
        """Cut a batch whose oldest payload waited ``batch_delay_s``."""
        self._own_budget = self.settings.own_batches_in_flight_max
        self._flush(now)

    def take_outputs(self) -> tuple[list[Outgoing], list[Delivery]]:
        """Frames to send and deliveries made since the last call."""
        frames, self._frames = self._frames, []
        deliveries, self._deliveries = self._deliveries, []
        return frames, deliveries

    def take_durable(self) -> DurableChanges:
        """Nothing: the crash-only baseline keeps no durable state."""
        return DurableChanges.EMPTY

    def restore(self, state: DurableState, now: float) -> None:
        """Refuse a non-empty state: the baseline cannot resume from disk."""
        if state:
            raise ConfigError("the crash-only baseline keeps no durable state to resume from")

    def statistics(self) -> MemberStatistics:
        """Counters in :class:`btob.MemberStatistics` form (no signatures, no views)."""
        return MemberStatistics(
            member=self.member, payloads_submitted=self._next_payload,
            deliveries=self._delivered, slots_delivered=self._slots,
            messages_sent=self._messages_sent, bytes_sent=self._bytes_sent,
            frames_received=self._frames_received, signatures_made=0, signatures_verified=0,
            verify_cache_hits=0, dropped={}, evidence=(), brb_instances=0,
            open_slots=len(self._early), pending_payloads=len(self._pending),
            early_payloads=0, batches_held=len(self._early), view=0, view_changes_started=0,
            stable_checkpoint=0, proofs_held=0, checkpoint_state_held=0,
            history_slots_held=0, view_changes_held=0, slots_from_proofs=0,
            slots_from_segments=0,
        )

    # -- protocol -------------------------------------------------------------------------

    def _flush(self, now: float) -> None:
        if self.member == SEQUENCER:
            # Its own batches need no round trip, so no reply bounds them: at most
            # own_batches_in_flight_max leave between two inputs from outside (a frame or a
            # tick). Cutting one per submitted payload instead overflowed the send queues.
            while self._own_budget > 0:
                cut = self._pending.cut(now)
                if cut is None:
                    return
                payloads = cut[0]  # the baseline takes no client requests
                self._own_budget -= 1
                first = self._next_payload - len(self._pending) - len(payloads)
                self._sequence(self.member, first, payloads)
            return
        while self._in_flight < self.settings.own_batches_in_flight_max:
            cut = self._pending.cut(now)
            if cut is None:
                return
            payloads = cut[0]
            first = self._next_payload - len(self._pending) - len(payloads)
            self._in_flight += 1
            self._send(SEQUENCER, [_REQUEST, self.member, first, payloads])

    def _sequence(self, origin: int, first: int, payloads: list[bytes]) -> None:
        seq = self._next_seq
        self._next_seq += 1
        frame = msgpack.packb([_ORDER, seq, origin, first, payloads])
        for dest in range(self.n):
            if dest != self.member:
                self._emit(dest, frame)
        self._on_order(seq, origin, first, payloads)

    def _on_order(self, seq: int, origin: int, first: int, payloads: list[bytes]) -> None:
        if seq < self._next_deliver:
            return
        self._early[seq] = (origin, first, payloads)
        while self._next_deliver in self._early:
            origin, first, payloads = self._early.pop(self._next_deliver)
            self._next_deliver += 1
            self._slots += 1
            for offset, payload in enumerate(payloads):
                self._deliveries.append(
                    Delivery(self._delivered, MsgId(origin, first + offset), origin, payload))
                self._delivered += 1
            if origin == self.member and self.member != SEQUENCER:
                self._in_flight -= 1

    def _send(self, dest: int, message: list[object]) -> None:
        self._emit(dest, msgpack.packb(message))

    def _emit(self, dest: int, frame: bytes) -> None:
        self._frames.append(Outgoing(dest, frame))
        self._messages_sent += 1
        self._bytes_sent += len(frame)
