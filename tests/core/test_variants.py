"""The sequencer variants UB, UUB and moving beside BB: correct under faults, their own
faults, and what they cost."""

from __future__ import annotations

import pytest

from btob import ConfigError, SimConfig, simulate
from btob.core import variants
from btob.core.brb import BrachaBroadcast, SignedEchoBroadcast
from btob.core.direct import DirectDissemination, GrantedDissemination
from btob.core.effects import Outbox
from btob.core.proposers import FixedProposer, GrantingProposer, MovingProposer
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.variants import check_brb, variant
from btob.faults import parse_fault, parse_net

from ..helpers import Keys

VARIANTS = ["ub", "uub", "moving"]
FAULTS = ["", "0=crash:at=0.2", "0=silent", "0=equivocate", "2=equivocate", "2=crash:at=0.1",
          "0=mutate", "2=vote-equivocate"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("spec", FAULTS)
def test_variant_survives_faults(variant: str, spec: str) -> None:
    for seed in (1, 2):
        faults = (parse_fault(spec, 4),) if spec else ()
        result = simulate(SimConfig(n=4, seed=seed, messages=120, rate=200.0, variant=variant,
                                    faults=faults))
        assert result.ok, [str(v) for v in result.report.violations]
        assert result.complete, f"{variant} {spec} seed {seed}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_under_loss_and_two_crashes(variant: str) -> None:
    n = 7
    net = parse_net("loss=0.05,dup=0.02,delay=0.001-0.03,gst=1.5", n)
    faults = (parse_fault("0=crash:at=0.2", n), parse_fault("1=crash:at=1.0", n))
    result = simulate(SimConfig(n=n, seed=3, messages=100, rate=60.0, variant=variant,
                                net=net, faults=faults))
    assert result.ok and result.complete


def test_ub_sequencer_that_ignores_forwarded_batches_is_replaced() -> None:
    result = simulate(SimConfig(n=4, seed=1, messages=100, rate=100.0, variant="ub",
                                faults=(parse_fault("0=drop-forwards", 4),)))
    assert result.ok and result.complete
    assert result.view_changes and result.view_changes[0].sequencer == 1


def test_moving_sequencer_skips_a_member_that_skips_its_turn() -> None:
    n = 7
    result = simulate(SimConfig(n=n, seed=2, messages=150, rate=100.0, variant="moving",
                                faults=(parse_fault("3=skip-turn", n),)))
    assert result.ok and result.complete
    assert len(result.view_changes) == 1  # once out of the rotation, it stalls nothing more


def test_uub_double_grants_never_commit_two_values_and_are_proven() -> None:
    for seed in (1, 2, 3):
        result = simulate(SimConfig(n=4, seed=seed, messages=150, rate=200.0, variant="uub",
                                    faults=(parse_fault("0=double-grant", 4),)))
        assert result.ok and result.complete
        honest = [s for s in result.statistics if result.logs.run.members[s.member].honest]
        assert {m for s in honest for m in s.evidence} == {0}


def test_uub_unused_grants_do_not_block_later_slots_for_long() -> None:
    result = simulate(SimConfig(n=4, seed=1, messages=150, rate=100.0, variant="uub",
                                faults=(parse_fault("2=hoard-grants", 4),)))
    assert result.ok and result.complete
    # Each hoarded grant costs one view change, then the slot is re-proposed or nulled.
    assert result.virtual_time < 10


def test_uub_equivocating_origin_cannot_wedge_the_order() -> None:
    result = simulate(SimConfig(n=4, seed=1, messages=200, rate=200.0, variant="uub",
                                faults=(parse_fault("2=equivocate", 4),)))
    assert result.ok and result.complete


def _busiest_over_average(result) -> float:  # type: ignore[no-untyped-def]
    sent = [s.messages_sent for s in result.statistics]
    return max(sent) / (sum(sent) / len(sent))


def test_the_survey_claims_hold_in_the_simulator() -> None:
    runs = {v: simulate(SimConfig(n=4, seed=1, messages=200, rate=400.0, variant=v))
            for v in ("bb", "ub", "uub", "moving")}
    assert all(r.ok and r.complete for r in runs.values())
    # UB sends the fewest messages per payload: no reliable broadcast of each batch.
    assert runs["ub"].messages_sent < runs["bb"].messages_sent
    assert runs["ub"].messages_sent < runs["moving"].messages_sent
    # A moving sequencer spreads the sequencing work more evenly than a fixed one.
    assert _busiest_over_average(runs["moving"]) < _busiest_over_average(runs["ub"])


def test_regression_ub_carried_batch_overrides_an_equivocated_copy() -> None:
    """Seed 302 of the UB swarm sweep: a mutating origin handed different copies of one batch
    around; members holding the wrong copy refused every ORDER carrying the right one, and
    each new sequencer stalled the same way. The ORDER's carried batch now takes precedence."""
    result = simulate(SimConfig(n=4, seed=302, messages=40, variant="ub", max_time=30,
                                faults=(parse_fault("0=mutate:p=0.353", 4),),
                                net=parse_net("delay=0.001-0.005,dup=0.02", 4)))
    assert result.ok and result.complete


def test_regression_view_change_waits_for_a_quorum_before_moving_on() -> None:
    """Seed 390 of the UB swarm sweep: after loss and a partition, one member timed out
    alone into a higher view while the others waited for a NEW-VIEW from a crashed member;
    with doubling timeouts nobody met again within 30 s. A member now leaves the view it
    waits for only when q members were ready for it."""
    net = parse_net("delay=0.001-0.005,loss=0.05,gst=2,partition=0.6-1.29:3|0+1+2", 4)
    result = simulate(SimConfig(n=4, seed=390, messages=40, variant="ub", net=net, max_time=30,
                                faults=(parse_fault("0=crash:at=0.984", 4),)))
    assert result.ok and result.complete


def test_regression_old_view_votes_never_make_a_new_view_certificate() -> None:
    """Seed 241 of the UUB swarm sweep: a slot committed through a catch-up proof kept its
    view-0 ECHOs; in view 1 they were counted into a 'view 1' prepared certificate whose
    signatures did not match, which made this member's VIEW-CHANGEs invalid and stalled the
    next view change. Votes are now cleared for every slot when a view is installed."""
    result = simulate(SimConfig(n=4, seed=241, messages=40, variant="uub", max_time=30,
                                faults=(parse_fault("1=mutate:p=0.454", 4),),
                                net=parse_net("delay=0.001-0.005,loss=0.05,gst=1", 4)))
    assert result.ok and result.complete
    assert sum(s.dropped.get("viewchange-invalid", 0) for s in result.statistics
               if s.member != 1) == 0


def test_regression_a_byzantine_core_tripping_its_invariants_only_stops_that_member() -> None:
    """Seed 376 of the moving-sequencer swarm sweep at n=7: the mutating member's own core saw
    its future batches ordered under mutated numbers and tripped an assertion, which aborted
    the whole simulation. A Byzantine member's core failing now just stops that member."""
    n = 7
    faults = (parse_fault("1=equivocate:p=0.246", n), parse_fault("2=mutate:p=0.495", n))
    result = simulate(SimConfig(n=n, seed=376, messages=40, variant="moving", max_time=30,
                                faults=faults, net=parse_net("delay=0.001-0.02", n)))
    assert result.ok and result.complete


# -- the table ------------------------------------------------------------------------------


def test_each_variant_is_a_proposer_policy_and_a_dissemination() -> None:
    assert variants.VARIANTS == ("bb", "ub", "uub", "moving")
    table = {name: (variant(name).proposer, variant(name).direct) for name in variants.VARIANTS}
    assert table == {
        "bb": (FixedProposer, None),
        "ub": (FixedProposer, DirectDissemination),
        "uub": (GrantingProposer, GrantedDissemination),
        "moving": (MovingProposer, None),
    }
    assert all(variant(name).name == name and variant(name).summary
               for name in variants.VARIANTS)


@pytest.mark.parametrize("name", ["fast", "", "BB", "baseline"])
def test_an_unknown_variant_is_refused_naming_it_and_the_choices(name: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown variant {name!r}; choose one of bb, ub"):
        variant(name)


def test_an_unknown_reliable_broadcast_is_refused() -> None:
    check_brb("bracha")
    check_brb("echo")
    with pytest.raises(ConfigError, match="unknown BRB kind 'gossip'"):
        check_brb("gossip")


def _dissemination(name: str, brb: str) -> object:
    keys = Keys(4)
    return variant(name).dissemination(
        brb, member=1, quorums=Quorums.for_cluster(4), settings=Settings(), outbox=Outbox(),
        verify=keys.verifier().verify, leader=lambda: 0, ordered_low=lambda origin: 0,
        sign=lambda send: keys.sign(1, send))


def test_the_dissemination_of_each_variant() -> None:
    assert type(_dissemination("bb", "bracha")) is BrachaBroadcast
    assert type(_dissemination("bb", "echo")) is SignedEchoBroadcast
    assert type(_dissemination("moving", "echo")) is SignedEchoBroadcast
    assert type(_dissemination("ub", "bracha")) is DirectDissemination
    assert type(_dissemination("uub", "bracha")) is GrantedDissemination
    with pytest.raises(ConfigError, match="gossip"):
        _dissemination("bb", "gossip")
    assert type(_dissemination("ub", "gossip")) is DirectDissemination  # UB ignores brb
