"""View change: replacing a crashed, silent or Byzantine sequencer (PBFT-style, signed).

Theory of operation. A member that suspects the sequencer of view v (work it knows of stays
unordered for a timeout) stops taking part in view v and sends VIEW-CHANGE(v+1) with its
last stable checkpoint certificate and, for every slot above it, the prepared certificate from
the highest view in which it prepared that slot. The sequencer of v+1 gathers q VIEW-CHANGEs
and sends NEW-VIEW with them and the re-proposals they imply: from the highest stable
checkpoint among them, per slot the prepared value from the highest view, else a null slot.
Every member recomputes the re-proposals from the enclosed, individually signed VIEW-CHANGEs
and rejects a NEW-VIEW that lies or omits a prepared slot.

Why a committed slot survives: a commit needs q READYs, and an honest member sends READY only
while holding a prepared certificate (no amplification). Any q VIEW-CHANGEs share at least
f+1 members with those q READY senders, so at least one honest VIEW-CHANGE carries that
slot's prepared certificate, from view v or - by induction - a later view re-proposing the
same value; and no other value can be prepared for that slot in a view at or above v. So the
new view re-proposes exactly the committed value.

Liveness: timeouts double on consecutive view changes without progress (so that, after GST,
a correct sequencer eventually gets long enough) and fall back to the base after progress;
a member that sees f+1 VIEW-CHANGEs for higher views joins the smallest of them, so a slow
minority cannot hold a faulty sequencer in place.

:class:`ViewChanger` is the state machine of one member's view changes (suspicion, its own
VIEW-CHANGE, those it collects, the NEW-VIEW it sends as the next leader or checks as a
member); the functions above are the pure rules it and every member apply alike.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import attrs

from btob._errors import WireError
from btob.core.certificates import valid_votes
from btob.core.checkpoint import CheckpointTracker, valid_checkpoint_cert
from btob.core.effects import Evidence, Outbox, VerifyFn
from btob.core.ordering import Ordering
from btob.core.proposers import view_leader
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    CheckpointCert,
    NewView,
    Order,
    OrderCommitted,
    OrderEcho,
    OrderPrepared,
    PreparedCert,
    Reproposal,
    Signed,
    ViewChange,
    decode_frame,
)

__all__ = [
    "NewViewPlan", "Timeouts", "ViewChanger", "ViewInstalled", "plan_new_view",
    "valid_view_change", "verify_new_view",
]


@attrs.frozen
class NewViewPlan:
    """What a set of q VIEW-CHANGEs implies for the new view."""

    view: int
    checkpoint: CheckpointCert | None
    """The highest stable checkpoint among them: slots below it are settled."""
    reproposals: tuple[Reproposal, ...]
    """Slots from the checkpoint to the highest prepared slot, in order."""

    @property
    def first_free_slot(self) -> int:
        """Where the new sequencer's own proposals start."""
        if self.reproposals:
            return self.reproposals[-1].slot + 1
        return 0 if self.checkpoint is None else self.checkpoint.upto


def valid_prepared_cert(cert: PreparedCert, *, quorums: Quorums, verify: VerifyFn) -> bool:
    """True if ``cert`` holds q distinct valid ordering ECHOs for its view, slot and refs."""
    keys = {(r.origin, r.counter) for r in cert.refs}
    if len(keys) != len(cert.refs) or any(r.origin >= quorums.n for r in cert.refs):
        return False
    body = OrderEcho(cert.view, cert.slot, cert.digest).to_body()
    return valid_votes(cert.votes, body, OrderEcho.KIND, quorums, verify)


def valid_view_change(message: ViewChange, *, interval: int, quorums: Quorums,
                      verify: VerifyFn, prepared_max: int) -> bool:
    """True if every certificate inside a VIEW-CHANGE checks out and it is well formed."""
    floor = 0
    if message.checkpoint is not None:
        if not valid_checkpoint_cert(message.checkpoint, interval=interval, quorums=quorums,
                                     verify=verify):
            return False
        floor = message.checkpoint.upto
    if len(message.prepared) > prepared_max:
        return False
    slots = [p.slot for p in message.prepared]
    if len(set(slots)) != len(slots):
        return False
    return all(
        floor <= p.slot and p.view < message.view
        and valid_prepared_cert(p, quorums=quorums, verify=verify)
        for p in message.prepared
    )


def plan_new_view(view: int, changes: Sequence[ViewChange]) -> NewViewPlan:
    """The re-proposals implied by ``changes`` (already validated): a pure function, so the
    new sequencer and every member compute the same plan."""
    checkpoints = [c.checkpoint for c in changes if c.checkpoint is not None]
    checkpoint = max(checkpoints, key=lambda c: c.upto, default=None)
    floor = 0 if checkpoint is None else checkpoint.upto
    best: dict[int, PreparedCert] = {}
    for change in changes:
        for prepared in change.prepared:
            if prepared.slot < floor:
                continue
            held = best.get(prepared.slot)
            if held is None or prepared.view > held.view:
                best[prepared.slot] = prepared
    if not best:
        return NewViewPlan(view, checkpoint, ())
    top = max(best)
    reproposals = tuple(
        Reproposal(slot, best[slot].refs if slot in best else ()) for slot in range(floor, top + 1)
    )
    return NewViewPlan(view, checkpoint, reproposals)


def verify_new_view(message: NewView, sender: int, *, interval: int, quorums: Quorums,
                    verify: VerifyFn, prepared_max: int) -> NewViewPlan | None:
    """Check a NEW-VIEW from ``sender``: right sequencer, q valid VIEW-CHANGEs for its view
    from distinct members, and re-proposals equal to the ones recomputed from them.

    Returns the plan, or None if the NEW-VIEW lies, omits or is malformed.
    """
    if sender != view_leader(message.view, quorums.n):
        return None
    changes: dict[int, ViewChange] = {}
    for frame in message.view_changes:
        try:
            raw = decode_frame(frame)
            if raw.kind != ViewChange.KIND:
                return None
            signed = raw.parse()
        except WireError:
            return None
        if signed.sender in changes or not verify(signed.sender, raw.kind, raw.body,
                                                   raw.signature):
            return None
        change = signed.message
        assert isinstance(change, ViewChange)
        if change.view != message.view or not valid_view_change(
            change, interval=interval, quorums=quorums, verify=verify, prepared_max=prepared_max
        ):
            return None
        changes[signed.sender] = change
    if len(changes) < quorums.quorum:
        return None
    plan = plan_new_view(message.view, [changes[m] for m in sorted(changes)])
    if plan.reproposals != message.reproposals:
        return None
    return plan


@attrs.define
class Timeouts:
    """The failure detector's timeout: doubles per consecutive view change, resets on progress."""

    base_s: float
    max_s: float
    consecutive: int = 0

    @property
    def current_s(self) -> float:
        """The timeout in force."""
        return float(min(self.max_s, self.base_s * 2 ** min(self.consecutive, 30)))

    def view_changed(self) -> None:
        """Another view change without progress in between."""
        self.consecutive += 1

    def progressed(self) -> None:
        """A slot was delivered: trust the current sequencer with the base timeout again."""
        self.consecutive = 0


@attrs.frozen
class ViewInstalled:
    """This member entered ``view`` at time ``at`` (its leader is ``view mod n``)."""

    view: int
    at: float


class ViewChanger:
    """One member's view changes: when to suspect the leader, the VIEW-CHANGEs it sends and
    collects, the NEW-VIEW it sends as the next leader or checks as a member, and the ordering
    messages of a view that arrive before its NEW-VIEW (held, boundedly).

    It coordinates the member's ordering and checkpoint cores; installing a verified view in
    the other cores is the member's job (:meth:`on_new_view` returns the plan to install).
    """

    def __init__(self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
                 verify: VerifyFn, order: Ordering, checkpoints: CheckpointTracker,
                 evidence: Mapping[int, Evidence]) -> None:
        self.member = member
        self.quorums = quorums
        self.settings = settings
        self.outbox = outbox
        self.verify = verify
        self._order = order
        self._checkpoints = checkpoints
        self._evidence = evidence
        self.timeouts = Timeouts(settings.view_change_timeout_s,
                                 settings.view_change_timeout_max_s)
        self._view_changes: dict[int, Signed] = {}
        self.changing_to: int | None = None
        """The view this member wants and waits for, while a view change is under way."""
        self._deadline = 0.0
        self._last_sent = 0.0
        self.new_view: Signed | None = None
        """The NEW-VIEW that installed the current view (None in view 0)."""
        self._new_view_last_sent = 0.0
        self._installed: list[ViewInstalled] = []
        self._early: deque[Signed] = deque(maxlen=settings.future_view_messages_max)
        self.started = 0
        """View changes this member started."""

    @property
    def _prepared_max(self) -> int:
        """Most prepared certificates a VIEW-CHANGE may carry: the slots between a stable
        checkpoint and the top of the watermark window."""
        return self.settings.slot_window + self.settings.log_retention_slots

    # -- time ---------------------------------------------------------------------------------

    def detect_failure(self, now: float) -> None:
        """Suspect the leader when known work waited a timeout or this member holds proof that
        it equivocated, or move on to the next view when the NEW-VIEW for the one we are
        changing to does not come in time."""
        order = self._order
        if self.changing_to is not None:
            # Move on only when q members were ready for the view we wait for (so its
            # leader really failed us); a member alone ahead would wait with nobody.
            if now >= self._deadline and \
                    self._wanting_at_least(self.changing_to) >= self.quorums.quorum:
                self.start(self.changing_to + 1, now)
            return
        if order.proposer.replaces_proven_leader and order.leader in self._evidence:
            # Proven Byzantine (two conflicting signed messages): replace it now, not when it
            # finally stalls - it may go on ordering while lying to some members.
            self.start(order.view + 1, now)
            return
        oldest = order.oldest_pending()
        if oldest is not None and now - oldest >= self.timeouts.current_s:
            self.start(order.view + 1, now)

    def retransmit(self, now: float) -> None:
        """Resend this member's VIEW-CHANGE while waiting, and its NEW-VIEW as leader while a
        re-proposal of the view is not committed."""
        interval = self.settings.retransmit_interval_s
        if self.changing_to is not None and now - self._last_sent >= interval:
            own = self._view_changes.get(self.member)
            if own is not None:
                self._last_sent = now
                self.outbox.send(None, own)
        if (self.new_view is not None and self._order.leader == self.member
                and self._order.uncommitted_reproposals()
                and now - self._new_view_last_sent >= interval):
            self._new_view_last_sent = now
            self.outbox.send(None, self.new_view)

    def progressed(self) -> None:
        """A slot was delivered: the current leader gets the base timeout again."""
        self.timeouts.progressed()

    # -- inputs -------------------------------------------------------------------------------

    def start(self, view: int, now: float) -> None:
        """Leave the current view for ``view``: stop ordering and send VIEW-CHANGE."""
        self.timeouts.view_changed()
        self.started += 1
        self._order.suspend()
        self.changing_to = view
        self._deadline = now + self.timeouts.current_s
        self._last_sent = now
        stable = self._checkpoints.stable
        floor = 0 if stable is None else stable.upto
        prepared = tuple(  # our own certificates are valid by construction; check anyway
            cert for cert in self._order.prepared_certificates(floor)
            if valid_prepared_cert(cert, quorums=self.quorums, verify=self.verify)
        )
        self.outbox.send(None, ViewChange(view, stable, prepared))

    def on_view_change(self, signed: Signed, now: float) -> None:
        """Collect a verified VIEW-CHANGE; join f+1 members that want a higher view, and send
        NEW-VIEW as the leader of a view q members want."""
        change = signed.message
        assert isinstance(change, ViewChange)
        current = self._order.view
        if change.view <= current:
            self.outbox.drop("viewchange-stale")
            return
        if change.view > current + self.settings.view_window:
            self.outbox.drop("viewchange-beyond-window")
            return
        held = self._view_changes.get(signed.sender)
        if held is not None:
            held_change = held.message
            assert isinstance(held_change, ViewChange)
            if held_change.view >= change.view:
                return
        if signed.sender != self.member and not valid_view_change(
            change, interval=self.settings.checkpoint_interval, quorums=self.quorums,
            verify=self.verify, prepared_max=self._prepared_max,
        ):
            self.outbox.drop("viewchange-invalid")
            return
        self._view_changes[signed.sender] = signed
        # Join: f+1 members want a higher view, so at least one honest member does.
        target = self.changing_to if self.changing_to is not None else current
        higher = sorted(v for v in self._wanted_views() if v > target)
        if len(higher) >= self.quorums.one_honest:
            self.start(higher[0], now)
        self._maybe_new_view(change.view, now)

    def on_new_view(self, signed: Signed, now: float, *,
                    restoring: bool = False) -> NewViewPlan | None:
        """Check a verified NEW-VIEW; if it is true, record the view as installed and return
        the plan the member must install, else drop it (counted) and return None.

        ``restoring``: the NEW-VIEW this member installed before a restart, which may lie any
        number of views ahead of the view 0 it restarts in.
        """
        new_view = signed.message
        assert isinstance(new_view, NewView)
        current = self._order.view
        if new_view.view <= current:  # each view is installed once
            self.outbox.drop("newview-stale")
            return None
        if new_view.view > current + self.settings.view_window and not restoring:
            self.outbox.drop("newview-beyond-window")
            return None
        plan = verify_new_view(
            new_view, signed.sender, interval=self.settings.checkpoint_interval,
            quorums=self.quorums, verify=self.verify, prepared_max=self._prepared_max,
        )
        if plan is None or not self._order.proposer.exclusions_valid(new_view.excluded):
            self.outbox.drop("newview-invalid")
            return None
        self.changing_to = None
        self.new_view = signed
        for member in [m for m, s in self._view_changes.items()
                       if isinstance(s.message, ViewChange) and s.message.view <= plan.view]:
            del self._view_changes[member]
        self._installed.append(ViewInstalled(plan.view, now))
        return plan

    def hold_early(self, signed: Signed) -> bool:
        """Hold an ordering message of a view not installed yet (the NEW-VIEW may trail its
        view's first messages); True if held."""
        message = signed.message
        assert isinstance(message, (Order, OrderEcho, OrderPrepared, OrderCommitted))
        view = self._order.view
        if view < message.view <= view + self.settings.view_window:
            self._early.append(signed)
            return True
        return False

    def release_early(self, view: int) -> list[Signed]:
        """The held messages of ``view`` (just installed); later views' stay held."""
        held, self._early = self._early, deque(maxlen=self.settings.future_view_messages_max)
        ready = []
        for early in held:
            message = early.message
            assert isinstance(message, (Order, OrderEcho, OrderPrepared, OrderCommitted))
            if message.view == view:
                ready.append(early)
            elif message.view > view:
                self._early.append(early)
        return ready

    # -- queries ------------------------------------------------------------------------------

    def take_installed(self) -> list[ViewInstalled]:
        """Views installed since the last call."""
        views, self._installed = self._installed, []
        return views

    def held(self) -> dict[str, int]:
        """Sizes of what peers can make this core hold."""
        return {"view_changes": len(self._view_changes),
                "early_view_messages": len(self._early)}

    # -- the leader's side --------------------------------------------------------------------

    def _maybe_new_view(self, view: int, now: float) -> None:
        """As the leader of ``view``, start it once q VIEW-CHANGEs for it are in."""
        if view_leader(view, self.quorums.n) != self.member or self.changing_to != view:
            return
        changes = [s for s in self._view_changes.values()
                   if isinstance(s.message, ViewChange) and s.message.view == view]
        if len(changes) < self.quorums.quorum:
            return
        chosen = sorted(changes, key=lambda s: s.sender)[: self.quorums.quorum]
        messages = [s.message for s in chosen if isinstance(s.message, ViewChange)]
        plan = plan_new_view(view, messages)
        excluded = self._order.proposer.exclusions(plan.first_free_slot)
        new_view = NewView(view, tuple(s.to_frame() for s in chosen), plan.reproposals,
                           excluded)
        self.outbox.send(None, new_view)
        self._new_view_last_sent = now

    def _wanting_at_least(self, view: int) -> int:
        """Members (this one included) whose latest VIEW-CHANGE is for ``view`` or higher."""
        return sum(1 for v in self._wanted_views() if v >= view)

    def _wanted_views(self) -> list[int]:
        views = []
        for held in self._view_changes.values():
            message = held.message
            assert isinstance(message, ViewChange)
            views.append(message.view)
        return views
