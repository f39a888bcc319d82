"""Sweeps: rows, failures and their replay, shrinking, and the command-line glue."""

from __future__ import annotations

import argparse
import shlex

import attrs
import pytest

from btob import ConfigError
from btob.core.settings import Settings
from btob.faults import parse_fault, parse_net
from btob.faults._mix import CLIENT_MEMBER_BEHAVIOURS, Mix, client_mix, swarm_mix
from btob.sim.checker import Violation
from btob.sim.simulator import SimConfig, SimResult, simulate
from btob.sim.sweep import (
    SweepRow,
    _cases,
    add_sweep_arguments,
    format_sweep,
    run_sweep_command,
    shrink_case,
    sweep,
)
from btob.testing.breaks import broken


def test_small_sweep_passes_with_a_row_per_mix() -> None:
    calls: list[tuple[int, int]] = []
    outcome = sweep(seeds=range(5), sizes=[4], brbs=["bracha"],
                    mixes=["none", "crash-sequencer"], messages=20, max_time=10,
                    progress=lambda done, total: calls.append((done, total)))
    assert outcome.ok and outcome.failure is None and outcome.failure_kind is None
    assert [(r.mix, r.n, r.brb, r.runs) for r in outcome.rows] == [
        ("none", 4, "bracha", 5), ("crash-sequencer", 4, "bracha", 5)]
    assert all(r.violations == r.incomplete == 0 for r in outcome.rows)
    assert calls == [(i, 10) for i in range(1, 11)]
    text = format_sweep(outcome)
    assert "sweep: PASS (10 runs)" in text
    assert "crash-sequencer" in text and "view changes" in text


def test_rows_count_view_changes_and_evidence() -> None:
    outcome = sweep(seeds=[1, 2], sizes=[4], brbs=["echo"], mixes=["silent-sequencer"],
                    messages=10, max_time=10)
    [row] = outcome.rows
    assert (row.mix, row.brb, row.runs) == ("silent-sequencer", "echo", 2)
    assert row.view_changes >= 2  # a silent first sequencer is always replaced
    assert 0 <= row.evidence <= 2 and row.wall_s > 0


def test_incomplete_run_fails_stops_and_replays() -> None:
    outcome = sweep(seeds=range(5), sizes=[4], brbs=["bracha"], mixes=["none"],
                    messages=50, max_time=0.01)
    assert not outcome.ok
    assert outcome.failure_kind == "incomplete"
    assert outcome.failure is not None and not outcome.failure.complete
    assert outcome.failure.config.seed == 0
    assert outcome.runs == 1  # stopped at the first failure
    assert outcome.replay is not None and outcome.replay.startswith("btob sim")
    words = shlex.split(outcome.replay)
    assert words[words.index("--seed") + 1] == "0"
    assert words[words.index("--max-time") + 1] == "0.01"
    assert "--require-complete" in words
    assert outcome.shrunk is None
    text = format_sweep(outcome)
    assert "FAIL (incomplete)" in text and outcome.replay in text and "PASS" not in text


def test_keep_going_and_allow_incomplete() -> None:
    kept = sweep(seeds=range(3), sizes=[4], brbs=["bracha"], mixes=["none"], messages=50,
                 max_time=0.01, stop_on_failure=False)
    assert kept.runs == 3 and kept.rows[0].incomplete == 3
    assert kept.failure is not None and kept.failure.config.seed == 0
    allowed = sweep(seeds=range(3), sizes=[4], brbs=["bracha"], mixes=["none"], messages=50,
                    max_time=0.01, require_complete=False)
    assert allowed.ok and allowed.rows[0].incomplete == 3


def _rigged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed 1 comes out incomplete, seed 3 with a violation."""

    def fake(config: SimConfig, **kwargs: object) -> SimResult:
        result = simulate(config)
        if config.seed == 1:
            return attrs.evolve(result, complete=False)
        if config.seed == 3:
            bad = Violation("prefix-order", (1, 2), 7, f"rigged violation {config.seed}")
            report = attrs.evolve(result.report, ok=False, violations=(bad,),
                                  violation_count=1)
            return attrs.evolve(result, report=report)
        return result

    monkeypatch.setattr("btob.sim.sweep.simulate", fake)


def test_a_violation_outranks_an_earlier_incomplete_run(monkeypatch: pytest.MonkeyPatch) -> None:
    _rigged(monkeypatch)
    kwargs = dict(seeds=range(5), sizes=[4], brbs=["bracha"], mixes=["none"], messages=8,
                  max_time=10.0)
    first = sweep(**kwargs)  # type: ignore[arg-type]
    assert (first.failure_kind, first.runs) == ("incomplete", 2)
    assert first.failure is not None and first.failure.config.seed == 1
    everything = sweep(stop_on_failure=False, **kwargs)  # type: ignore[arg-type]
    assert (everything.failure_kind, everything.runs) == ("violation", 5)
    assert everything.failure is not None and everything.failure.config.seed == 3
    assert everything.rows[0].violations == 1 and everything.rows[0].incomplete == 1
    text = format_sweep(everything)
    assert "FAIL (violation)" in text and "rigged violation 3" in text
    assert "--require-complete" not in (everything.replay or "")


def test_bad_mix_fails_before_any_run() -> None:
    calls: list[int] = []
    with pytest.raises(ConfigError, match="partition"):
        sweep(seeds=[0], sizes=[4, 3], brbs=["bracha"], mixes=["none", "partition"],
              messages=5, progress=lambda done, total: calls.append(done))
    assert calls == []


def test_swarm_and_mix_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[SimConfig] = []

    def record(config: SimConfig, **kwargs: object) -> SimResult:
        seen.append(config)
        return simulate(attrs.evolve(config, faults=(), net=parse_net("", config.n)))

    monkeypatch.setattr("btob.sim.sweep.simulate", record)
    custom = Mix("custom", ("1=crash:at=0.01",), "dup=0.1")
    outcome = sweep(seeds=[5, 6, 7], sizes=[4], brbs=["bracha"], mixes=["swarm", custom],
                    messages=4, max_time=5)
    assert [(r.mix, r.runs) for r in outcome.rows] == [("swarm", 3), ("custom", 3)]
    for config in seen[:3]:
        assert (config.faults, config.net) == swarm_mix(config.seed, 4).resolve(4)
    assert all(c.faults == (parse_fault("1=crash:at=0.01", 4),) for c in seen[3:])
    assert all(c.net.dup == 0.1 for c in seen[3:])
    assert all(c.messages == 4 and c.max_time == 5 for c in seen)


def test_shrink_case_keeps_the_failure_within_budget() -> None:
    config = SimConfig(
        n=7, messages=50, max_time=30,
        faults=(parse_fault("1=crash:at=0.1", 7), parse_fault("3=silent", 7)),
        net=parse_net("loss=0.05,dup=0.02,gst=1,jitter=0.01,partition=0.1-0.5:2", 7),
    )
    calls: list[SimConfig] = []

    def fails(c: SimConfig) -> bool:
        calls.append(c)
        return c.messages >= 3 and len(c.faults) >= 1

    shrunk = shrink_case(config, fails)
    assert 3 <= shrunk.messages <= 5
    assert len(shrunk.faults) == 1
    assert (shrunk.net.loss, shrunk.net.dup, shrunk.net.pre_gst_delay) == (0, 0, 0)
    assert shrunk.net.partitions == ()
    assert shrunk.max_time == 1.0
    assert fails(shrunk)
    assert len(calls) <= 40 + 1

    calls.clear()
    tight = shrink_case(config, fails, budget=3)
    assert len(calls) == 3 and fails(tight)
    assert shrink_case(config, lambda c: False) == config  # nothing smaller fails


def test_shrink_case_makes_fault_and_adversary_parameters_plainer() -> None:
    """Which faults, and also how: a probability becomes a certainty, a start time zero, an
    amount its default and then half; a coordinated strategy's parameters likewise."""
    config = SimConfig(n=4, messages=8, max_time=4,
                       faults=(parse_fault("1=omission:p=0.3,dir=send", 4),
                               parse_fault("2=pause:at=0.4,for=3", 4)))

    def fails(c: SimConfig) -> bool:  # both faults matter, and pause must last >= 0.5 s
        return len(c.faults) == 2 and float(c.faults[1].params["for"]) >= 0.5

    shrunk = shrink_case(config, fails)
    assert shrunk.faults[0].params["p"] == 1.0 and shrunk.faults[0].params["dir"] == "both"
    assert shrunk.faults[1].params["at"] == 0.0 and shrunk.faults[1].params["for"] == 0.5
    assert fails(shrunk)

    from btob.faults import parse_adversary

    edge = SimConfig(n=4, messages=8, adversary=parse_adversary("edge:slot=5,until=2"))
    plain = shrink_case(edge, lambda c: c.adversary is not None
                        and c.adversary.value("until") >= 1)
    assert plain.adversary is not None
    assert plain.adversary.value("slot") == 0 and plain.adversary.value("until") == 1.5


def test_sweep_shrinks_an_incomplete_failure() -> None:
    outcome = sweep(seeds=[0], sizes=[4], brbs=["bracha"], mixes=["crash-member"],
                    messages=50, max_time=0.01, shrink=True)
    assert outcome.failure_kind == "incomplete"
    assert outcome.shrunk is not None
    assert outcome.shrunk.messages == 1 and outcome.shrunk.faults == ()
    assert "shrunk    btob sim" in format_sweep(outcome)


def test_incomplete_shrinking_keeps_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def stuck_with_faults(config: SimConfig, **kwargs: object) -> SimResult:
        result = simulate(config)
        return attrs.evolve(result, complete=False) if config.faults else result

    monkeypatch.setattr("btob.sim.sweep.simulate", stuck_with_faults)
    outcome = sweep(seeds=[0], sizes=[4], brbs=["bracha"], mixes=["crash-member"],
                    messages=20, max_time=8, shrink=True)
    assert outcome.failure_kind == "incomplete" and outcome.shrunk is not None
    assert outcome.shrunk.messages == 1 and len(outcome.shrunk.faults) == 1
    assert outcome.shrunk.max_time == 8  # a shorter limit would keep any run incomplete


def test_evidence_counts_runs_where_an_honest_member_convicts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def convict(config: SimConfig, **kwargs: object) -> SimResult:
        result = simulate(config)
        accuser = 0 if config.seed == 1 else 3  # member 3 is silent: its word does not count
        stats = tuple(attrs.evolve(s, evidence=(3,)) if s.member == accuser else s
                      for s in result.statistics)
        return attrs.evolve(result, statistics=stats)

    monkeypatch.setattr("btob.sim.sweep.simulate", convict)
    silent = Mix("silent-3", ("3=silent",))
    outcome = sweep(seeds=[1, 2, 3], sizes=[4], brbs=["bracha"], mixes=[silent],
                    messages=5, max_time=10)
    assert [(r.runs, r.evidence) for r in outcome.rows] == [(3, 1)]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="btob sweep")
    add_sweep_arguments(parser)
    return parser.parse_args(argv)


def test_arguments_and_defaults() -> None:
    args = _parse([])
    assert (args.seeds, args.first_seed, args.n, args.brb, args.mix) == (
        100, 0, "4", "bracha", None)
    assert (args.messages, args.max_time) == (50, 30.0)
    assert not (args.keep_going or args.allow_incomplete or args.shrink)
    args = _parse(["--mix", "none", "--mix", "lossy", "--keep-going", "--shrink"])
    assert args.mix == ["none", "lossy"] and args.keep_going and args.shrink


def test_run_sweep_command_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_sweep_command(_parse(["--seeds", "3", "--mix", "none"])) == 0
    out = capsys.readouterr().out
    assert "sweep: PASS (3 runs)" in out
    assert out.splitlines()[0].split()[:3] == ["mix", "n", "brb"]
    assert run_sweep_command(_parse(["--seeds", "2", "--first-seed", "4",
                                     "--max-time", "0.01", "--keep-going"])) == 1
    out = capsys.readouterr().out
    assert "FAIL (incomplete)" in out and "--seed 4" in out
    assert run_sweep_command(_parse(["--seeds", "2", "--max-time", "0.01",
                                     "--allow-incomplete", "--n", "4", "--brb", "echo"])) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n", "4,x"], "--n"),
        (["--n", ""], "--n"),
        (["--brb", "nope"], "--brb"),
        (["--seeds", "0"], "--seeds"),
        (["--max-time", "0"], "--max-time"),
        (["--mix", "no-such-mix"], "no-such-mix"),
        (["--mix", "swarm", "--n", "0"], "at least 1 member"),
    ],
)
def test_run_sweep_command_bad_input(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_sweep_command(_parse(["--seeds", "1", *argv]))


def test_sweep_row_is_a_value() -> None:
    row = SweepRow("none", 4, "bracha", 1, 0, 0, 0, 0, 0.1)
    assert row == SweepRow("none", 4, "bracha", 1, 0, 0, 0, 0, 0.1)


def test_a_sweep_with_restarts_restarts_a_member_in_its_runs_and_passes() -> None:
    from btob.core.settings import Settings
    from btob.sim.simulator import simulate
    from btob.sim.sweep import _cases

    cases = _cases(range(8), [4], ["bracha"], ["swarm", "none"], messages=60, max_time=30.0,
                   settings=Settings(), restarts=True)
    assert all(len(case.config.restarts) == 1 for case in cases)
    results = [simulate(case.config) for case in cases]
    restarted = sum(1 for r in results if r.restarted)
    assert restarted >= 0.75 * len(results), restarted  # the drawn steps lie inside the runs
    assert any(case.config.restarts[0].wiped for case in cases)  # (only where no faults)
    assert all(not (case.config.restarts[0].wiped and case.config.faults) for case in cases)
    assert all(r.ok and not r.redelivery_mismatches for r in results)
    outcome = sweep(seeds=range(3), sizes=[4], brbs=["bracha"], mixes=["swarm"],
                    messages=40, restarts=True)
    assert outcome.ok


def test_settings_other_than_the_defaults_are_in_the_replay_command() -> None:
    """A sweep case with a mix's settings replays with them: same config, same run."""
    from btob import SimConfig
    from btob.cli.main import _sim_config, build_parser
    from btob.core.settings import Settings
    from btob.sim.simulator import replay_command

    config = SimConfig(seed=3, settings=Settings(checkpoint_interval=4,
                                                 view_change_timeout_s=0.5))
    command = replay_command(config)
    assert command.endswith("--setting checkpoint_interval=4 --setting view_change_timeout_s=0.5")
    assert "--setting" not in replay_command(SimConfig(seed=3))
    args = build_parser().parse_args(command.split()[1:])
    assert _sim_config(args) == config


def test_a_restart_round_trips_through_its_text_and_the_replay_command() -> None:
    from btob import ConfigError, SimConfig
    from btob.sim.simulator import Restart, replay_command

    for restart in (Restart(1, 200), Restart(0, 5, 1.25, True, wiped=True)):
        assert Restart.parse(str(restart)) == restart
    config = SimConfig(restarts=(Restart(2, 9, 0.5, True),))
    assert "--restart 2@9/after-commit/0.5s" in replay_command(config)
    for bad in ("1", "x@3", "1@0", "1@3/sometimes", "1@3/-1s"):
        with pytest.raises(ConfigError, match="--restart"):
            Restart.parse(bad)


def test_each_variant_and_brb_draws_its_own_stretch_of_attacks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from btob.core.settings import Settings
    from btob.faults import ADVERSARY, adversary_mix

    seen: list[SimConfig] = []

    def record(config: SimConfig, **kwargs: object) -> SimResult:
        seen.append(config)
        return simulate(attrs.evolve(config, faults=(), adversary=None))

    monkeypatch.setattr("btob.sim.sweep.simulate", record)
    sweep(seeds=[0, 1, 2], sizes=[4], brbs=["bracha", "echo"], mixes=[ADVERSARY], messages=4,
          max_time=5, variants=["bb", "ub"])
    assert [(c.variant, c.brb, c.seed) for c in seen] == [
        (v, b, s) for v in ("bb", "ub") for b in ("bracha", "echo") for s in (0, 1, 2)]
    drawn = []
    for k, config in enumerate(seen):
        mix = adversary_mix(k, 4)  # each (variant, BRB) starts where the one before ends
        assert (config.faults, config.adversary) == (mix.resolve(4)[0], mix.adversary_spec())
        assert config.settings == mix.settings(Settings())
        drawn.append((mix.adversary or str(mix.faults[0]).split("=", 1)[1]).split(":")[0])
    assert len(set(drawn)) == 12  # twelve different attacks, not three or six


def test_a_slice_of_the_adversary_sweep_passes_on_the_real_protocol() -> None:
    """CI's slice of the adversary sweep: every attack once at n=4 (each variant and BRB in
    turn), and a stretch at n=7; no violation, every run complete."""
    from btob.faults import ADVERSARY, BEHAVIOURS, STRATEGIES

    attacks = len(STRATEGIES) + sum(b.byzantine and b.swarm for b in BEHAVIOURS.values())
    runs = 0
    for k, (variant, brb) in enumerate([("bb", "bracha"), ("ub", "echo"), ("uub", "bracha"),
                                        ("moving", "echo")]):
        seeds = range(k, attacks, 4)  # together, every attack of the first round once
        outcome = sweep(seeds=seeds, sizes=[4], brbs=[brb], mixes=[ADVERSARY], messages=50,
                        max_time=30, variants=[variant])
        assert outcome.ok, outcome.replay
        runs += outcome.runs
    outcome = sweep(seeds=range(6), sizes=[7], brbs=["bracha"], mixes=[ADVERSARY],
                    messages=50, max_time=30, variants=["ub"])
    assert outcome.ok, outcome.replay
    assert runs + outcome.runs == attacks + 6


def test_a_quick_sweep_with_clients_and_their_attacks_passes() -> None:
    seeds = range(16)
    outcome = sweep(seeds=seeds, sizes=[4], brbs=["bracha"], mixes=["clients"], messages=20,
                    max_time=30)
    assert outcome.ok and outcome.runs == 16, outcome.replay
    drawn = [client_mix(seed, 4) for seed in seeds]
    members = {f.split("=")[1] for mix in drawn for f in mix.faults}
    clients = {f.split("=")[1] for mix in drawn for f in mix.client_faults}
    assert members == set(CLIENT_MEMBER_BEHAVIOURS)  # each attack came up
    assert clients == {"equivocate", "replay", "flood", "garbage"}


def test_a_sweep_gives_every_run_its_clients_and_finds_a_broken_client_rule() -> None:
    cases = _cases([0, 1], [4], ["bracha"], ["none"], messages=10, max_time=10,
                   settings=Settings(), clients=3)
    assert [c.config.clients for c in cases] == [3, 3]
    outcome = sweep(seeds=range(10), sizes=[4], brbs=["bracha"], mixes=["clients"],
                    messages=20, max_time=30, member_factory=broken("client-duplicates"))
    assert not outcome.ok and outcome.failure_kind == "violation"
    assert outcome.replay is not None and "--clients 4" in outcome.replay


def test_the_grid_covers_each_vote_mode_the_sweep_names() -> None:
    linear_mix = Mix("linear-mix", setting=("votes=linear", "checkpoint_interval=8"))
    cases = _cases(range(2), [4], ["bracha", "echo"], ["none", linear_mix], messages=5,
                   max_time=5.0, settings=Settings(), votes=["all", "linear"])
    grid = [(c.mix, c.config.votes, c.config.brb, c.config.seed) for c in cases]
    assert grid == [(mix, votes, brb, seed) for mix in ("none", "linear-mix")
                    for votes in ("all", "linear") for brb in ("bracha", "echo")
                    for seed in (0, 1)]
    assert all(c.config.settings.votes == c.config.votes for c in cases)
    # the sweep's mode wins over the mix's, and the mix's other settings stay
    assert all(c.config.settings.checkpoint_interval == 8 for c in cases if c.mix != "none")
    # without modes of its own a sweep runs each mix in the mix's mode
    own = _cases([0], [4], ["bracha"], ["none", linear_mix], messages=5, max_time=5.0,
                 settings=Settings())
    assert [(c.mix, c.config.votes) for c in own] == [("none", "all"), ("linear-mix", "linear")]
    with pytest.raises(ConfigError, match="setting votes must be one of all, linear"):
        _cases([0], [4], ["bracha"], ["none"], messages=5, max_time=5.0,
               settings=Settings(), votes=["quadratic"])


def test_a_sweep_runs_its_members_in_each_mode_and_reports_a_row_per_mode() -> None:
    from btob.core.member import Member

    seen: list[str] = []

    def member(**kwargs: object) -> Member:
        built = Member(**kwargs)  # type: ignore[arg-type]
        seen.append(built.settings.votes)
        return built

    outcome = sweep(seeds=range(2), sizes=[4], brbs=["bracha"], mixes=["none"], messages=10,
                    max_time=10, votes=["all", "linear"], member_factory=member)
    assert outcome.ok
    assert [(r.mix, r.brb, r.votes, r.runs) for r in outcome.rows] == [
        ("none", "bracha", "all", 2), ("none", "bracha", "linear", 2)]
    assert seen == ["all"] * 8 + ["linear"] * 8  # 4 members in each of 2 runs per mode
    lines = format_sweep(outcome).splitlines()
    assert lines[0].split()[:4] == ["mix", "n", "brb", "votes"]
    assert lines[2].split()[:5] == ["none", "4", "bracha", "all", "2"]
    assert lines[3].split()[:5] == ["none", "4", "bracha", "linear", "2"]


def test_a_failing_run_names_its_vote_mode_and_replays_in_it() -> None:
    outcome = sweep(seeds=[3], sizes=[4], brbs=["bracha"], mixes=["none"], messages=50,
                    max_time=0.01, votes=["linear"])
    assert outcome.failure is not None and outcome.failure_kind == "incomplete"
    assert outcome.replay is not None
    words = shlex.split(outcome.replay)
    assert words[words.index("--votes") + 1] == "linear"
    assert "votes=" not in outcome.replay  # not also as a --setting
    text = format_sweep(outcome)
    assert "FAIL (incomplete) at n=4 brb=bracha votes=linear seed=3" in text
    assert f"replay    {outcome.replay}" in text


def test_the_sweep_command_takes_a_list_of_vote_modes(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _parse([]).votes is None
    assert run_sweep_command(_parse(["--seeds", "1", "--messages", "10", "--mix", "none",
                                     "--votes", "all, linear"])) == 0
    out = capsys.readouterr().out
    assert "sweep: PASS (2 runs)" in out
    assert [line.split()[3] for line in out.splitlines()[2:4]] == ["all", "linear"]
    for bad in ("quadratic", "", "all,all", "all,Linear"):
        with pytest.raises(ConfigError) as exc:
            run_sweep_command(_parse(["--seeds", "1", "--votes", bad]))
        assert str(exc.value) == f"--votes {bad!r}: choose from all, linear, each once"
