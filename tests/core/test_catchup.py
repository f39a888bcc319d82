"""Catch-up: who helps a laggard, how often, with proofs or segments, and what help is taken."""

from __future__ import annotations

import attrs
import pytest

from btob.core.catchup import CatchUp
from btob.core.checkpoint import CheckpointTracker
from btob.core.effects import Outbox
from btob.core.ordering import Ordering
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    Checkpoint,
    CheckpointCert,
    LogSegment,
    NewView,
    OrderReady,
    Signed,
    SlotProof,
    Status,
    Vote,
    slot_digest,
)

from ..helpers import Keys

N = 4
K = 4  # checkpoint interval
SETTINGS = Settings(checkpoint_interval=K, slot_window=8, log_retention_slots=16,
                    catchup_grace_s=0.1, status_interval_s=0.5)
KEYS = Keys(N)
QUORUMS = Quorums.for_cluster(N)


@attrs.define
class Side:
    """One member's catch-up with the ordering core and checkpoints it works with."""

    catchup: CatchUp
    order: Ordering
    checkpoints: CheckpointTracker
    outbox: Outbox


def _side(member: int, *, view: int = 0, new_view: Signed | None = None,
          settings: Settings = SETTINGS) -> Side:
    outbox = Outbox()
    verify = KEYS.verifier().verify
    order = Ordering(member=member, quorums=QUORUMS, settings=settings, outbox=outbox,
                     verify=verify, view=view)
    checkpoints = CheckpointTracker(member=member, quorums=QUORUMS, interval=K,
                                    window=settings.slot_window,
                                    retained=settings.log_retention_slots, outbox=outbox,
                                    verify=verify)
    catchup = CatchUp(member=member, quorums=QUORUMS, settings=settings, outbox=outbox,
                      order=order, checkpoints=checkpoints, new_view=lambda: new_view)
    return Side(catchup, order, checkpoints, outbox)


def _batch(slot: int) -> Batch:
    return Batch(0, (b"slot-%d" % slot,))


def _refs(slot: int) -> tuple[BatchRef, ...]:
    return (BatchRef(slot % N, slot // N, _batch(slot).digest()),)


def _proof(slot: int, voters: tuple[int, ...] = (0, 2, 3)) -> SlotProof:
    digest = slot_digest(slot, _refs(slot))
    votes = tuple(Vote(m, KEYS.sign(m, OrderReady(0, slot, digest)).signature) for m in voters)
    return SlotProof(0, slot, _refs(slot), votes, (_batch(slot),))


def _deliver(side: Side, upto: int, now: float = 0.0) -> None:
    """Commit (by proof) and deliver every slot up to ``upto`` at ``side``."""
    for slot in range(side.order.low, upto):
        assert side.order.on_slot_proof(_proof(slot))
        side.order.slot_delivered(slot, now)
        refs = _refs(slot)
        side.catchup.slot_delivered(slot, refs, list(refs), [_batch(slot)], now)
        boundary = side.checkpoints.slot_delivered(slot, refs)
        if boundary is not None:
            side.checkpoints.boundary_checkpoint(boundary, bytes(32))


def _cert(upto: int, chain: bytes, voters: tuple[int, ...] = (0, 2, 3)) -> CheckpointCert:
    return CheckpointCert(upto, chain, tuple(
        Vote(m, KEYS.sign(m, Checkpoint(upto, chain)).signature) for m in voters))


def _help(side: Side, peer: int) -> list[object]:
    """What ``side`` sent ``peer`` since the last call."""
    sent = [item for dest, item in side.outbox.sends if dest == peer]
    side.outbox.sends.clear()
    return sent


def _statuses(side: Side) -> list[object]:
    sent = [item for _, item in side.outbox.sends]
    side.outbox.sends.clear()
    return sent


# -- helping a laggard ----------------------------------------------------------------------


def test_only_the_f_plus_one_members_after_the_laggard_answer_its_status() -> None:
    for laggard, helpers in ((3, {0, 1}), (1, {2, 3})):
        answered = set()
        for member in set(range(N)) - {laggard}:
            side = _side(member)
            _deliver(side, 1)
            side.catchup.on_status(laggard, Status(0, 0), 1.0)
            if [type(m) for m in _help(side, laggard)] == [SlotProof]:
                answered.add(member)
        assert answered == helpers, laggard


def test_a_peer_that_is_not_behind_gets_nothing() -> None:
    side = _side(0)
    _deliver(side, 3)
    for status in (Status(3, 0), Status(5, 0)):
        side.catchup.on_status(3, status, 1.0)
    assert _help(side, 3) == []


def test_a_slot_is_offered_only_after_the_grace_and_proofs_within_the_budget() -> None:
    settings = attrs.evolve(SETTINGS, catchup_slots_max=2)
    side = _side(0, settings=settings)
    _deliver(side, 3, now=1.0)
    side.catchup.on_status(3, Status(0, 0), 1.05)
    assert _help(side, 3) == []  # committed too recently: its own votes may still arrive
    side.catchup.on_status(3, Status(0, 0), 1.5)
    sent = _help(side, 3)
    assert sent == [_proof(0), _proof(1)]  # two proofs per STATUS, from the laggard's slot


def test_help_for_one_position_is_rate_limited_to_half_a_status_interval() -> None:
    side = _side(0)
    _deliver(side, 3)
    side.catchup.on_status(3, Status(0, 0), 1.0)
    assert len(_help(side, 3)) == 3
    side.catchup.on_status(3, Status(0, 0), 1.1)
    assert _help(side, 3) == []  # the same request again, too soon
    side.catchup.on_status(3, Status(2, 0), 1.1)
    assert _help(side, 3) == [_proof(2)]  # it moved on: answered at once
    side.catchup.on_status(3, Status(2, 0), 1.1 + SETTINGS.status_interval_s / 2)
    assert _help(side, 3) == [_proof(2)]


def test_a_status_that_got_nothing_does_not_count_against_the_next_one() -> None:
    """Regression: a STATUS that arrived within the grace got no help but was recorded as
    answered, so the same request, repeated within half a status interval after the grace,
    got nothing either, and help waited for the laggard's next periodic STATUS."""
    side = _side(0)
    _deliver(side, 3, now=1.0)
    side.catchup.on_status(3, Status(0, 0), 1.05)  # within the grace: nothing yet
    assert _help(side, 3) == []
    side.catchup.on_status(3, Status(0, 0), 1.15)  # the grace is over: help, at once
    assert _help(side, 3) == [_proof(0), _proof(1), _proof(2)]


def test_a_peer_in_an_older_view_gets_the_new_view_that_installed_this_one() -> None:
    new_view = KEYS.sign(1, NewView(1, (), ()))
    side = _side(2, view=1, new_view=new_view)
    side.catchup.on_status(1, Status(0, 0), 1.0)
    assert _help(side, 1) == [new_view]
    without = _side(2, view=1)
    without.catchup.on_status(1, Status(0, 0), 1.0)
    assert _help(without, 1) == []  # nothing to show for it


def test_below_a_stable_checkpoint_a_log_segment_replaces_the_dropped_proofs() -> None:
    side = _side(0)
    _deliver(side, K + 1)
    cert = _cert(K, side.checkpoints.chain_at(K))  # type: ignore[arg-type]
    assert side.checkpoints.adopt(cert)
    side.order.forget_below(K)  # commit certificates below the checkpoint are gone
    side.catchup.on_status(3, Status(0, 0), 1.0)
    segment, proof = _help(side, 3)
    assert segment == LogSegment(cert, 0, tuple((_refs(s), (_batch(s),)) for s in range(K)))
    assert proof == _proof(K)  # above the checkpoint: the slot's own proof


def test_delivered_slots_kept_for_laggards_are_bounded_by_the_retention() -> None:
    side = _side(0)
    _deliver(side, SETTINGS.log_retention_slots + 5)
    assert side.catchup.held() == SETTINGS.log_retention_slots


# -- getting help ---------------------------------------------------------------------------


def test_a_valid_slot_proof_is_counted_once_and_makes_the_member_ask_again() -> None:
    side = _side(3)
    side.catchup.tick(0.0)
    _statuses(side)
    assert side.catchup.on_slot_proof(_proof(0))
    assert side.catchup.on_slot_proof(_proof(0))  # the same proof again: still committed
    assert side.catchup.slots_from_proofs == 1
    side.catchup.tick(0.1)  # inside the status interval, but it got help: it asks now
    assert _statuses(side) == [Status(0, 0)]
    assert not side.catchup.on_slot_proof(_proof(1, voters=(0, 2)))  # too few votes
    assert side.catchup.slots_from_proofs == 1


def _segment(cert: CheckpointCert | None = None, start: int = 0,
             entries: tuple[tuple[tuple[BatchRef, ...], tuple[Batch, ...]], ...] | None = None,
             ) -> LogSegment:
    helper = _side(0)
    _deliver(helper, K)
    good = _cert(K, helper.checkpoints.chain_at(K))  # type: ignore[arg-type]
    if entries is None:
        entries = tuple((_refs(s), (_batch(s),)) for s in range(start, start + K))
    return LogSegment(good if cert is None else cert, start, entries)


def test_a_segment_that_matches_its_certificate_is_adopted() -> None:
    laggard = _side(3)
    segment = _segment()
    adopted = laggard.catchup.on_segment(segment)
    assert adopted is not None and adopted.cert == segment.cert
    assert adopted.entries == segment.entries
    assert [laggard.order.committed(s).refs for s in range(K)] == [  # type: ignore[union-attr]
        _refs(s) for s in range(K)]
    assert laggard.catchup.slots_from_segments == K
    assert laggard.outbox.dropped == {}


def test_a_segment_only_adopts_the_slots_not_delivered_yet() -> None:
    laggard = _side(3)
    _deliver(laggard, 2)
    adopted = laggard.catchup.on_segment(_segment())
    assert adopted is not None and len(adopted.entries) == K - 2
    assert laggard.catchup.slots_from_segments == K - 2


def _forged_entries() -> tuple[tuple[tuple[BatchRef, ...], tuple[Batch, ...]], ...]:
    entries = [(_refs(s), (_batch(s),)) for s in range(K)]
    other = Batch(0, (b"forged",))
    entries[2] = ((BatchRef(2, 0, other.digest()),), (other,))  # self-consistent, but a lie
    return tuple(entries)


@pytest.mark.parametrize(("segment", "reason"), [
    (lambda: _segment(start=1), "segment-malformed"),
    (lambda: _segment(entries=tuple((_refs(s), (_batch(s),)) for s in range(K - 1))),
     "segment-malformed"),
    (lambda: _segment(entries=tuple((_refs(s), (_batch(s + 1),)) for s in range(K))),
     "segment-malformed"),
    (lambda: _segment(entries=tuple((_refs(s), ()) for s in range(K))), "segment-malformed"),
    (lambda: _segment(cert=_cert(2 * K, bytes(32))), "segment-malformed"),
    (lambda: _segment(entries=_forged_entries()), "segment-bad-certificate"),
    (lambda: attrs.evolve(_segment(), cert=attrs.evolve(
        _segment().cert, votes=_segment().cert.votes[:2])), "segment-bad-certificate"),
    (lambda: _segment(cert=_cert(K, bytes(32))), "segment-bad-certificate"),
], ids=["misaligned", "short", "batches-not-refs", "no-batches", "other-upto", "forged-slot",
        "too-few-votes", "other-chain"])
def test_a_segment_that_does_not_check_out_is_refused(segment: object, reason: str) -> None:
    laggard = _side(3)
    assert laggard.catchup.on_segment(segment()) is None  # type: ignore[operator]
    assert laggard.outbox.dropped == {reason: 1}
    assert laggard.order.committed(0) is None and laggard.catchup.slots_from_segments == 0


def test_a_segment_the_member_does_not_need_is_refused() -> None:
    ahead = _side(3)
    _deliver(ahead, K)
    assert ahead.catchup.on_segment(_segment()) is None
    assert ahead.outbox.dropped == {"segment-not-needed": 1}


# -- telling where it is ----------------------------------------------------------------------


def test_status_goes_out_every_interval_with_the_unstable_checkpoint() -> None:
    side = _side(1)
    side.catchup.tick(0.0)
    assert _statuses(side) == [Status(0, 0)]
    side.catchup.tick(0.4)
    assert _statuses(side) == []
    _deliver(side, K)
    side.catchup.tick(0.5)
    assert _statuses(side) == [Status(K, 0), side.checkpoints.own_checkpoint()]


def test_seeing_a_peer_ahead_makes_the_member_say_where_it_is_at_its_next_tick() -> None:
    side = _side(1)
    side.catchup.tick(0.0)
    _statuses(side)
    side.catchup.on_status(2, Status(5, 0), 0.05)  # inside the grace after its own STATUS
    side.catchup.tick(0.1)
    assert _statuses(side) == []
    side.catchup.on_status(2, Status(5, 0), 0.2)
    side.catchup.tick(0.2)
    assert _statuses(side) == [Status(0, 0)]


def test_a_laggards_periodic_status_is_answered_every_period() -> None:
    # Regression: help to one laggard was rate limited for a whole status interval, so its
    # next periodic STATUS, arriving a hair sooner, went unanswered and help came a period
    # late. A repeat inside half the interval is still ignored.
    from btob.core.wire import LogSegment, SlotProof, Status, decode_frame

    from ..helpers import Router

    keys = Keys(4)
    router = Router(keys)
    router.stopped = {3}
    for k in range(6):
        router.members[1].submit(b"p%d" % k, router.now)
        router.pump()
        router.advance(0.1)
    router.advance(1.0)  # past the catch-up grace
    helper = router.members[0]  # first in ring order after member 3
    assert helper.next_slot > 0
    helper.take_outputs()
    status = keys.sign(3, Status(0, 0)).to_frame()
    interval = helper.settings.status_interval_s

    def help_sent(at: float) -> int:
        helper.receive(status, at)
        frames, _ = helper.take_outputs()
        return sum(1 for f in frames if f.destination == 3 and isinstance(
            decode_frame(f.frame).parse().message, (SlotProof, LogSegment)))

    start = router.now
    assert help_sent(start) > 0
    assert help_sent(start + 0.1 * interval) == 0
    assert help_sent(start + 0.99 * interval) > 0


def test_a_boundary_that_never_became_stable_here_is_spanned_by_a_longer_segment() -> None:
    """Regression: a member that saw the checkpoint at 2K become stable before the one at K
    (it adopted 2K first and dropped K's votes as stale) could serve nothing below 2K once
    the proofs were gone, and a restarted laggard at slot 0 waited forever."""
    side = _side(0)
    _deliver(side, 2 * K + 1)
    cert = _cert(2 * K, side.checkpoints.chain_at(2 * K))  # type: ignore[arg-type]
    assert side.checkpoints.adopt(cert) and side.checkpoints.cert_at(K) is None
    side.order.forget_below(2 * K)
    side.catchup.on_status(3, Status(0, 0), 1.0)
    segment, proof = _help(side, 3)
    assert segment == LogSegment(cert, 0, tuple((_refs(s), (_batch(s),)) for s in range(2 * K)))
    assert proof == _proof(2 * K)
    laggard = _side(3)
    adopted = laggard.catchup.on_segment(segment)  # type: ignore[arg-type]
    assert adopted is not None and len(adopted.entries) == 2 * K
    assert laggard.catchup.slots_from_segments == 2 * K


def test_a_segment_longer_than_the_catch_up_bound_is_refused() -> None:
    settings = attrs.evolve(SETTINGS, catchup_slots_max=K)
    helper = _side(0, settings=settings)
    _deliver(helper, 2 * K)
    cert = _cert(2 * K, helper.checkpoints.chain_at(2 * K))  # type: ignore[arg-type]
    segment = LogSegment(cert, 0, tuple((_refs(s), (_batch(s),)) for s in range(2 * K)))
    laggard = _side(3, settings=settings)
    assert laggard.catchup.on_segment(segment) is None
    assert laggard.outbox.dropped["segment-malformed"] == 1
