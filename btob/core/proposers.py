"""Proposer policies: who proposes each slot of a view, and how.

Theory of operation. The ordering core (:mod:`btob.core.ordering`) holds the rules every
member follows for a proposal - echo it once, prepare at q ECHOs, commit at q READYs - and
those rules do not care who proposed. What differs between the sequencer variants is only the
proposing side, so each variant is a policy object the ordering core consults:

* :class:`FixedProposer` (BB and UB): the view's leader proposes every slot, from a queue of
  the batches it holds, up to ``slots_in_flight_max`` slots ahead of delivery.
* :class:`MovingProposer`: slot s of view v belongs to the rotation's member
  ``(v + s) mod size``; each proposes only once the previous slot committed (the token), so
  one slot is in flight at a time. A member whose turn stalled is taken out of the rotation by
  the next NEW-VIEW (at most f are out at once).
* :class:`GrantingProposer` (UUB): the leader proposes nothing itself; it answers each
  origin's slot REQUEST with a signed grant (an ORDER naming that one batch), one slot per
  batch ever, in counter order per origin.

Every policy may only ever make an honest member propose at most one value per (view, slot),
which is all the ordering core's safety argument needs from it. The leader of a view -
the member that collects its view change - is :func:`view_leader` in every variant.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from btob.core.effects import Outbox
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import BatchRef, Order, Request, Signed

__all__ = [
    "FixedProposer", "GrantingProposer", "MovingProposer", "OrderingState", "Proposer",
    "view_leader",
]


class OrderingState(Protocol):
    """What a proposer may see of the ordering core it serves (the member's view of the
    slots); it proposes through the core's outbox and changes nothing else there."""

    member: int
    quorums: Quorums
    settings: Settings
    outbox: Outbox
    view: int
    active: bool
    low: int
    sign_floor: float

    def ordered_low(self, origin: int) -> int:
        """Every batch of ``origin`` below this counter was delivered in a slot."""

    def is_ordered(self, origin: int, counter: int) -> bool:
        """True if batch (origin, counter) was delivered in a slot."""

    def committed(self, slot: int) -> object | None:
        """The commit proof of ``slot`` if it committed here (None otherwise)."""

    def has_proposal(self, slot: int) -> bool:
        """True if ``slot`` holds a proposal of the current view."""

    def available_refs(self) -> list[BatchRef]:
        """Every disseminated batch not yet ordered."""


def view_leader(view: int, n: int) -> int:
    """The member that leads ``view``: its sequencer in the fixed and granting variants, and
    the one that collects its view change (sends its NEW-VIEW) in every variant."""
    return view % n


class Proposer:
    """The proposing side of one member's ordering core; subclasses are the variants.

    It keeps the queue of batches this member may propose, per origin in counter order, and
    sends ORDERs through the ordering core's outbox.
    """

    replaces_proven_leader: ClassVar[bool] = True
    """A leader proven Byzantine by evidence is replaced at once (it orders every slot)."""

    def __init__(self, order: OrderingState) -> None:
        self.order = order
        self.excluded: tuple[int, ...] = ()
        """Members the view's NEW-VIEW took out of the rotation (moving sequencer only)."""
        self.queue: dict[int, dict[int, BatchRef]] = {}
        self.next_counter: dict[int, int] = {}
        self.next_slot = 0
        self._rotation = 0

    @property
    def leader(self) -> int:
        """The leader of the current view."""
        return view_leader(self.order.view, self.order.quorums.n)

    def proposer_of(self, slot: int) -> int:
        """The member whose ORDER for ``slot`` the current view accepts."""
        return self.leader

    def queues(self) -> bool:
        """True if this member collects available batches to propose them."""
        return self.order.active and self.leader == self.order.member

    def propose(self, now: float) -> None:
        """As the view's sequencer, assign queued batches to free slots inside the pipeline
        limit."""
        order = self.order
        if self.leader != order.member or not order.active:
            return
        settings = order.settings
        limit = order.low + min(settings.slot_window, settings.slots_in_flight_max)
        while self.next_slot < limit:
            if order.committed(self.next_slot) is not None:
                self.next_slot += 1  # proven here by catch-up: nothing to propose there
                continue
            if self.next_slot < order.sign_floor:
                return  # it may have proposed there before its disk was wiped
            refs = self.take_refs()
            if not refs:
                return
            proposal = Order(order.view, self.next_slot, refs)
            self.next_slot += 1
            order.outbox.send(None, proposal)

    def resume_after(self, slot: int, refs: tuple[BatchRef, ...]) -> None:
        """This member proposed ``refs`` for ``slot`` before a restart: propose only above
        that slot, and none of those batches again."""
        self.next_slot = max(self.next_slot, slot + 1)
        for ref in refs:
            self.next_counter[ref.origin] = max(self.next_counter.get(ref.origin, 0),
                                                ref.counter + 1)

    def on_request(self, signed: Signed) -> None:
        """A slot REQUEST: only the granting variant takes them."""
        order = self.order
        assert isinstance(signed.message, Request)
        order.outbox.drop("request-not-granted")

    def slot_delivered(self, refs: tuple[BatchRef, ...]) -> None:
        """A slot holding ``refs`` was delivered: they leave the queue."""
        for ref in refs:
            queued = self.queue.get(ref.origin)
            if queued is not None:
                queued.pop(ref.counter, None)
        self.next_slot = max(self.next_slot, self.order.low)

    def committed(self, refs: tuple[BatchRef, ...]) -> None:
        """A slot holding ``refs`` committed here (by votes or a proof)."""

    def token_passed(self, now: float) -> None:
        """A slot committed here by votes: the next slot's proposer may go ahead."""

    def enter_view(self, excluded: tuple[int, ...]) -> None:
        """A verified NEW-VIEW starts the next view (its exclusions are checked already)."""
        self.excluded = ()

    def view_installed(self, reproposed: set[tuple[int, int]], first_free: int,
                       now: float) -> None:
        """The new view's re-proposals are in place: rebuild the queue and propose."""
        if self.queues():
            self._rebuild_queue(reproposed)
            self.next_slot = max(first_free, self.order.low)
            self.propose(now)

    def exclusions(self, first_free_slot: int) -> tuple[int, ...]:
        """The members a NEW-VIEW starting proposals at ``first_free_slot`` takes out of the
        rotation: none, but for the moving sequencer."""
        return ()

    def exclusions_valid(self, excluded: tuple[int, ...]) -> bool:
        """True if a NEW-VIEW may take ``excluded`` out of the rotation."""
        return not excluded

    def take_refs(self) -> tuple[BatchRef, ...]:
        """Up to ``slot_refs_max`` queued refs, each origin's in counter order, origins in
        turn (a different origin first each time)."""
        origins = sorted(o for o, q in self.queue.items() if q)
        if not origins:
            return ()
        start = self._rotation % len(origins)
        self._rotation += 1
        order = self.order
        taken: list[BatchRef] = []
        for origin in origins[start:] + origins[:start]:
            queued = self.queue[origin]
            counter = max(self.next_counter.get(origin, 0), order.ordered_low(origin))
            while counter in queued and len(taken) < order.settings.slot_refs_max:
                taken.append(queued.pop(counter))
                counter += 1
            self.next_counter[origin] = counter
        return tuple(taken)

    def _rebuild_queue(self, reproposed: set[tuple[int, int]]) -> None:
        """As the new sequencer, queue every available batch that no re-proposal orders."""
        order = self.order
        self.queue = {}
        for ref in order.available_refs():
            if (ref.origin, ref.counter) not in reproposed:
                self.queue.setdefault(ref.origin, {})[ref.counter] = ref
        self.next_counter = {}
        for origin in range(order.quorums.n):
            counter = order.ordered_low(origin)
            while order.is_ordered(origin, counter) or (origin, counter) in reproposed:
                counter += 1
            self.next_counter[origin] = counter


class FixedProposer(Proposer):
    """BB and UB: the view's leader is its sequencer and proposes every slot."""


class MovingProposer(Proposer):
    """Moving sequencer: the proposer of each slot rotates, one slot in flight at a time."""

    replaces_proven_leader = False  # the leader proposes only its turns; the rotation goes on

    def proposer_of(self, slot: int) -> int:
        rotation = [m for m in range(self.order.quorums.n) if m not in self.excluded]
        return rotation[(self.order.view + slot) % len(rotation)]

    def queues(self) -> bool:
        return self.order.active  # every member may get a turn

    def propose(self, now: float) -> None:
        """Propose the first open slot when it is this member's turn and the slot before it
        has committed here (the token), with every queued batch."""
        order = self.order
        if not order.active:
            return
        slot = max(order.low, self.next_slot)
        while order.committed(slot) is not None:
            slot += 1
        if slot >= order.low + order.settings.slot_window or self.proposer_of(slot) != order.member:
            return
        if slot > order.low and order.committed(slot - 1) is None:
            return
        if order.has_proposal(slot) or slot < order.sign_floor:
            return  # already proposed (or re-proposed) in this view, or maybe before a wipe
        refs = self.take_refs()
        if refs:
            self.next_slot = slot + 1
            order.outbox.send(None, Order(order.view, slot, refs))

    def committed(self, refs: tuple[BatchRef, ...]) -> None:
        """Batches a committed slot holds leave every member's queue (whoever proposed)."""
        for ref in refs:
            queued = self.queue.get(ref.origin)
            if queued is not None:
                queued.pop(ref.counter, None)
            if self.next_counter.get(ref.origin, 0) <= ref.counter:
                self.next_counter[ref.origin] = ref.counter + 1

    def token_passed(self, now: float) -> None:
        self.propose(now)

    def enter_view(self, excluded: tuple[int, ...]) -> None:
        self.excluded = excluded

    def exclusions(self, first_free_slot: int) -> tuple[int, ...]:
        """The member whose turn stalled joins the excluded ones (at most f stay out)."""
        f = self.order.quorums.f
        if not f:
            return ()
        culprit = self.proposer_of(first_free_slot)
        kept = tuple(m for m in self.excluded if m != culprit)
        return (*kept, culprit)[-f:]

    def exclusions_valid(self, excluded: tuple[int, ...]) -> bool:
        quorums = self.order.quorums
        return len(set(excluded)) == len(excluded) and len(excluded) <= quorums.f and all(
            0 <= m < quorums.n for m in excluded
        )


class GrantingProposer(Proposer):
    """UUB: the leader grants one slot per requested batch instead of proposing."""

    def __init__(self, order: OrderingState) -> None:
        super().__init__(order)
        self._grants: dict[tuple[int, int], Order] = {}
        self._requests: dict[int, dict[int, BatchRef]] = {}

    def queues(self) -> bool:
        return False  # origins ask for their own slots

    def propose(self, now: float) -> None:
        return

    def on_request(self, signed: Signed) -> None:
        """Answer a slot request with a signed grant, to the origin only (and to ourselves)."""
        request = signed.message
        assert isinstance(request, Request)
        grants = self.grant(BatchRef(signed.sender, request.counter, request.digest))
        outbox = self.order.outbox
        if not grants:
            outbox.drop("request-not-granted")
        for grant in grants:
            origin = grant.refs[0].origin
            outbox.send(origin, grant)
            if origin != self.order.member:
                outbox.send(self.order.member, grant)

    def grant(self, ref: BatchRef) -> list[Order]:
        """Grants for ``ref`` and for any later requests of its origin it unblocks - the same
        grant again for a repeated request; an early request waits (boundedly) for its
        predecessor's, and a full window makes the origin retry."""
        order = self.order
        if self.leader != order.member or not order.active:
            return []
        key = (ref.origin, ref.counter)
        held = self._grants.get(key)
        if held is not None:
            return [held] if held.refs == (ref,) else []  # one slot per batch, ever
        if order.is_ordered(*key) or not 0 <= ref.origin < order.quorums.n:
            return []
        expected = max(self.next_counter.get(ref.origin, 0), order.ordered_low(ref.origin))
        if ref.counter > expected:
            if ref.counter < expected + order.settings.brb_window:
                self._requests.setdefault(ref.origin, {})[ref.counter] = ref
            return []
        granted = []
        early = self._requests.get(ref.origin, {})
        current: BatchRef | None = ref
        while current is not None and current.counter == expected and \
                order.sign_floor <= self.next_slot < order.low + order.settings.slot_window:
            grant = Order(order.view, self.next_slot, (current,))
            self.next_slot += 1
            expected = current.counter + 1
            self.next_counter[current.origin] = expected
            self._grants[(current.origin, current.counter)] = grant
            granted.append(grant)
            current = early.pop(expected, None)
        return granted

    def slot_delivered(self, refs: tuple[BatchRef, ...]) -> None:
        for ref in refs:
            self._grants.pop((ref.origin, ref.counter), None)
        super().slot_delivered(refs)

    def view_installed(self, reproposed: set[tuple[int, int]], first_free: int,
                       now: float) -> None:
        """As the new leader, grant from the first free slot, skipping re-proposed batches."""
        self._grants.clear()
        self._requests.clear()
        order = self.order
        if self.leader == order.member:
            self.next_slot = max(first_free, order.low)
            self.next_counter = {}
            for origin in range(order.quorums.n):
                counter = order.ordered_low(origin)
                while (origin, counter) in reproposed:
                    counter += 1
                self.next_counter[origin] = counter

    def held(self) -> int:
        """Grants and early requests remembered (a memory-bound probe)."""
        return len(self._grants) + sum(len(r) for r in self._requests.values())

