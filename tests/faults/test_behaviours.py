"""The fault catalogue: every behaviour at the first sequencer and at another member, and the
evidence equivocators leave."""

from __future__ import annotations

import pytest

from btob import SimConfig, simulate
from btob.faults import BEHAVIOURS, parse_fault

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


@pytest.mark.parametrize("behaviour", ["equivocate", "vote-equivocate", "twins"])
@pytest.mark.parametrize("member", [0, 2])
def test_every_equivocating_behaviour_is_proven(behaviour: str, member: int) -> None:
    result = simulate(SimConfig(n=4, seed=3, messages=100,
                                faults=(parse_fault(f"{member}={behaviour}", 4),)))
    assert result.ok and result.complete
    honest = [s for s in result.statistics if result.logs.run.members[s.member].honest]
    convicted = {m for s in honest for m in s.evidence}
    assert convicted == {member}  # the liar, and never an honest member


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
