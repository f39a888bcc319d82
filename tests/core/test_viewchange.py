"""Replacing the sequencer: crashes at many times, successive crashes, silence, partitions,
a committed slot that only some members saw, lying NEW-VIEWs, and the timeouts."""

from __future__ import annotations

import attrs
import pytest

from btob import Member, SimConfig, simulate
from btob.core.viewchange import (
    NewViewPlan,
    Timeouts,
    plan_new_view,
    valid_prepared_cert,
    valid_view_change,
    verify_new_view,
)
from btob.core.wire import (
    Batch,
    BatchRef,
    Checkpoint,
    CheckpointCert,
    NewView,
    OrderEcho,
    OrderReady,
    PreparedCert,
    Reproposal,
    Signed,
    ViewChange,
    Vote,
    decode_frame,
    slot_digest,
)
from btob.faults import FaultSpec, parse_net

from ..helpers import Keys, Router


def _crash(member: int, at: float) -> FaultSpec:
    return FaultSpec(member, "crash", {"at": at})


# Crash times before the first batch, while the first slots are in flight, and after many
# commits (the workload runs from 0 to 0.6 s at 100 payloads per second).
CRASH_TIMES = [0.0, 0.004, 0.008, 0.015, 0.03, 0.06, 0.12, 0.25, 0.45]


@pytest.mark.parametrize("crash_at", CRASH_TIMES)
def test_sequencer_crash_at_many_times_is_survived(crash_at: float) -> None:
    for seed in range(6):
        config = SimConfig(n=4, seed=seed, messages=60, rate=100.0,
                           brb="echo" if seed % 2 else "bracha",
                           faults=(_crash(0, crash_at),),
                           net=parse_net("delay=0.001-0.02,loss=0.05,gst=0.5", 4))
        result = simulate(config)
        assert result.ok, [str(v) for v in result.report.violations]
        assert result.complete, f"seed {seed}: stalled after the sequencer crashed"
        assert result.view_changes and result.view_changes[0].sequencer == 1
        assert all(s.view >= 1 for s in result.statistics[1:])


def test_successive_sequencer_crashes_with_n7_f2() -> None:
    for seed in range(5):
        config = SimConfig(n=7, seed=seed, messages=80, rate=60.0,
                           faults=(_crash(0, 0.2), _crash(1, 1.0)),
                           net=parse_net("delay=0.001-0.02", 7))
        result = simulate(config)
        assert result.ok and result.complete, seed
        views = [r.view for r in result.view_changes]
        assert max(views) >= 2
        final = result.view_changes[-1]
        assert final.sequencer not in (0, 1) and final.first_commit_at is not None


def test_silent_sequencer_is_replaced() -> None:
    for seed in range(5):
        result = simulate(SimConfig(n=4, seed=seed, messages=60,
                                    faults=(FaultSpec(0, "silent", {}),)))
        assert result.ok and result.complete
        record = result.view_changes[0]
        assert record.failed_at == 0.0 and record.recovery_s is not None
        assert result.logs.run.members[0].honest is False


def test_sequencer_isolated_by_a_healing_partition_catches_up() -> None:
    net = parse_net("delay=0.001-0.01,partition=0.05-3:0|1+2+3", 4)
    result = simulate(SimConfig(n=4, seed=2, messages=120, rate=60.0, net=net, max_time=40))
    assert result.ok and result.complete
    assert result.view_changes, "the majority replaced the isolated sequencer"
    # Member 0 is correct: after the heal it delivers everything the others did.
    assert len({s.deliveries for s in result.statistics}) == 1
    assert result.statistics[0].view == result.statistics[1].view


def test_long_partitioned_member_catches_up_past_garbage_collected_checkpoints() -> None:
    from btob import Settings

    settings = Settings(checkpoint_interval=4, log_retention_slots=4096, slot_window=16)
    net = parse_net("delay=0.001-0.01,partition=0-6:0+1+2|3", 4)
    result = simulate(SimConfig(n=4, seed=4, messages=400, rate=100.0, net=net, max_time=40,
                                settings=settings))
    assert result.ok and result.complete
    laggard, others = result.statistics[3], result.statistics[:3]
    assert laggard.deliveries == others[0].deliveries
    # The others checkpointed and dropped the commit proofs of the slots member 3 missed,
    # so it must have caught up through verified log segments.
    assert laggard.slots_from_segments > 0
    assert min(s.stable_checkpoint for s in others) > 40


def test_long_run_keeps_protocol_state_bounded() -> None:
    from btob import Settings

    settings = Settings(checkpoint_interval=8, log_retention_slots=64, slot_window=32,
                        verify_cache_entries_max=4096)
    n = 4
    result = simulate(SimConfig(n=n, seed=9, messages=20_000, rate=5000.0, settings=settings,
                                max_time=120))
    assert result.ok and result.complete
    peak = result.peak_state
    k = settings.checkpoint_interval
    assert peak["brb_instances"] <= n * settings.brb_window
    assert peak["open_slots"] <= settings.slot_window
    assert peak["proofs"] <= 2 * (settings.slot_window + 2 * k)
    assert peak["history_slots"] <= settings.log_retention_slots
    assert peak["checkpoint_state"] <= 2 * (settings.log_retention_slots // k + 2) + n * (
        settings.slot_window // k + 1)
    assert peak["verify_cache"] <= settings.verify_cache_entries_max
    assert peak["view_changes"] == 0 and peak["evidence"] == 0
    # The bounds were reached, not trivially satisfied.
    assert peak["history_slots"] == settings.log_retention_slots


def test_a_slot_committed_at_one_member_survives_the_view_change() -> None:
    keys = Keys(7)
    router = Router(keys, view_change_timeout_s=0.5)
    # READYs reach member 1 only: it alone commits slot 0 (payload A from member 5).
    router.allow = lambda src, dst, msg: not isinstance(msg, OrderReady) or dst == 1
    router.members[5].submit(b"A", 0.0)
    router.pump()
    assert [p for _, p in router.delivered[1]] == [b"A"]
    assert all(not router.delivered[i] for i in (0, 2, 3, 4, 5, 6))
    # B (from member 3, a lower id, so a careless new sequencer would order it first) is
    # prepared everywhere but committed nowhere.
    router.allow = lambda src, dst, msg: not isinstance(msg, OrderReady)
    router.members[3].submit(b"B", 0.0)
    router.pump()
    assert all(len(d) == (1 if i == 1 else 0) for i, d in enumerate(router.delivered))
    # The sequencer crashes and member 1, the only one that saw the commit, is cut off:
    # the five others must rebuild slot 0 from their prepared certificates alone (view 0's
    # READYs stay lost, so only the view change can commit anything).
    router.stopped.add(0)
    router.allow = lambda src, dst, msg: src != 1 and dst != 1 and not (
        isinstance(msg, OrderReady) and msg.view == 0)
    router.advance(6.0)
    assert all(router.members[i].view >= 2 for i in range(2, 7))
    for i in range(2, 7):
        assert [p for _, p in router.delivered[i]] == [b"A", b"B"], i
    # Heal: member 1 catches up and its history is a prefix-consistent extension.
    router.allow = lambda src, dst, msg: True
    router.advance(3.0)
    assert router.delivered[1] == router.delivered[2]


def _cluster_view_changes(keys: Keys, prepared_by: dict[int, PreparedCert | None],
                          view: int) -> list[bytes]:
    frames = []
    for member, cert in sorted(prepared_by.items()):
        change = ViewChange(view, None, () if cert is None else (cert,))
        frames.append(keys.sign(member, change).to_frame())
    return frames


def _prepared(keys: Keys, view: int, slot: int, refs: tuple[BatchRef, ...]) -> PreparedCert:
    digest = slot_digest(slot, refs)
    votes = tuple(Vote(m, keys.sign(m, OrderEcho(view, slot, digest)).signature)
                  for m in (0, 1, 2))
    return PreparedCert(view, slot, refs, votes)


def test_a_new_view_that_lies_or_omits_a_prepared_slot_is_rejected() -> None:
    from btob.core.quorum import Quorums

    keys = Keys(4)
    verifier = keys.verifier()
    q = Quorums.for_cluster(4)
    ref = BatchRef(2, 0, Batch(0, (b"x",)).digest())
    other = BatchRef(3, 0, Batch(0, (b"y",)).digest())
    old = _prepared(keys, 0, 1, (ref,))
    newer = _prepared(keys, 2, 1, (other,))
    frames = _cluster_view_changes(keys, {1: old, 2: None, 3: newer}, view=3)

    def check(reproposals: tuple[Reproposal, ...], sender: int = 3, fr: list[bytes] = frames):
        message = NewView(3, tuple(fr), reproposals)
        return verify_new_view(message, sender, interval=16, quorums=q, verify=verifier.verify,
                               prepared_max=64)

    honest = (Reproposal(0, ()), Reproposal(1, (other,)))  # highest view wins; slot 0 null
    plan = check(honest)
    assert plan is not None and plan.first_free_slot == 2
    assert check((Reproposal(0, ()), Reproposal(1, (ref,)))) is None  # stale value
    assert check((Reproposal(0, ()),)) is None  # omits the prepared slot
    assert check(()) is None
    assert check(honest, sender=2) is None  # not the sequencer of view 3
    assert check(honest, fr=frames[:2]) is None  # fewer than q VIEW-CHANGEs
    assert check(honest, fr=[frames[0], frames[0], frames[1]]) is None  # one member twice
    forged = keys.sign(1, ViewChange(3, None, (PreparedCert(0, 1, (ref,), old.votes[:2]),)))
    assert check(honest, fr=[forged.to_frame(), *frames[1:]]) is None  # weak certificate
    wrong_view = _cluster_view_changes(keys, {1: old, 2: None, 3: newer}, view=2)
    assert check(honest, fr=wrong_view) is None
    assert plan_new_view(3, []).reproposals == ()


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_a_new_view_needs_q_view_changes_however_consistent_they_are(count: int) -> None:
    """n=7: q=5. A NEW-VIEW of f+1 to q-1 VIEW-CHANGEs (found by a planted bug that took f+1)
    is refused even when its re-proposals are exactly what those VIEW-CHANGEs plan: fewer
    than q may all miss the one honest member that prepared a committed slot."""
    from btob.core.quorum import Quorums

    keys = Keys(7)
    q = Quorums.for_cluster(7)
    frames = _cluster_view_changes(keys, {m: None for m in range(1, 6)}, view=1)

    def accepted(some: list[bytes]) -> bool:
        changes = [ViewChange(1, None, ())] * len(some)
        message = NewView(1, tuple(some), plan_new_view(1, changes).reproposals)
        return verify_new_view(message, 1, interval=16, quorums=q,
                               verify=keys.verifier().verify, prepared_max=64) is not None

    assert accepted(frames)  # q of them: the same plan is taken
    assert not accepted(frames[:count])


def test_timeouts_grow_on_consecutive_view_changes_and_reset_on_progress() -> None:
    timeouts = Timeouts(base_s=1.0, max_s=10.0)
    seen = []
    for _ in range(6):
        timeouts.view_changed()
        seen.append(timeouts.current_s)
    assert seen == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    timeouts.progressed()
    assert timeouts.current_s == 1.0


def test_regression_commit_certificate_keeps_its_view() -> None:
    """Seed 127 of the n=4 sweep: a member gathered view 0's READYs for a slot but got its
    value only after moving to view 1, and served the slot as committed in view 1 - a proof
    whose signatures did not match, so a lagging member could never adopt it."""
    from btob.faults import NetSpec

    net = NetSpec(loss=0.15, dup=0.02, delay_min=0.001, delay_max=0.02, distribution="exp",
                  gst=0.8, pre_gst_delay=0.02)
    result = simulate(SimConfig(n=4, seed=127, messages=30, brb="echo", net=net, max_time=30,
                                faults=(_crash(0, 0.289),)))
    assert result.ok and result.complete
    assert sum(s.dropped.get("proof-bad-certificate", 0) for s in result.statistics) == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_proven_equivocating_sequencer_is_replaced_before_any_timeout(seed: int) -> None:
    # It might keep ordering while lying to some members (they then live on catch-up); once
    # a member holds two conflicting signed messages from it, it is replaced at once.
    from btob import Settings
    from btob.faults import parse_fault

    result = simulate(SimConfig(n=4, seed=seed, messages=600, rate=3000.0,
                                faults=(parse_fault("0=equivocate", 4),)))
    assert result.ok and result.complete
    first = result.view_changes[0]
    assert first.sequencer != 0
    assert first.installed_at < 0.5 * Settings().view_change_timeout_s


@pytest.mark.parametrize("seed", [1, 2])
def test_a_laggard_many_rounds_behind_asks_again_as_soon_as_help_arrives(seed: int) -> None:
    # Regression: after adopting a round of commit proofs (or seeing a peer ahead) a laggard
    # waited a whole status interval to ask for the next round; with ~700 slots to catch up
    # in rounds of 16 it finished after ~48 virtual seconds, now after ~18.
    from btob import Settings
    from btob.faults import parse_net

    result = simulate(SimConfig(
        n=4, seed=seed, messages=1500, rate=1500.0, linger=0.0,
        settings=Settings(batch_payloads_max=2, catchup_slots_max=16),
        net=parse_net("partition=0.005-1.2:3|0+1+2", 4)))
    assert result.ok and result.complete
    laggard = result.statistics[3]
    assert laggard.slots_from_proofs + laggard.slots_from_segments > 500
    assert result.virtual_time < 30.0


# -- the pure rules, one by one (cases found by mutation testing) -----------------------------


def _checkpoint_cert(keys: Keys, upto: int, signers: tuple[int, ...] = (0, 1, 2)) -> CheckpointCert:
    digest, state = bytes([upto]) * 32, bytes([upto + 1]) * 32
    votes = tuple(Vote(m, keys.sign(m, Checkpoint(upto, digest, state)).signature)
                  for m in signers)
    return CheckpointCert(upto, digest, votes, state)


def test_the_plan_starts_at_the_highest_checkpoint_and_keeps_the_highest_view_per_slot() -> None:
    keys = Keys(4)
    a, b, c = (BatchRef(m, 0, bytes([m]) * 32) for m in (1, 2, 3))
    low, high = _checkpoint_cert(keys, 16), _checkpoint_cert(keys, 32)
    changes = [
        # below the highest checkpoint first: skipped, and the later ones still count
        ViewChange(5, low, (_prepared(keys, 1, 20, (a,)), _prepared(keys, 4, 34, (b,)))),
        ViewChange(5, high, (_prepared(keys, 2, 34, (c,)),)),  # a lower view of slot 34
        ViewChange(5, None, ()),
    ]
    plan = plan_new_view(5, changes)
    assert plan.checkpoint == high
    assert plan.reproposals == (Reproposal(32, ()), Reproposal(33, ()), Reproposal(34, (b,)))
    assert plan.first_free_slot == 35
    assert plan_new_view(5, changes[::-1]).reproposals == plan.reproposals  # order-free
    bare = plan_new_view(5, [ViewChange(5, high, ()), ViewChange(5, low, ())])
    assert bare == NewViewPlan(5, high, ()) and bare.first_free_slot == 32
    assert plan_new_view(5, [ViewChange(5, None, ())]).first_free_slot == 0


def test_a_prepared_certificate_names_distinct_batches_of_known_origins() -> None:
    from btob.core.quorum import Quorums

    keys = Keys(4)
    q, verify = Quorums.for_cluster(4), keys.verifier().verify
    ref = BatchRef(3, 0, b"\x07" * 32)
    assert valid_prepared_cert(_prepared(keys, 1, 2, (ref,)), quorums=q, verify=verify)
    assert not valid_prepared_cert(_prepared(keys, 1, 2, (ref, ref)), quorums=q, verify=verify)
    foreign = BatchRef(4, 0, b"\x07" * 32)  # origin n: no such member
    assert not valid_prepared_cert(_prepared(keys, 1, 2, (foreign,)), quorums=q, verify=verify)


def test_a_view_change_is_checked_part_by_part() -> None:
    from btob.core.quorum import Quorums

    keys = Keys(4)
    q, verify = Quorums.for_cluster(4), keys.verifier().verify
    ref = BatchRef(3, 0, b"\x07" * 32)

    def valid(change: ViewChange, prepared_max: int = 2) -> bool:
        return valid_view_change(change, interval=16, quorums=q, verify=verify,
                                 prepared_max=prepared_max)

    good = ViewChange(3, _checkpoint_cert(keys, 16), (_prepared(keys, 2, 16, (ref,)),
                                                       _prepared(keys, 1, 17, (ref,))))
    assert valid(good)
    assert not valid(good, prepared_max=1)  # more certificates than a window holds
    assert not valid(attrs.evolve(good, checkpoint=_checkpoint_cert(keys, 16, (0, 1))))
    assert not valid(attrs.evolve(good, prepared=(good.prepared[0], good.prepared[0])))
    assert not valid(attrs.evolve(good, prepared=(_prepared(keys, 3, 17, (ref,)),)))  # its view
    assert not valid(attrs.evolve(good, prepared=(_prepared(keys, 2, 15, (ref,)),)))  # floor


def test_a_new_view_with_a_badly_signed_view_change_is_refused() -> None:
    from btob.core.quorum import Quorums

    keys = Keys(4)
    q = Quorums.for_cluster(4)
    frames = _cluster_view_changes(keys, {m: None for m in (0, 1, 2)}, view=1)
    signed = keys.sign(2, ViewChange(1, None, ()))
    broken = Signed(2, signed.message, signed.body, bytes(64)).to_frame()

    def accepted(some: list[bytes]) -> bool:
        message = NewView(1, tuple(some), ())
        return verify_new_view(message, 1, interval=16, quorums=q,
                               verify=keys.verifier().verify, prepared_max=64) is not None

    assert accepted(frames)
    assert not accepted([*frames[:2], broken])


# -- a member's view changer, frame by frame (cases found by mutation testing) ---------------


def _member(keys: Keys, member: int = 1) -> Member:
    return Member(member=member, registry=keys.registry, signing_key=keys.keys[member],
                  cluster_id=keys.cluster_id)


def _feed(keys: Keys, node: Member, sender: int, message: object, now: float = 0.0) -> None:
    node.receive(keys.sign(sender, message).to_frame(), now)  # type: ignore[arg-type]


def _views_sent(node: Member) -> list[int]:
    """The views of the VIEW-CHANGEs ``node`` sent since the last call."""
    frames, _ = node.take_outputs()
    sent = [decode_frame(out.frame).parse().message for out in frames]
    return sorted({m.view for m in sent if isinstance(m, ViewChange)})


def test_another_members_view_change_counts_only_if_it_is_valid() -> None:
    keys = Keys(4)
    node = _member(keys)
    ref = BatchRef(3, 0, b"\x07" * 32)
    weak = PreparedCert(0, 0, (ref,), _prepared(keys, 0, 0, (ref,)).votes[:2])
    _feed(keys, node, 3, ViewChange(2, None, (weak,)))
    _feed(keys, node, 2, ViewChange(2, None, ()))
    assert node.statistics().dropped.get("viewchange-invalid") == 1
    assert _views_sent(node) == []  # one valid VIEW-CHANGE is not f+1
    _feed(keys, node, 3, ViewChange(2, None, ()))
    assert _views_sent(node) == [2]


def test_an_older_view_change_does_not_replace_a_newer_one() -> None:
    keys = Keys(4)
    node = _member(keys)
    _feed(keys, node, 2, ViewChange(3, None, ()))
    _feed(keys, node, 2, ViewChange(1, None, ()))  # ignored: member 2 wants view 3
    _feed(keys, node, 3, ViewChange(3, None, ()))
    assert _views_sent(node) == [3]  # f+1 want view 3 (not view 1)


def test_a_member_moves_past_a_silent_next_leader_only_with_a_quorum_waiting() -> None:
    """n=7 (f=2, q=5). Three VIEW-CHANGEs for view 1 make a member join; at its deadline it
    moves on to view 2 only if q members (itself among them) wait for view 1, and to view 2,
    not further."""
    keys = Keys(7)
    node = _member(keys, 3)  # not a leader of view 1 or 2
    for sender in (0, 4, 5):
        _feed(keys, node, sender, ViewChange(1, None, ()))
    assert _views_sent(node) == [1]
    node.tick(100.0)
    assert _views_sent(node) == [1]  # four wait for view 1: it keeps waiting (and resends)
    _feed(keys, node, 6, ViewChange(1, None, ()), now=100.0)
    node.tick(101.0)
    assert _views_sent(node) == [2]
