"""Direct dissemination for UB and UUB: batches go through the sequencer, not a broadcast.

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

UUB (:class:`GrantedDissemination`) differs in the hand-over only: an origin asks the
sequencer for a slot (REQUEST), gets a signed grant - an ORDER naming its one batch - and
relays the batch and the grant to everyone itself. The echo phase lets at most one value
commit per slot; a member holding another value of the batch fetches the one the grant names.
"""


from __future__ import annotations

from collections.abc import Callable

import attrs

from btob._errors import WireError
from btob.core.dissemination import Dissemination, batch_fits, counters_above
from btob.core.effects import BrbDelivery, Evidence, Outbox, VerifyFn
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import Batch, BatchRef, Fetch, Order, Request, Send, Signed, decode_frame

__all__ = ["DirectDissemination", "GrantedDissemination"]


@attrs.define
class _Own:
    signed: Signed
    first_sent: float
    last_sent: float


class DirectDissemination(Dissemination):
    """UB: own batches go to the view's sequencer; its ORDERs carry them to everyone."""

    def __init__(self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
                 verify: VerifyFn, leader: Callable[[], int],
                 ordered_low: Callable[[int], int], sign: Callable[[Send], Signed]) -> None:
        super().__init__(member=member, quorums=quorums, settings=settings, outbox=outbox)
        self._verify = verify
        self._leader = leader
        self._ordered_low = ordered_low
        self._sign = sign
        self._held: dict[tuple[int, int], Signed] = {}
        self._own: dict[int, _Own] = {}
        self._wanted: dict[tuple[int, int], tuple[float, bytes]] = {}

    def broadcast(self, counter: int, batch: Batch, now: float) -> None:
        """Hand own batch ``counter`` to the sequencer (and keep it)."""
        signed = self._sign(Send(counter, batch))
        self._own[counter] = _Own(signed, now, now)
        self.accept(signed)
        self._hand_over(signed)

    def _hand_over(self, signed: Signed) -> None:
        """The batch goes to the sequencer (unless this member is the sequencer)."""
        if self._leader() != self.member:
            self.outbox.send(self._leader(), signed)

    def admit_order(self, order: Order) -> bool:
        """Every batch an ORDER names travels in it, signed by its origin: check each one and
        hold it before the ORDER is considered (it names the value, so it replaces another
        value of the same batch)."""
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
            self.accept(signed, authoritative=True)
        return True

    def outgoing_order(self, order: Order) -> Order | None:
        """As sequencer: the ORDER carries the signed SEND frames of the batches it names;
        None while one of them is not held (a re-proposal's batch not fetched yet, or one
        this member delivered and let go: the members that lack the slot take it by
        catch-up, which needs no origin's signature)."""
        if order.carried:
            return order
        if any((r.origin, r.counter) not in self._held for r in order.refs):
            return None
        return attrs.evolve(order, carried=self.carried(order.refs))

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

    def seen_from(self, origin: int) -> tuple[int, int]:
        """Above every SEND of ``origin`` held."""
        return counters_above((counter, held)
                              for (o, counter), held in self._held.items() if o == origin)

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
        """Hand every unordered own batch (or, UUB, its request) to the new sequencer."""
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


class GrantedDissemination(DirectDissemination):
    """UUB: an origin asks the sequencer for a slot, then relays its batch and the signed
    grant to everyone itself."""

    def __init__(self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
                 verify: VerifyFn, leader: Callable[[], int],
                 ordered_low: Callable[[int], int], sign: Callable[[Send], Signed]) -> None:
        super().__init__(member=member, quorums=quorums, settings=settings, outbox=outbox,
                         verify=verify, leader=leader, ordered_low=ordered_low, sign=sign)
        self._relayed: set[tuple[int, int]] = set()

    def _hand_over(self, signed: Signed) -> None:
        """A REQUEST for a slot goes to the sequencer (this member included)."""
        message = signed.message
        assert isinstance(message, Send)
        self.outbox.send(self._leader(), Request(message.counter, message.batch.digest()))

    def admit_order(self, order: Order) -> bool:
        """Grants carry no batches."""
        return not order.carried

    def outgoing_order(self, order: Order) -> Order:
        """A grant is sent as it is."""
        return order

    def on_order(self, signed: Signed, leader: int) -> None:
        """A grant from the sequencer for own batches: broadcast them with the grant."""
        order = signed.message
        assert isinstance(order, Order)
        if signed.sender == leader and all(r.origin == self.member for r in order.refs):
            self.on_grant(signed)

    def on_grant(self, grant: Signed) -> None:
        """The sequencer granted a slot to own batch: broadcast the batch and the grant."""
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
