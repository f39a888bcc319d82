"""Benchmark runs: matrix files and the presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from btob import ConfigError
from btob.bench import harness
from btob.bench.matrix import RunSpec, full_preset, load_matrix, quick_preset


def test_matrix_expands_lists_into_the_cartesian_product(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[defaults]\npayloads = 500\n\n[[run]]\nn = [4, 7]\n'
                    'variant = ["bb", "ub"]\nmix = ["none", "crash-sequencer"]\n\n'
                    '[[run]]\nname = "inline"\nmode = "sim"\nfaults = ["2=omission:p=0.2"]\n'
                    'net = "delay=0.001-0.002"\n')
    runs = load_matrix(path)
    assert len(runs) == 9
    assert {(r.n, r.variant, r.mix) for r in runs[:8]} == {
        (n, v, m) for n in (4, 7) for v in ("bb", "ub") for m in (None, "crash-sequencer")}
    assert all(r.payloads == 500 for r in runs)
    assert runs[8].label == "inline" and runs[8].fault_specs() == ("2=omission:p=0.2",)


@pytest.mark.parametrize(("text", "message"), [
    ("[[run]]\nspeed = 3\n", "unknown field"),
    ("[[run]]\nvariant = \"fast\"\n", "variant"),
    ("[[run]]\nmix = \"no-such-mix\"\n", "unknown fault mix"),
    ("[[run]]\nvariant = \"baseline\"\nmix = \"crash-sequencer\"\n", "fault-free only"),
    ("[[run]]\nmix = \"twins\"\nfaults = [\"0=crash\"]\n", "either mix or faults"),
    ("[[run]]\nn = 4\nfaults = [\"0=equivocate\", \"1=equivocate\"]\n", "Byzantine"),
    ("[[run]]\nn = [4, 4]\n", "named twice"),
    ("[[run]]\nn = []\n", "empty list"),
    ("[defaults]\nn = 4\n", r"at least one \[\[run\]\]"),
    ("[runs]\nn = 4\n", "unknown table"),
    ("[[run]\n", "matrix file"),
])
def test_bad_matrix_files_are_refused_with_the_reason(tmp_path: Path, text: str,
                                                      message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_matrix(path)


def test_missing_matrix_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_matrix(tmp_path / "nope.toml")
    assert harness.main(["--matrix", str(tmp_path / "nope.toml")]) == 2


def test_presets_cover_what_the_issue_asks_for() -> None:
    full = full_preset()
    tcp = [r for r in full if r.mode == "tcp"]
    assert {r.n for r in tcp} == {4, 7, 10, 16}
    assert {r.n for r in full if r.mode == "sim"} >= {4, 7, 10, 16}
    assert {r.variant for r in tcp} == {"bb", "ub", "uub", "moving", "baseline"}
    assert {r.brb for r in tcp} == {"bracha", "echo"}
    assert {r.payload_size for r in tcp} >= {100, 1000}
    assert len({r.batch_size for r in tcp}) >= 3 and any(r.batch_delay_ms for r in tcp)
    mixes = {r.mix for r in tcp}
    assert {None, "crash-sequencer", "equivocating-sequencer", "omission-member",
            "lossy-jittery", "twins", "f-faulty"} <= mixes
    assert len({r.label for r in full}) == len(full)
    quick = quick_preset()
    assert any(r.variant == "baseline" for r in quick) and any(r.mode == "sim" for r in quick)


def test_a_run_is_labelled_by_what_sets_it_apart() -> None:
    assert RunSpec().label == "tcp-bb-bracha-n4"
    assert RunSpec(variant="baseline").label == "tcp-baseline-n4"
    assert RunSpec(mode="sim", variant="ub", brb="echo", n=7, payload_size=1000, batch_size=16,
                   batch_delay_ms=2.0, rate=500.0, mix="crash-sequencer").label == (
        "sim-ub-echo-n7-1000B-batch16-delay2ms-500pps-crash-sequencer")
    assert RunSpec(faults=("2=silent",)).label == "tcp-bb-bracha-n4-faults"
    assert RunSpec(name="mine", faults=("2=silent",)).label == "mine"


def test_a_runs_baseline_keeps_its_workload_and_batching() -> None:
    run = RunSpec(n=7, payload_size=500, payloads=700, rate=50.0, batch_size=8,
                  batch_delay_ms=1.0, mix="crash-sequencer", brb="echo")
    base = run.baseline()
    assert (base.variant, base.mode, base.fault_free) == ("baseline", "tcp", True)
    assert (base.n, base.payload_size, base.payloads, base.rate, base.batch_size,
            base.batch_delay_ms) == (7, 500, 700, 50.0, 8, 1.0)


def test_mixes_resolve_to_their_faults_bench_mixes_first() -> None:
    from btob.bench.matrix import BENCH_MIXES, SEQUENCER_BEHAVIOURS, resolve_mix
    from btob.faults import PRESETS

    assert resolve_mix("omission-member").faults == ("2=omission:p=0.3",)
    assert resolve_mix("crash-sequencer") is PRESETS["crash-sequencer"]
    for behaviour in SEQUENCER_BEHAVIOURS:
        assert BENCH_MIXES[f"sequencer-{behaviour}"].faults == (f"0={behaviour}",)
    with pytest.raises(ConfigError, match="unknown fault mix 'nope'; known: lossy-jittery"):
        resolve_mix("nope")
    run = RunSpec(mix="lossy-jittery")
    assert run.fault_specs() == () and run.network().startswith("loss=")
    assert not run.fault_free and RunSpec().fault_free


@pytest.mark.parametrize(("fields", "message"), [
    ({"mode": "cloud"}, "mode 'cloud': choose one of tcp, sim"),
    ({"brb": "gossip"}, "brb 'gossip'"),
    ({"n": 0}, "n must be an integer >= 1"),
    ({"payload_size": 4}, "payload_size must be an integer >= 8"),
    ({"rate": -1.0}, "rate must be a number >= 0"),
    ({"repeat": True}, "repeat must be an integer >= 1"),
    ({"view_change_timeout_s": 0.001}, "view_change_timeout_s must be a number >= 0.01"),
    ({"faults": "0=crash"}, "faults must be a list of strings"),
    ({"n": 4, "payloads": 3}, r"payloads \(3\) must be at least n \(4\)"),
    ({"variant": "baseline", "mode": "sim"}, "the baseline runs in tcp mode only"),
    ({"faults": ("9=crash",)}, "member 9 is outside"),
])
def test_a_run_that_cannot_be_measured_is_refused(fields: dict[str, object],
                                                  message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("line", "message"), [
    ("rate = nan", "rate must be a number >= 0, got nan"),
    ("batch_delay_ms = nan", "batch_delay_ms must be a number >= 0"),
    ("n = 4.5", "n must be an integer >= 1, got 4.5"),
    ("payloads = 100.5", "payloads must be an integer >= 1"),
    ("batch_size = 16.0", "batch_size must be an integer >= 1"),
    ("repeat = 2.5", "repeat must be an integer >= 1"),
    ("payload_size = true", "payload_size must be an integer >= 8"),
    ("net = 5", "net must be a string, got 5"),
    ("name = 3", "name must be a string, got 3"),
    ("seed = \"x\"", "seed must be an integer, got 'x'"),
])
def test_a_field_of_the_wrong_type_is_refused_naming_the_file_and_run(
        tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "typed.toml"
    path.write_text(f"[[run]]\nmode = \"sim\"\npayloads = 200\n\n[[run]]\n{line}\n")
    with pytest.raises(ConfigError) as exc:
        load_matrix(path)
    assert f"matrix file {path}, run 2" in str(exc.value)
    assert message in str(exc.value)
