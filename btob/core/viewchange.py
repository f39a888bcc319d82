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
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from btob._errors import WireError
from btob.core.certificates import valid_votes
from btob.core.checkpoint import valid_checkpoint_cert
from btob.core.effects import VerifyFn
from btob.core.quorum import Quorums
from btob.core.wire import (
    CheckpointCert,
    NewView,
    OrderEcho,
    PreparedCert,
    Reproposal,
    Signed,
    ViewChange,
    decode_frame,
)

__all__ = ["NewViewPlan", "Timeouts", "plan_new_view", "valid_view_change", "verify_new_view"]


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
    if sender != message.view % quorums.n:
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


def signed_view_changes(frames: Sequence[Signed]) -> tuple[bytes, ...]:
    """Frames of VIEW-CHANGEs in member order, for a NEW-VIEW."""
    return tuple(s.to_frame() for s in sorted(frames, key=lambda s: s.sender))
