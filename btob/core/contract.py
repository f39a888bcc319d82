"""The driver contract: what a sans-IO core offers the driver that runs it, and hands back.

A driver (the simulator, the Trio runtime) feeds a core inputs - a payload, a frame, the
passage of time, each with the current time - and takes its outputs: frames for members,
deliveries, and the changes to its durable state (:mod:`btob.core.durable`). It commits the
changes, then sends the frames taken with them, then publishes the deliveries.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from btob.core.delivery import Delivery, MsgId
from btob.core.durable import DurableChanges, DurableState
from btob.core.settings import Settings
from btob.core.transfer import TransferStatistics

__all__ = ["Core", "MemberStatistics", "Outgoing"]


@attrs.frozen
class Outgoing:
    """A frame for one destination member.

    ``delay_s`` is 0 for everything a member produces; a fault driver may hold a frame back
    (a slow CPU, a stalling sequencer), and the driver then sends it that much later.
    """

    destination: int
    frame: bytes
    delay_s: float = 0.0


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
    transfer: TransferStatistics = attrs.field(factory=TransferStatistics)
    """State transfers: started, completed, chunks taken and refused, peers marked bad."""
    journal_refused: int = 0
    """Messages the signing journal answered with an earlier, different one of the same
    instance: contradictions a restarted member would otherwise have signed."""
    counters_known: bool = True
    """False while a member restored from an empty data directory still learns from its
    peers where its own counters stand (it takes no payload meanwhile)."""


class Core(Protocol):
    """What a driver needs from a sans-IO protocol core; :class:`~btob.Member` is the real
    one, the fault driver wraps one and is one, and the benchmark's crash-only baseline
    implements it too, so all of them run on the same drivers."""

    @property
    def member(self) -> int:
        """This member's id."""

    @property
    def settings(self) -> Settings:
        """The limits the core runs under (the driver reads the payload and retention
        bounds)."""

    @property
    def view(self) -> int:
        """The current view."""

    def submit(self, payload: bytes, now: float) -> MsgId:
        """Accept a payload to broadcast; raises :class:`BtobError` subclasses to refuse."""

    def receive(self, frame: bytes, now: float, *, source: int | None = None) -> None:
        """Handle a frame from the network (``source``: the peer the transport names)."""

    def tick(self, now: float) -> None:
        """Let time pass."""

    def take_outputs(self) -> tuple[list[Outgoing], list[Delivery]]:
        """Frames to send and deliveries made since the last call."""

    def take_durable(self) -> DurableChanges:
        """Changes to the durable state since the last call: they must be committed before
        any frame taken since that call leaves, and before its deliveries are published."""

    def restore(self, state: DurableState, now: float) -> None:
        """Resume from committed ``state`` (a fresh core, before any other input)."""

    def statistics(self) -> MemberStatistics:
        """A snapshot of the core's counters."""
