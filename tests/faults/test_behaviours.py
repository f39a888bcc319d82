"""The fault catalogue: every behaviour at the first sequencer and at another member, the
evidence equivocators leave, and what the state-transfer behaviours make of a CHUNK."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from btob import Member, MemberStatistics, Settings, SimConfig, StateDiverged, simulate
from btob.core.checkpoint import CheckpointTracker
from btob.core.effects import Outbox
from btob.core.merkle import MerkleTree, verify_chunk
from btob.core.ordering import Ordering, _Slot
from btob.core.quorum import Quorums
from btob.core.transfer import ChunkServer, StateTransfer
from btob.core.wire import (
    Checkpoint,
    CheckpointCert,
    Chunk,
    ChunkRequest,
    Message,
    Order,
    OrderCommitted,
    OrderEcho,
    OrderPrepared,
    Signed,
    Status,
    Vote,
    decode_frame,
)
from btob.faults import BEHAVIOURS, parse_fault
from btob.faults._behaviours import FaultContext, ProcessFault, make_fault
from btob.faults._clients import parse_client_fault
from btob.sim.coverage import LAGGARD_SETTINGS
from btob.sim.simulator import Restart, SimResult
from btob.testing.breaks import broken

from ..helpers import Keys

PARAMS = {"crash": ":at=0.05", "pause": ":at=0.05,for=0.5"}


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
@pytest.mark.parametrize("member", [0, 2])
def test_every_behaviour_is_survived(behaviour: str, member: int) -> None:
    spec = f"{member}={behaviour}{PARAMS.get(behaviour, '')}"
    for seed in (1, 2, 3):
        result = simulate(SimConfig(n=4, seed=seed, messages=200,
                                    faults=(parse_fault(spec, 4),), max_time=60))
        assert result.ok, [str(v) for v in result.report.violations]
        assert result.complete, f"{spec} seed {seed} did not complete"


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_every_behaviour_is_survived_under_linear_votes(behaviour: str) -> None:
    """Member 0 collects view 0's votes (it is the sequencer): every behaviour there."""
    spec = f"0={behaviour}{PARAMS.get(behaviour, '')}"
    result = simulate(SimConfig(n=4, seed=1, messages=100, faults=(parse_fault(spec, 4),),
                                settings=Settings(votes="linear"), max_time=60))
    assert result.ok, [str(v) for v in result.report.violations]
    assert result.complete, f"{spec} did not complete under linear votes"


@pytest.mark.parametrize("behaviour", ["equivocate", "vote-equivocate", "twins"])
@pytest.mark.parametrize("member", [0, 2])
def test_every_equivocating_behaviour_is_proven(behaviour: str, member: int) -> None:
    result = simulate(SimConfig(n=4, seed=3, messages=100,
                                faults=(parse_fault(f"{member}={behaviour}", 4),)))
    assert result.ok and result.complete
    honest = [s for s in result.statistics if result.logs.run.members[s.member].honest]
    convicted = {m for s in honest for m in s.evidence}
    assert convicted == {member}  # the liar, and never an honest member


def _thin_certificates_taken(**kwargs: Any) -> Member:
    """A member whose signed-echo BRB takes a FINAL of f+1 ECHOs (and certifies on as few)."""
    member = Member(**kwargs)
    brb = member._dissemination
    brb.quorums = attrs.evolve(brb.quorums, quorum=brb.quorums.one_honest)  # type: ignore[attr-defined]
    return member


@pytest.mark.parametrize("n", [4, 7])
def test_an_equivocating_origin_certifies_each_story_with_too_few_echoes(n: int) -> None:
    """Under the signed-echo BRB, each half gets a FINAL of its own ECHOs, short of q: the
    real members refuse every one, and a member that takes them splits from the rest."""
    liars = [1] if n == 4 else [1, 3]
    faults = tuple(parse_fault(f"{m}=equivocate", n) for m in liars)
    broke = 0
    for seed in (1, 2, 3):
        config = SimConfig(n=n, seed=seed, messages=50, brb="echo", max_time=30, faults=faults)
        result = simulate(config)
        assert result.ok and result.complete
        assert all(result.fault_effects[m].frames_injected for m in liars)
        honest = [s for s in result.statistics if s.member not in liars]
        assert sum(s.dropped.get("brb-bad-certificate", 0) for s in honest) > 0  # refused
        broken = simulate(config, member_factory=_thin_certificates_taken)
        broke += any("delivered different batches" in v for v in broken.vote_violations)
    assert broke == 3


class _RepeatWaited(Member):
    """Delivery waits for a batch that an earlier slot ordered already, instead of skipping
    it: for that one check, nothing counts as ordered."""

    def _deliver_ready(self, now: float) -> bool:
        order = self._order
        order.is_ordered = lambda origin, counter: False  # type: ignore[method-assign]
        try:
            return super()._deliver_ready(now)
        finally:
            del order.is_ordered


def test_a_double_booking_sequencer_needs_the_repeat_skipped() -> None:
    """Both slots that name one batch may commit: the real members skip the second one, and
    a member that waits for it never gets past that slot."""
    for seed in (1, 2):
        config = SimConfig(n=4, seed=seed, messages=50, max_time=30,
                           faults=(parse_fault("0=double-book", 4),))
        result = simulate(config)
        assert result.ok and result.complete
        assert result.fault_effects[0].frames_changed > 0  # it named batches twice
        assert not simulate(config, member_factory=_RepeatWaited).complete
        assert simulate(attrs.evolve(config, faults=()), member_factory=_RepeatWaited).complete


def test_a_lying_new_sequencer_is_rejected_and_replaced() -> None:
    n = 7
    faults = (parse_fault("0=crash:at=0.1", n), parse_fault("1=lie-viewchange", n))
    result = simulate(SimConfig(n=n, seed=1, messages=120, rate=100.0, faults=faults))
    assert result.ok and result.complete
    rejected = sum(s.dropped.get("newview-invalid", 0) for s in result.statistics)
    assert rejected > 0  # member 1's NEW-VIEW nulled prepared slots and was refused
    assert result.view_changes[-1].sequencer not in (0, 1)


def test_crash_after_k_sends_and_at_a_protocol_step() -> None:
    after = simulate(SimConfig(n=4, seed=1, messages=100,
                               faults=(parse_fault("2=crash:after=40", 4),)))
    assert after.crashed == (2,) and after.ok and after.complete
    step = simulate(SimConfig(n=4, seed=1, messages=100, rate=100.0,
                              faults=(parse_fault("1=crash:step=vc.viewchange", 4),
                                      )))
    assert step.ok and step.complete and step.crashed == ()  # no view change: never reached
    both = simulate(SimConfig(n=7, seed=1, messages=100, rate=100.0, faults=(
        parse_fault("0=crash:at=0.2", 7), parse_fault("1=crash:step=vc.newview", 7))))
    assert both.ok and both.complete and both.crashed == (0, 1)


# -- state-transfer behaviours, at the behaviour level ---------------------------------------
# (they act on CHUNKs, which a member sends once it serves snapshots)

CB = 16
SETTINGS = Settings(snapshot_chunk_bytes=CB)
KEYS = Keys(4)
SERVER = 1
OLD_STATE, STATE = bytes(range(70)), bytes(range(100, 200))


def _behaviour(text: str, seed: int = 1) -> ProcessFault:
    spec = parse_fault(text, 4)

    def resign(message: Message) -> bytes:
        return KEYS.sign(spec.member, message).to_frame()

    def resign_for_cluster(message: Message, cluster: bytes) -> bytes:
        return Keys(4, cluster).sign(spec.member, message).to_frame()

    ctx = FaultContext(member=spec.member, n=4, rng=random.Random(seed), settings=SETTINGS,
                       resign=resign, resign_for_cluster=resign_for_cluster)
    return make_fault(spec, ctx)


def _served(upto: int, state: bytes, index: int) -> Signed:
    chunk = ChunkServer(settings=SETTINGS, outbox=Outbox()).serve(
        ChunkRequest(upto, index), upto, state)
    assert chunk is not None
    return KEYS.sign(SERVER, chunk)


def _through(fault: ProcessFault, signed: Signed, dest: int = 2) -> list[tuple[int, Signed]]:
    """What leaves in place of ``signed``, each frame decoded and its signature checked."""
    out = []
    verifier = KEYS.verifier()
    for target, frame, delay in fault.outgoing(dest, signed.to_frame(), signed):
        raw = decode_frame(frame)
        assert delay == 0.0 and verifier.verify(raw.sender, raw.kind, raw.body, raw.signature)
        out.append((target, raw.parse()))
    return out


def _fetcher(upto: int, state: bytes) -> tuple[StateTransfer, Outbox]:
    outbox = Outbox()
    transfer = StateTransfer(member=0, quorums=Quorums.for_cluster(4), settings=SETTINGS,
                             outbox=outbox)
    tree = MerkleTree(state, CB)
    assert transfer.start(upto, tree.root, None, [SERVER, 2, 3], 0.0)
    return transfer, outbox


def test_bad_chunks_are_validly_signed_and_fail_verification() -> None:
    fault = _behaviour(f"{SERVER}=bad-chunks")
    tree = MerkleTree(STATE, CB)
    kinds = set()
    for _ in range(8):
        for index in range(tree.count):
            [(dest, out)] = _through(fault, _served(32, STATE, index))
            chunk = out.message
            assert dest == 2 and isinstance(chunk, Chunk) and out.sender == SERVER
            assert (chunk.upto, chunk.index, chunk.count) == (32, index, tree.count)
            assert not verify_chunk(tree.root, tree.count, index, chunk.data, chunk.proof) \
                or chunk.root != tree.root
            kinds.add("root" if chunk.root != tree.root else
                      "data" if chunk.data != tree.chunk(index) else "proof")
            transfer, outbox = _fetcher(32, STATE)  # and a fetcher refuses it
            assert transfer.on_chunk(SERVER, chunk, 0.0) is None
            assert transfer.bad_peers() == {SERVER} and transfer.held() == 0
            assert outbox.dropped["chunk-bad-proof"] + outbox.dropped["chunk-bad-root"] == 1
    assert kinds == {"data", "proof", "root"}


def test_bad_chunks_corrupt_even_the_empty_state() -> None:
    fault = _behaviour(f"{SERVER}=bad-chunks")
    [(_, out)] = _through(fault, _served(16, b"", 0))
    assert isinstance(out.message, Chunk)
    assert not verify_chunk(MerkleTree(b"", CB).root, 1, 0, out.message.data, out.message.proof)


def test_bad_chunks_leave_everything_else_and_p_zero_alone() -> None:
    status = KEYS.sign(SERVER, Status(3))
    assert _through(_behaviour(f"{SERVER}=bad-chunks"), status) == [(2, status)]
    chunk = _served(32, STATE, 1)
    assert _through(_behaviour(f"{SERVER}=bad-chunks:p=0"), chunk) == [(2, chunk)]


def test_stale_snapshot_serves_its_older_snapshot_for_a_newer_one() -> None:
    fault = _behaviour(f"{SERVER}=stale-snapshot")
    for index in range(MerkleTree(OLD_STATE, CB).count):
        [(_, first)] = _through(fault, _served(16, OLD_STATE, index))
        assert isinstance(first.message, Chunk) and first.message.upto != 16  # relabelled
        assert first.message.data == MerkleTree(OLD_STATE, CB).chunk(index)
    transfer, outbox = _fetcher(32, STATE)
    for index in range(MerkleTree(STATE, CB).count):
        [(dest, out)] = _through(fault, _served(32, STATE, index))
        chunk = out.message
        assert dest == 2 and isinstance(chunk, Chunk)
        kept = index if index < 5 else 0  # the old one has 5 chunks: any stands in
        assert chunk == _served(16, OLD_STATE, kept).message  # genuinely the old one
        assert transfer.on_chunk(SERVER, chunk, 0.0) is None
    assert outbox.dropped["chunk-stale"] == MerkleTree(STATE, CB).count
    assert transfer.held() == 0 and transfer.bad_peers() == frozenset()


def test_stale_snapshot_relabels_its_only_snapshot_with_another_checkpoint() -> None:
    fault = _behaviour(f"{SERVER}=stale-snapshot")
    [(_, out)] = _through(fault, _served(32, STATE, 0))
    assert isinstance(out.message, Chunk) and out.message.upto == 32 - SETTINGS.checkpoint_interval
    transfer, outbox = _fetcher(32, STATE)
    assert transfer.on_chunk(SERVER, out.message, 0.0) is None
    assert outbox.dropped["chunk-stale"] == 1


def test_silent_transfer_drops_chunks_only() -> None:
    fault = _behaviour(f"{SERVER}=silent-transfer")
    assert _through(fault, _served(32, STATE, 0)) == []
    for message in (Status(3), ChunkRequest(32, 0)):
        signed = KEYS.sign(SERVER, message)
        assert _through(fault, signed) == [(2, signed)]


def test_the_state_transfer_behaviours_are_in_the_catalogue() -> None:
    for name in ("bad-chunks", "stale-snapshot", "silent-transfer", "bad-transfer"):
        assert BEHAVIOURS[name].byzantine and BEHAVIOURS[name].summary
        assert type(_behaviour(f"1={name}")).__name__.lower() == name.replace("-", "")


@pytest.mark.parametrize(("variant", "brb", "member", "refused"), [
    ("bb", "bracha", 0, {"brb-bad-origin", "brb-beyond-window", "malformed-body"}),
    ("bb", "echo", 1, {"brb-echo-not-for-me", "brb-unexpected-kind", "brb-beyond-window"}),
    ("ub", "bracha", 0, {"ub-beyond-window", "ub-unexpected-kind", "malformed-body"}),
    ("moving", "echo", 0, {"order-malformed"}),  # member 0 proposes some of the slots
])
def test_out_of_bounds_is_refused_by_the_check_each_message_breaks(
        variant: str, brb: str, member: int, refused: set[str]) -> None:
    result = simulate(SimConfig(n=4, seed=1, messages=40, variant=variant, brb=brb,
                                faults=(parse_fault(f"{member}=out-of-bounds", 4),)))
    assert result.ok and result.complete
    counted = {reason for stats in result.statistics if stats.member != member
               for reason, count in stats.dropped.items() if count}
    assert refused <= counted, refused - counted
    effects = result.fault_effects[member]
    assert effects.frames_changed + effects.frames_injected > 0  # sent alone or along


@pytest.mark.parametrize(("behaviour", "refused"), [
    ("bad-viewchange", ("viewchange-invalid", "newview-invalid", "newview-beyond-window")),
    ("bad-catchup", ("proof-malformed", "proof-batch-mismatch", "proof-bad-certificate",
                     "segment-malformed", "segment-bad-certificate", "segment-not-needed")),
])
@pytest.mark.parametrize("member", [0, 1])
def test_parts_that_do_not_hold_are_refused_and_move_nothing(
        behaviour: str, refused: tuple[str, ...], member: int) -> None:
    """Each honest member refuses every kind of lie under the check it breaks, and takes
    nothing from them: no view moves, no slot comes from a proof or segment."""
    result = simulate(SimConfig(n=4, seed=2, messages=40,
                                faults=(parse_fault(f"{member}={behaviour}", 4),)))
    assert result.ok and result.complete
    for stats in result.statistics:
        if stats.member != member:
            assert stats.view == 0
            assert stats.slots_from_proofs == stats.slots_from_segments == 0
            for check in refused:
                assert stats.dropped.get(check), (stats.member, check)


def _refused_beyond_clean(config: SimConfig, member: int) -> tuple[SimResult, set[str]]:
    """The run of ``config`` with ``member`` faulty, and the reasons honest members counted
    there that they do not count in the same run without the fault."""
    def counted(result: SimResult, faulty: int | None) -> set[str]:
        return {reason for stats in result.statistics if stats.member != faulty
                for reason, count in stats.dropped.items() if count}

    clean = counted(simulate(attrs.evolve(config, faults=())), None)
    result = simulate(config)
    return result, counted(result, member) - clean


UNSOLICITED = {"chunk-unexpected", "chunkreq-not-held", "snapshot-offer-not-needed",
               "snapshot-offer-bad-certificate"}
"""What bad-transfer's traffic out of place is refused under when nobody transfers."""


@pytest.mark.parametrize("member", [0, 1])
def test_bad_transfer_is_refused_by_exactly_the_transfer_checks(member: int) -> None:
    config = SimConfig(n=4, seed=2, messages=40,
                       faults=(parse_fault(f"{member}=bad-transfer", 4),))
    result, refused = _refused_beyond_clean(config, member)
    assert result.ok and result.complete
    assert refused == UNSOLICITED, refused ^ UNSOLICITED
    for stats in result.statistics:
        if stats.member != member:
            assert stats.transfer.started == 0  # no offer it made was taken
            for check in UNSOLICITED:
                assert stats.dropped.get(check), (stats.member, check)


LAGGARD_TARGETS: dict[str, tuple[set[str], set[str]]] = {
    # a corrupted root is one of the corruptions drawn; the fetcher asks the liar no more
    "bad-chunks": ({"chunk-bad-proof"}, {"chunk-bad-root"}),
    "stale-snapshot": ({"chunk-stale"}, set()),
    # (a laggard's own peers offer it snapshots it no longer needs: not counted here)
    # (the miscounted copy of a served chunk fails the root or the proof while the laggard
    # still fetches that snapshot, and is unexpected once it has it all: which one depends
    # on timing alone)
    "bad-transfer": (UNSOLICITED - {"snapshot-offer-not-needed"} | {
        "chunk-duplicate", "chunkreq-over-budget"}, {"chunk-bad-root", "chunk-bad-proof"}),
}
"""What each state-transfer behaviour is refused under, always and possibly, by a laggard
that fetches a snapshot (and, for bad-transfer, by its peers), beyond what the run without
it counts."""


@pytest.mark.parametrize("behaviour", sorted(LAGGARD_TARGETS))
@pytest.mark.parametrize("member", [0, 1])
def test_state_transfer_lies_are_refused_by_a_laggard_that_still_transfers(
        behaviour: str, member: int) -> None:
    """Member 3 is away while its peers compact past it and comes back by state transfer
    (the coverage measurement's laggard): the lies of ``behaviour`` are refused under the
    checks they target, and the laggard completes its transfer from the honest peers."""
    config = SimConfig(n=4, seed=1, messages=50, rate=1000.0, settings=LAGGARD_SETTINGS,
                       restarts=(Restart(3, 20, 0.1, committed=True),),
                       faults=(parse_fault(f"{member}={behaviour}", 4),))
    result, refused = _refused_beyond_clean(config, member)
    assert result.ok and result.complete and result.redelivery_mismatches == ()
    assert result.transfers.get(3, 0) >= 1
    always, possibly = LAGGARD_TARGETS[behaviour]
    assert always <= refused <= always | possibly, (sorted(refused), behaviour)
    convicted = {m for s in result.statistics if s.member != member for m in s.evidence}
    assert convicted <= {member}


async def test_out_of_bounds_on_the_runtime_is_refused_alike() -> None:
    import trio

    from btob.testing import open_local_cluster

    from ..helpers import collect

    with trio.fail_after(30):
        async with open_local_cluster(4, faults=["0=out-of-bounds"]) as cluster:
            for k in range(8):
                await cluster.nodes[1 + k % 3].broadcast(b"p%d" % k)
            await collect(cluster.nodes[1], 8)
            while not all(node.statistics().member.dropped.get(check)
                          for node in cluster.nodes[1:]
                          for check in ("brb-bad-origin", "malformed-body")):
                await trio.sleep(0.01)
            assert cluster.nodes[0].statistics().fault.frames_injected > 0  # type: ignore[union-attr]


async def test_bad_transfer_on_the_runtime_is_refused_alike() -> None:
    """Over the memory network, every honest node refuses the out-of-place transfer traffic
    under the checks it breaks."""
    import trio

    from btob.testing import open_local_cluster

    from ..helpers import collect

    with trio.fail_after(30):
        async with open_local_cluster(4, faults=["0=bad-transfer"]) as cluster:
            for k in range(8):
                await cluster.nodes[1 + k % 3].broadcast(b"p%d" % k)
            await collect(cluster.nodes[1], 8)

            def missing() -> list[tuple[int, str]]:
                return [(i, check) for i, node in enumerate(cluster.nodes) if i >= 1
                        for check in sorted(UNSOLICITED)
                        if not node.statistics().member.dropped.get(check)]

            while missing():
                await trio.sleep(0.01)
            assert cluster.nodes[0].statistics().fault.frames_injected > 0  # type: ignore[union-attr]



def test_mutate_acts_only_in_its_round() -> None:
    """ByzzFuzz mutates in chosen rounds: outside ``at`` .. ``at + for`` every frame leaves
    as the member made it."""
    def changed(spec: str) -> int:
        result = simulate(SimConfig(n=4, seed=3, messages=40, max_time=20,
                                    faults=(parse_fault(spec, 4),)))
        assert result.ok
        return result.fault_effects[1].frames_changed

    always, never = changed("1=mutate:p=1"), changed("1=mutate:p=1,at=50")
    one_round = changed("1=mutate:p=1,at=0.01,for=0.01")
    assert never == 0 and 0 < one_round < always


class OrderFromAnyone(Ordering):
    """Takes an ORDER from any member: the check that only the slot's proposer proposes is
    gone (for the message at hand, the sender is taken for the proposer)."""

    def _on_order(self, signed: Signed, message: Order, state: _Slot, now: float) -> None:
        self.proposer.proposer_of = lambda slot: signed.sender  # type: ignore[method-assign]
        try:
            super()._on_order(signed, message, state, now)
        finally:
            del self.proposer.proposer_of


def order_from_anyone(**kwargs: Any) -> Member:
    """A member whose ordering takes anyone's ORDER."""
    return Member(**kwargs, ordering=OrderFromAnyone)


class JoinOnOne(Member):
    """Leaves its view for a higher one on a single VIEW-CHANGE, not f+1 (one honest)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._view_changer.quorums = attrs.evolve(self.quorums, one_honest=1)


def _rule_run(spec: str, variant: str, seed: int, factory: Callable[..., Member] = Member,
              ) -> SimResult:
    return simulate(SimConfig(n=4, seed=seed, messages=50, variant=variant, max_time=10,
                              faults=(parse_fault(spec, 4),)), member_factory=factory)


def _honest(result: SimResult) -> list[MemberStatistics]:
    return [s for s in result.statistics if result.logs.run.members[s.member].honest]


VARIANTS = ["bb", "ub", "uub", "moving"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("member", [0, 1])
def test_usurping_orders_are_refused_and_the_run_completes(variant: str, member: int) -> None:
    result = _rule_run(f"{member}=usurp", variant, 2)
    assert result.ok and result.complete
    effects = result.fault_effects[member]
    assert effects.frames_changed + effects.frames_injected > 0  # sent alone or along
    assert all(s.dropped.get("order-not-sequencer", 0) for s in _honest(result))


@pytest.mark.parametrize("variant", VARIANTS)
def test_usurp_stalls_a_member_that_takes_anyones_order(variant: str) -> None:
    broken_run = _rule_run("1=usurp", variant, 2, order_from_anyone)
    assert not (broken_run.ok and broken_run.complete)
    assert not any(s.dropped.get("order-not-sequencer", 0) for s in _honest(broken_run))
    assert _rule_run("1=usurp", variant, 2).complete  # the same run, with the check


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("member", [0, 1])
def test_pushed_view_changes_are_kept_but_move_nobody(variant: str, member: int) -> None:
    result = _rule_run(f"{member}=view-push", variant, 1)
    assert result.ok and result.complete
    assert not result.view_changes  # one member wanting a view is not enough
    honest = _honest(result)
    assert all(s.view_changes_held and not s.view_changes_started for s in honest)
    assert not any(s.dropped.get("viewchange-invalid", 0) for s in honest)  # all valid


@pytest.mark.parametrize("variant", VARIANTS)
def test_view_push_stalls_a_member_that_joins_on_one_view_change(variant: str) -> None:
    broken_run = _rule_run("0=view-push", variant, 1, JoinOnOne)
    assert not (broken_run.ok and broken_run.complete)
    assert all(s.view_changes_started for s in _honest(broken_run))
    assert _rule_run("0=view-push", variant, 1).complete  # the same run, intact
class _AnyDigestTracker(CheckpointTracker):
    """Counts a boundary's CHECKPOINT votes whatever they sign (a stable checkpoint needs q
    matching signatures on one (upto, digest, state)): the certificate takes the body of
    the vote that completed the count."""

    def on_checkpoint(self, signed: Signed) -> CheckpointCert | None:
        message = signed.message
        assert isinstance(message, Checkpoint)
        if message.upto % self.interval or message.upto <= self.stable_upto:
            return None
        votes = self._votes.setdefault(message.upto, {})
        if signed.sender in votes:
            return None
        votes[signed.sender] = signed
        if len(votes) < self.quorums.quorum:
            return None
        cert = CheckpointCert(message.upto, message.digest, tuple(
            Vote(s.sender, s.signature) for s in sorted(votes.values(), key=lambda s: s.sender)
        )[: self.quorums.quorum], message.state)
        self.adopt(cert)
        return cert


class _AnyDigestMember(Member):
    """A member whose checkpoint tracker is :class:`_AnyDigestTracker`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._checkpoints.__class__ = _AnyDigestTracker


def _bad_checkpoint(seed: int, n: int, factory: Callable[..., Member] = Member) -> SimResult:
    members = [1] if n == 4 else [1, 4]
    faults = tuple(parse_fault(f"{m}=bad-checkpoint", n) for m in members)
    return simulate(SimConfig(n=n, seed=seed, messages=150, max_time=30, faults=faults),
                    member_factory=factory)


@pytest.mark.parametrize("n", [4, 7])
def test_bad_checkpoints_are_signed_lies_that_never_count(n: int) -> None:
    for seed in (1, 2):
        result = _bad_checkpoint(seed, n)
        assert result.ok and result.complete
        liars = [m for m, info in result.logs.run.members.items() if not info.honest]
        assert all(result.fault_effects[m].frames_changed for m in liars)  # it lied
        honest = [s for s in result.statistics if s.member not in liars]
        assert all(s.stable_checkpoint >= 16 for s in honest)  # and q honest votes did it


def test_bad_checkpoint_lies_at_real_boundaries_with_a_wrong_digest_or_state() -> None:
    real = Checkpoint(16, bytes([1]) * 32, bytes([2]) * 32)
    signed = KEYS.sign(1, real)
    fault = _behaviour("1=bad-checkpoint")
    lies = [_through(fault, signed, dest)[0] for dest in (0, 2, 3, 2)]
    assert [dest for dest, _ in lies] == [0, 2, 3, 2]
    assert len({lie.message for _, lie in lies}) == 1  # one lie per boundary, validly signed
    lie = lies[0][1].message
    assert isinstance(lie, Checkpoint) and lie.upto == 16 and lie != real
    changed = set()
    for what in ("digest", "state", "both"):
        [(_, told)] = _through(_behaviour(f"1=bad-checkpoint:lie={what}"), signed)
        message = told.message
        assert isinstance(message, Checkpoint) and message.upto == real.upto
        changed.add((message.digest != real.digest, message.state != real.state))
    assert changed == {(True, False), (False, True), (True, True)}
    only = _behaviour("1=bad-checkpoint:to=2")
    assert only.outgoing(0, signed.to_frame(), signed) == [(0, signed.to_frame(), 0.0)]


def test_bad_checkpoint_finds_a_tracker_that_counts_votes_whatever_they_sign() -> None:
    def breaks(factory: Callable[..., Member]) -> bool:
        for seed in (1, 2, 3):
            try:
                result = _bad_checkpoint(seed, 4, factory)
            except (AssertionError, StateDiverged):  # its own chain contradicts the cert
                return True
            if not result.ok or not result.complete:
                return True
        return False

    assert breaks(_AnyDigestMember)
    assert not breaks(Member)


# -- members toward clients ---------------------------------------------------------------


def _with_clients(fault: str, seed: int, **kwargs: Any) -> SimConfig:
    return SimConfig(n=4, seed=seed, messages=20, clients=4, client_requests=8,
                     faults=(parse_fault(fault, 4),), **kwargs)


def test_the_client_behaviours_are_in_the_catalogue_and_not_drawn_by_swarms() -> None:
    for name in ("drop-requests", "forge-receipts", "withhold-receipts"):
        assert BEHAVIOURS[name].byzantine and BEHAVIOURS[name].summary
        assert not BEHAVIOURS[name].swarm  # without clients they would do nothing
        assert type(_behaviour(f"1={name}")).__name__.lower() == name.replace("-", "")


@pytest.mark.parametrize("member", [0, 2])
def test_a_member_dropping_requests_is_failed_over(member: int) -> None:
    for seed in (1, 2):
        result = simulate(_with_clients(f"{member}=drop-requests", seed))
        assert result.ok and result.complete, [str(v) for v in result.report.violations]
        assert result.fault_effects[member].requests_dropped > 0
        stats = result.client_statistics.values()
        assert sum(s.failovers for s in stats) >= result.fault_effects[member].requests_dropped
        assert all(s.receipts_valid == 8 and not s.gave_up for s in stats)
        relays = {r.msg_id for r in result.logs.deliveries[1] if r.origin == -1}
        assert len(relays) == 4 * 8  # every request delivered, none through the dropper


@pytest.mark.parametrize("member", [0, 2])
def test_forged_receipts_are_refused_by_every_client(member: int) -> None:
    for seed in (1, 2):
        config = _with_clients(f"{member}=forge-receipts", seed)
        result = simulate(config)
        assert result.ok and result.complete, [str(v) for v in result.report.violations]
        forged = result.fault_effects[member].client_frames_changed
        assert forged > 0
        stats = result.client_statistics.values()
        # Each forgery is refused (one in four is another request's real receipt, which a
        # client that had that request proven already counts as late).
        assert sum(s.receipts_invalid + s.receipts_late for s in stats) >= forged
        assert sum(s.receipts_invalid for s in stats) > 0
        accepted = {r.member for receipts in result.logs.receipts.values() for r in receipts}
        assert member not in accepted  # no receipt of the forger was ever believed


def test_withheld_receipts_leave_the_request_delivered_and_the_client_failing_over() -> None:
    result = simulate(_with_clients("2=withhold-receipts", 1))
    assert result.ok and result.complete
    assert result.fault_effects[2].client_frames_dropped > 0
    stats = result.client_statistics.values()
    assert sum(s.failovers for s in stats) > 0
    # What it relayed was delivered all the same, and the members the clients failed over to
    # rebuilt the withheld receipts from their logs: nothing was given up.
    delivered = {r.msg_id for r in result.logs.deliveries[0] if r.origin == -1}
    assert len(delivered) == 4 * 8
    assert all(s.receipts_valid == 8 and not s.gave_up for s in stats)


def test_the_checker_catches_a_member_that_believes_nothing_about_clients() -> None:
    """The same runs with members that deliver a client's request twice, or ahead of its
    session's order, fail the checker: the client properties are really judged."""
    twice = _with_clients("2=withhold-receipts", 1,
                          client_faults=(parse_client_fault("0=equivocate", 4),))
    assert simulate(twice).ok
    report = simulate(twice, member_factory=broken("client-duplicates")).report
    assert any("and again at index" in str(v) for v in report.violations)
    ahead = _with_clients("2=drop-requests", 1, client_in_flight=4)
    assert simulate(ahead).ok
    report = simulate(ahead, member_factory=broken("client-unordered")).report
    assert any(v.property == "fifo" and "client session" in str(v) for v in report.violations)


def test_withhold_certs_drops_the_collectors_certificates_only_and_spares_to() -> None:
    fault = _behaviour("0=withhold-certs:to=3")
    votes = (Vote(1, bytes(64)),)
    for message in (OrderPrepared(0, 0, (), votes), OrderCommitted(0, 0, bytes(32), votes)):
        signed = KEYS.sign(0, message)
        assert _through(fault, signed, dest=2) == []
        assert _through(fault, signed, dest=3) == [(3, signed)]
    echo = KEYS.sign(0, OrderEcho(0, 0, bytes(32)))
    assert _through(fault, echo, dest=2) == [(2, echo)]


def test_bad_certs_tells_every_lie_and_each_is_refused_unread() -> None:
    """Five lies per five draws; an honest member in linear mode refuses each one under
    ``order-bad-certificate`` (none is taken for a vote: it sends no READY, commits nothing)."""
    fault = _behaviour("0=bad-certs:k=5")
    injected = fault.tick()
    assert {dest for dest, _ in injected} == {1, 2, 3}
    frames = [frame for dest, frame in injected if dest == 1]
    messages = [decode_frame(f).parse().message for f in frames]
    assert sum(isinstance(m, OrderPrepared) for m in messages) == 4
    assert sum(isinstance(m, OrderCommitted) for m in messages) == 1
    outbox = Outbox()
    core = Ordering(member=1, quorums=Quorums.for_cluster(4),
                    settings=attrs.evolve(SETTINGS, votes="linear"), outbox=outbox,
                    verify=KEYS.verifier().verify)
    for frame in frames:
        core.on_message(decode_frame(frame).parse(), 0.0)
    assert outbox.dropped["order-bad-certificate"] == 5
    assert not outbox.sends and not outbox.prepared
    assert all(core.committed(slot) is None for slot in range(3))
