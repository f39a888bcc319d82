"""Benchmark runs: matrix files and the presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from btob import ConfigError
from btob.bench import harness
from btob.bench.matrix import full_preset, load_matrix, quick_preset


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
