"""The fault catalogue: every behaviour at the first sequencer and at another member, the
evidence equivocators leave, network faults, and deliberate protocol breaks the harness must
catch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from btob import Member, SimConfig, simulate
from btob.core.wire import OrderEcho, OrderReady
from btob.faults import BEHAVIOURS, Mix, parse_fault, parse_net
from btob.sim.sweep import sweep
from btob.testing.breaks import broken

from ..helpers import Keys, Router

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


def test_network_cut_isolate_and_clog() -> None:
    n = 4
    net = parse_net("cut=0-0.5:0>1+2+3,isolate=0.6-1:3,clog=0-1:1>2:0.2", n)
    assert net.cut(0, 1, 0.1) and not net.cut(1, 0, 0.1)  # one way
    assert net.cut(3, 0, 0.7) and net.cut(0, 3, 0.7) and not net.cut(0, 1, 0.7)
    import random

    rng = random.Random(1)
    assert net.sample_delay(rng, 0.5, 1, 2) >= 0.2 > net.sample_delay(rng, 0.5, 2, 1)
    assert "cut=0-0.5:0>1+2+3" in net.describe() and "clog=0-1:1>2:0.2" in net.describe()
    result = simulate(SimConfig(n=n, seed=2, messages=100, rate=100.0, net=net))
    assert result.ok and result.complete


def _finds_a_failure(member_factory: Callable[..., Member], spec: str, seeds: int = 40) -> bool:
    """True if the sweep, over ``seeds`` seeds, finds a property violation or trips one of
    the cores' own invariants (which crash loudly by design, naming the replay)."""
    mix = Mix("break", (spec,))
    try:
        outcome = sweep(seeds=range(seeds), sizes=[4], brbs=["bracha"], mixes=[mix],
                        messages=60, max_time=20, member_factory=member_factory)
    except AssertionError as exc:
        assert "replay: btob sim" in str(exc)
        return True
    if outcome.ok:
        return False
    assert outcome.failure_kind == "violation" and outcome.replay is not None
    return True


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("quorum-one-short", "0=equivocate"),
        ("deliver-before-commit", "0=equivocate"),
        ("skip-signature-checks", "2=forge"),
    ],
)
def test_deliberate_breaks_are_caught(name: str, spec: str) -> None:
    assert _finds_a_failure(broken(name), spec)
    assert not _finds_a_failure(Member, spec, seeds=10)  # the real protocol holds


def test_ready_amplification_is_caught_by_the_prepared_before_ready_invariant() -> None:
    """Amplified READYs only endanger the view change, which a random sweep rarely lines up;
    the invariant it breaks - a READY only with a prepared certificate - is checked here."""

    def readies_without_prepare(member_factory: Callable[..., Member]) -> int:
        keys = Keys(4)
        router = Router(keys, member_factory=member_factory)
        router.allow = lambda src, dst, msg: not (isinstance(msg, OrderEcho)
                                                  and not isinstance(msg, OrderReady)
                                                  and dst == 3)
        sent: list[int] = []
        original = router.allow

        def watch(src: int, dst: int, msg: object) -> bool:
            if src == 3 and isinstance(msg, OrderReady):
                sent.append(dst)
            return original(src, dst, msg)  # type: ignore[arg-type]

        router.allow = watch  # type: ignore[assignment]
        router.members[1].submit(b"x", 0.0)
        router.pump()
        return len(sent)  # member 3 never saw an ordering ECHO, so it holds no certificate

    assert readies_without_prepare(Member) == 0
    assert readies_without_prepare(broken("ready-amplification")) > 0


def test_unknown_break_is_refused() -> None:
    from btob import ConfigError

    with pytest.raises(ConfigError, match="make-it-fast"):
        broken("make-it-fast")
