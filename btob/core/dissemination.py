"""Dissemination: how a member's batches reach the others before they are ordered.

Theory of operation. Ordering names batches by reference (origin, counter, digest); a slot can
be delivered only where the batches it names are held. Dissemination is what gets them there,
and every variant does it differently behind one interface, :class:`Dissemination`:

* reliable broadcast (:mod:`btob.core.brb`: Bracha's double echo or Reiter's signed echo),
  for BB and the moving sequencer: consistency (one batch per instance) and totality come
  from the broadcast itself;
* direct hand-over (:mod:`btob.core.direct`): UB hands batches to the sequencer, whose ORDER
  carries them; UUB asks the sequencer for a slot and broadcasts the batch with the grant.
  There consistency comes from the ordering certificates, and a member holding another value
  of a batch a proposal names fetches the named one.

The member machine routes every ``brb.*`` message here and calls the hooks below at the
points where ordering and dissemination meet; a variant that has nothing to do at a hook
inherits the no-op.
"""

from __future__ import annotations

from collections.abc import Iterable

from btob.core.effects import Outbox
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import Batch, BatchRef, Order, Send, Signed

__all__ = ["BRB_KINDS", "Dissemination", "batch_fits", "counters_above"]

BRB_KINDS = ("bracha", "echo")
"""Reliable broadcasts a member can disseminate with (``--brb``)."""


def batch_fits(batch: Batch, settings: Settings) -> bool:
    """True if ``batch`` respects the cluster's batch and payload bounds."""
    count = len(batch.payloads) + len(batch.requests)
    if not count or count > settings.batch_payloads_max:
        return False
    if any(len(p) > settings.payload_bytes_max for p in batch.payloads):
        return False
    if any(len(r) > settings.request_bytes_max for r in batch.requests):
        return False
    return batch.size_bytes <= settings.batch_bytes_max


class Dissemination:
    """What the member machine needs from a dissemination core; the hooks where ordering and
    dissemination meet default to doing nothing."""

    def __init__(self, *, member: int, quorums: Quorums, settings: Settings,
                 outbox: Outbox) -> None:
        self.member = member
        self.quorums = quorums
        self.settings = settings
        self.outbox = outbox

    # -- the dissemination itself ------------------------------------------------------------

    def broadcast(self, counter: int, batch: Batch, now: float) -> None:
        """Start disseminating own batch ``counter``."""
        raise NotImplementedError

    def on_message(self, signed: Signed, now: float) -> None:
        """Handle a verified ``brb.*`` message; kinds this core does not use are dropped."""
        raise NotImplementedError

    def forget(self, origin: int, counter: int) -> None:
        """The batch was delivered in a slot: drop what is held for it."""
        raise NotImplementedError

    def retransmit(self, now: float) -> None:
        """Resend own messages of unfinished instances idle for a retransmit interval."""
        raise NotImplementedError

    def instances(self) -> int:
        """Instances or batches held (bounded; for bounds checks)."""
        raise NotImplementedError

    def needless(self, signed: Signed) -> bool:
        """True if ``signed`` (not yet verified) cannot change anything here, so its
        signature need not be checked."""
        return False

    def lost_own(self) -> bool:
        """True while this member waits for a message of its own sent back to it (one it
        signed before its disk was wiped); False for cores that never ask."""
        return False

    def seen_from(self, origin: int) -> tuple[int, int]:
        """The next batch counter and payload counter of ``origin`` above every batch of it
        held here (0, 0 if none)."""
        return 0, 0


    def restore_finished(self, windows: tuple[tuple[int, int, tuple[int, ...]], ...]) -> None:
        """Continue from a snapshot: the instances in ``windows`` (per origin: every counter
        below ``low``, and those listed above it) are finished, delivered in a slot."""

    # -- where ordering meets dissemination --------------------------------------------------

    def admit_order(self, order: Order) -> bool:
        """False to refuse an ORDER for what it carries: only UB's ORDERs carry batches."""
        return not order.carried

    def on_order(self, signed: Signed, leader: int) -> None:
        """An ORDER of the current view from ``signed.sender`` is about to be considered."""

    def outgoing_order(self, order: Order) -> Order | None:
        """The ORDER this member signs and sends in place of ``order``; None: not now (it
        lacks what the ORDER must carry)."""
        return order

    def want(self, ref: BatchRef, now: float) -> None:
        """A proposal or a committed slot names ``ref``, which this member lacks or holds
        another value of: fetch it if this dissemination does not bring it by itself."""

    def view_installed(self, now: float) -> None:
        """A new view (and perhaps a new sequencer) is in place."""


def counters_above(sends: Iterable[tuple[int, Signed | None]]) -> tuple[int, int]:
    """The next batch and payload counters above every ``(counter, SEND)`` given (entries
    whose message is no SEND, or None, count for nothing)."""
    batch = payload = 0
    for counter, signed in sends:
        send = None if signed is None else signed.message
        if isinstance(send, Send):
            batch = max(batch, counter + 1)
            payload = max(payload, send.batch.first_counter + len(send.batch.payloads))
    return batch, payload
