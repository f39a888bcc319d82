"""Systematic exploration: the family is complete and well formed, the real protocol passes
it, and it finds deliberate breaks on its own."""

from __future__ import annotations

import pytest

from btob.cli.main import main
from btob.faults import Mix
from btob.sim import explore as explore_module
from btob.sim import sweep as sweep_module
from btob.sim.explore import BEHAVIOURS, EXPLORE, explore_mixes, partitions
from btob.sim.sweep import sweep
from btob.testing.breaks import broken


def test_the_family_is_the_whole_product_and_every_scenario_resolves() -> None:
    mixes = explore_mixes(4)
    assert len(mixes) == 4 * len(BEHAVIOURS) * len(partitions(4)) ** 2 == 1536
    assert len(set(mixes)) == len(mixes)  # no scenario twice
    assert partitions(4) == ["", "0|1+2+3", "1|0+2+3", "2|0+1+3", "3|0+1+2", "0+1|2+3",
                             "0+2|1+3", "0+3|1+2"]
    for mix in mixes:
        faults, net = mix.resolve(4)
        assert len(faults) == 1 and all(p.end <= 0.06 + 1e-9 for p in net.partitions)
    members = {mix.faults[0].split("=")[0] for mix in mixes}
    assert members == {"0", "1", "2", "3"}
    assert {m.name for m in mixes} == {f"explore {b.split(':')[0]}" for b in BEHAVIOURS}
    assert explore_mixes(4) == mixes  # a fixed order
    assert len(explore_mixes(4, rounds=1)) == 4 * len(BEHAVIOURS) * 8
    assert len(explore_mixes(7, rounds=1)) == 7 * len(BEHAVIOURS) * 8  # whole, or one cut off
    with pytest.raises(ValueError):
        explore_mixes(4, rounds=0)


def test_a_crash_comes_at_the_round_where_the_network_changes() -> None:
    crashes = {m.net: m.faults[0] for m in explore_mixes(4) if "crash" in m.faults[0]
               and m.faults[0].startswith("1=")}
    assert crashes["partition=0-0.03:0|1+2+3"] == "1=crash:at=0.03"  # whole again in round 2
    assert crashes["partition=0-0.03:0|1+2+3,partition=0.03-0.06:0|1+2+3"] == "1=crash:at=0"


def test_the_real_protocol_passes_a_slice_of_the_exploration() -> None:
    outcome = sweep(seeds=[0], sizes=[4], brbs=["bracha"], messages=30, max_time=20,
                    mixes=explore_mixes(4)[::24])  # every behaviour and member, some layouts
    assert outcome.ok, outcome.replay
    assert outcome.runs == 64


@pytest.mark.parametrize(("name", "within"), [("deliver-before-commit", 1),
                                               ("quorum-one-short", 80)])
def test_the_exploration_finds_a_break_on_its_own(name: str, within: int) -> None:
    try:
        outcome = sweep(seeds=[0], sizes=[4], brbs=["bracha"], mixes=[EXPLORE], messages=30,
                        max_time=20, member_factory=broken(name))
    except AssertionError as exc:
        # The broken member trips one of its own invariants first (a member delivering
        # before commit diverges from the stable checkpoint): found too, with its replay.
        assert "replay: btob sim" in str(exc) and name == "deliver-before-commit", exc
        return
    assert not outcome.ok and outcome.runs <= within, outcome.runs


def test_btob_sweep_explore_says_how_many_scenarios(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    few = [Mix("explore twins", ("1=twins",)), Mix("explore crash", ("2=crash:at=0.03",))]

    def explore_few(n: int, *, rounds: int = 2, round_s: float = 0.03) -> list[Mix]:
        assert rounds == 3
        return few

    monkeypatch.setattr(sweep_module, "explore_mixes", explore_few)
    monkeypatch.setattr(explore_module, "explore_mixes", explore_few)
    code = main(["sweep", "--explore", "--rounds", "3", "--seeds", "1", "--messages", "10"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "explore: 2 scenarios x 1 seed(s) x 1 variant(s) x 1 vote mode(s) x 1 BRB(s)" in err
    assert "explore twins" in out and "explore crash" in out and "PASS (2 runs)" in out
    assert main(["sweep", "--explore", "--rounds", "0"]) == 2
    assert "--rounds 0: need at least one round" in capsys.readouterr().err
