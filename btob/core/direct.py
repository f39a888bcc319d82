"""Dissemination for the UB variant: members hand batches to the sequencer, ORDER carries them.

Theory of operation. There is no reliable broadcast here: an origin sends its signed SEND to
the view's sequencer only, and the sequencer's ORDER carries the origins' signed SEND frames,
so every member gets each batch through the ordering messages themselves. Members verify the
origin's signature on every carried batch, and the slot's prepare and commit certificates
(shared with every variant) make sure at most one ORDER value - hence one set of batches - can
commit per slot. Consistency therefore comes from ordering, not from dissemination.

A sequencer that ignores forwarded batches is caught by the origin: a batch still unordered
after the view-change timeout is sent to every member, which gives every correct member
known, unordered work, so they all suspect the sequencer and replace it. After a view change
the origin forwards its unordered batches to the new sequencer. A member that lacks a batch
named by a re-proposal (which carries no frames) asks everyone for it with FETCH.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from btob.core.brb import batch_fits
from btob.core.effects import BrbDelivery, Evidence, Outbox
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import Batch, BatchRef, Fetch, Order, Request, Send, Signed

__all__ = ["DirectDissemination"]


@attrs.define
class _Own:
    signed: Signed
    first_sent: float
    last_sent: float


class DirectDissemination:
    """The UB counterpart of the BRB cores (same interface towards the member)."""

    def __init__(self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
                 sequencer: Callable[[], int], view: Callable[[], int],
                 ordered_low: Callable[[int], int], sign: Callable[[Send], Signed],
                 grants: bool = False) -> None:
        self.member = member
        self.grants = grants
        """UUB: ask the sequencer for a slot (REQUEST) instead of handing it the batch, then
        broadcast the batch with the signed grant."""
        self.quorums = quorums
        self.settings = settings
        self.outbox = outbox
        self._sequencer = sequencer
        self._view = view
        self._ordered_low = ordered_low
        self._sign = sign
        self._held: dict[tuple[int, int], Signed] = {}
        self._own: dict[int, _Own] = {}
        self._wanted: dict[tuple[int, int], tuple[float, bytes]] = {}
        self._relayed: set[tuple[int, int]] = set()

    def broadcast(self, counter: int, batch: Batch, now: float) -> None:
        """Hand own batch ``counter`` to the sequencer (and keep it)."""
        signed = self._sign(Send(counter, batch))
        self._own[counter] = _Own(signed, now, now)
        self.accept(signed)
        self._hand_over(signed)

    def _hand_over(self, signed: Signed) -> None:
        """UB: the batch goes to the sequencer; UUB: a request for a slot does."""
        message = signed.message
        assert isinstance(message, Send)
        item: Signed | Request = signed
        if self.grants:
            item = Request(message.counter, message.batch.digest())
        if self.grants or self._sequencer() != self.member:
            self.outbox.send(self._sequencer(), item)

    def on_grant(self, grant: Signed) -> None:
        """UUB: the sequencer granted a slot to own batch: broadcast the batch and the grant."""
        order = grant.message
        assert isinstance(order, Order)
        key = (order.view, order.slot)
        if key in self._relayed:
            return
        self._relayed.add(key)
        if len(self._relayed) > 4 * self.settings.slot_window:
            self._relayed.discard(min(self._relayed))
        others = [m for m in range(self.quorums.n) if m != self.member]
        for ref in order.refs:
            own = self._own.get(ref.counter)
            if ref.origin == self.member and own is not None:
                for member in others:
                    self.outbox.send(member, own.signed)
        for member in others:  # never back to ourselves: we hold the grant already
            self.outbox.send(member, grant)

    def accept(self, signed: Signed, *, authoritative: bool = False) -> bool:
        """Hold an origin-signed SEND (forwarded, carried, resent or fetched); True if held.

        ``authoritative``: the value comes inside an ORDER, which names it; it replaces another
        value of the same batch (an equivocating origin's), as a wanted value does.
        """
        message = signed.message
        assert isinstance(message, Send)
        key = (signed.sender, message.counter)
        if not 0 <= signed.sender < self.quorums.n:
            return False
        low = self._ordered_low(signed.sender)
        if message.counter < low:
            return False  # already ordered
        if message.counter >= low + self.settings.brb_window:
            self.outbox.drop("ub-beyond-window")
            return False
        if not batch_fits(message.batch, self.settings):
            self.outbox.drop("ub-batch-out-of-bounds")
            return False
        held = self._held.get(key)
        digest = message.batch.digest()
        if held is not None:
            if held.message == message:
                return True
            self.outbox.evidence.append(Evidence(signed.sender, held, signed))
            if not authoritative and self._wanted.get(key, (0.0, b""))[1] != digest:
                return False
            # The origin equivocated and the slot granted to it names this value: take it.
        self._held[key] = signed
        self._wanted.pop(key, None)
        self.outbox.brb_deliveries.append(BrbDelivery(signed.sender, message.counter,
                                                      message.batch, digest))
        return True

    def on_message(self, signed: Signed, now: float) -> None:
        """A SEND handed to us, or a FETCH for a batch we may hold."""
        message = signed.message
        if isinstance(message, Send):
            self.accept(signed)
        elif isinstance(message, Fetch):
            held = self._held.get((message.origin, message.counter))
            if held is not None and isinstance(held.message, Send) and \
                    held.message.batch.digest() == message.digest:
                self.outbox.send(signed.sender, held)
        else:
            self.outbox.drop("ub-unexpected-kind")

    def carried(self, refs: tuple[BatchRef, ...]) -> tuple[bytes, ...]:
        """The signed SEND frames an ORDER for ``refs`` carries."""
        return tuple(self._held[(r.origin, r.counter)].to_frame() for r in refs)

    def want(self, ref: BatchRef, now: float) -> None:
        """Ask everyone for a batch a re-proposal names but this member does not hold."""
        key = (ref.origin, ref.counter)
        held = self._held.get(key)
        if held is not None and isinstance(held.message, Send) and \
                held.message.batch.digest() == ref.digest:
            return
        if self._wanted.get(key, (0.0, b""))[1] == ref.digest:
            return
        if len(self._wanted) >= self.quorums.n * self.settings.brb_window:
            return
        self._wanted[key] = (now, ref.digest)
        self.outbox.send(None, Fetch(ref.origin, ref.counter, ref.digest))

    def view_installed(self, now: float) -> None:
        """Hand every unordered own batch (UB) or request (UUB) to the new sequencer."""
        for own in self._own.values():
            own.last_sent = now
            self._hand_over(own.signed)

    def forget(self, origin: int, counter: int) -> None:
        """The batch was delivered in a slot."""
        self._held.pop((origin, counter), None)
        if origin == self.member:
            self._own.pop(counter, None)

    def retransmit(self, now: float) -> None:
        """Resend own unordered batches to the sequencer; past the view-change timeout, to
        everyone, so that every correct member knows of the work and suspects with us."""
        interval = self.settings.retransmit_interval_s
        for own in self._own.values():
            if now - own.last_sent < interval:
                continue
            if now - own.first_sent >= self.settings.view_change_timeout_s:
                own.last_sent = now
                self.outbox.send(None, own.signed)
            else:
                own.last_sent = now
                self._hand_over(own.signed)

    def needless(self, signed: Signed) -> bool:
        """Always False: a carried or fetched batch is only ever checked when it is used."""
        return False

    def instances(self) -> int:
        """Batches held (bounded by the window per origin)."""
        return len(self._held)
