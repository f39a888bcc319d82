"""The planted-bug script's own logic, without running sweeps: reading the sweep's and the
tests' output, the patches' headers and the report."""

from __future__ import annotations

import subprocess
from pathlib import Path

from btob.bench import planted

FAIL = """\
mix                        n brb       runs violations incomplete view changes evidence  seconds
------------------------------------------------------------------------------------------------
adversary                  4 bracha      25          0          0            3        2     4.10
adversary [ub]             4 bracha       7          1          0            1        1     1.20
sweep: FAIL (violation) at n=4 brb=bracha seed=6 after 32 runs
  VIOLATION agreement: member 1 delivered a different payload at index 3
replay    btob sim --n 4 --seed 6 ...
"""
INCOMPLETE = ("sweep: FAIL (incomplete) at n=7 brb=bracha seed=3 after 104 runs\n"
              "  the run did not complete within 30 virtual seconds (stopped at 30.000 s)\n")
PASS = "adversary  4 bracha  25  0  0  3  2  4.10\nsweep: PASS (200 runs)\n"
TRACEBACK = """\
Traceback (most recent call last):
  File "btob/core/checkpoint.py", line 174, in adopt
    assert mine is None or mine == cert.digest, (
AssertionError: member 2's log diverges from a stable checkpoint at 10
"""


def test_a_failing_sweep_is_caught_after_its_runs_with_its_kind() -> None:
    outcome = planted.parse_sweep(FAIL, "", 1)
    assert outcome.caught and outcome.kind == "violation" and outcome.runs == 32
    assert outcome.detail == "n=4 brb=bracha seed=6"
    incomplete = planted.parse_sweep(INCOMPLETE, "", 1)
    assert incomplete.caught and incomplete.kind == "incomplete" and incomplete.runs == 104


def test_a_passing_sweep_is_not_caught() -> None:
    outcome = planted.parse_sweep(PASS, "", 0)
    assert not outcome.caught and outcome.kind == "pass" and outcome.runs == 200


def test_a_traceback_is_caught_as_a_crash_with_its_error() -> None:
    outcome = planted.parse_sweep("mix ...\n", TRACEBACK, 1)
    assert outcome.caught and outcome.kind == "crash" and outcome.runs is None
    assert outcome.detail.startswith("AssertionError: member 2's log diverges")
    killed = planted.parse_sweep("", "", -11)
    assert killed.caught and killed.kind == "crash" and killed.detail == "exit code -11"


def test_no_verdict_is_neither_caught_nor_a_pass() -> None:
    outcome = planted.parse_sweep("usage: btob ...\n", "", 1)
    assert not outcome.caught and outcome.kind == "error"


def test_pytest_verdicts() -> None:
    failed = planted.parse_tests("F\nFAILED tests/core/test_quorum.py::test_q - assert 2 == 3\n"
                                 "1 failed, 10 passed\n", 1)
    assert failed.caught and failed.detail.startswith("FAILED tests/core/test_quorum.py")
    assert not planted.parse_tests("100 passed\n", 0).caught
    usage = planted.parse_tests("no tests ran\n", 5)
    assert not usage.caught and usage.kind == "error"


def test_smoke_verdict() -> None:
    assert not planted.parse_smoke("...\nverdict   PASS\n", 0).caught
    assert planted.parse_smoke("...\nverdict   FAIL\n", 1).caught


def _patch(directory: Path, name: str, summary: str, rule: str) -> Path:
    path = directory / f"{name}.patch"
    path.write_text(f"Planted bug: {summary}\nRule broken: {rule}\n\n"
                    "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n"
                    "@@ -1 +1 @@\n-Rule broken: not a header\n+x = 2\n")
    return path


def test_patches_are_listed_in_order_with_their_rules_and_filtered(tmp_path: Path) -> None:
    _patch(tmp_path, "02-second", "second bug.", "rule two.")
    _patch(tmp_path, "01-first", "first bug.", "rule one.")
    (tmp_path / "notes.txt").write_text("not a patch")
    bugs = planted.list_patches(tmp_path)
    assert [b.name for b in bugs] == ["01-first", "02-second"]
    assert bugs[0].summary == "first bug." and bugs[0].rule == "rule one."
    assert [b.name for b in planted.list_patches(tmp_path, ["02"])] == ["02-second"]


def test_the_repository_patches_all_name_a_rule_and_apply() -> None:
    bugs = planted.list_patches()
    assert 12 <= len(bugs) <= 16
    for bug in bugs:
        assert bug.summary and bug.rule, bug.name
        subprocess.run(["git", "apply", "--check", str(bug.path)], cwd=planted.ROOT,
                       check=True, capture_output=True)


def test_report_rows_and_totals() -> None:
    bugs = [planted.Bug("01-a", Path("01-a.patch"), "bug a.", "rule a."),
            planted.Bug("02-b", Path("02-b.patch"), "bug b.", "rule b."),
            planted.Bug("03-c", Path("03-c.patch"), "bug c.", "rule c.")]
    smoke = {"caught": False, "kind": "pass", "runs": None, "detail": "", "seconds": 1.0}
    records = {
        "01-a": {"smoke": smoke, "sweep": {"caught": True, "kind": "violation", "runs": 12,
                                           "detail": "", "seconds": 3.0}},
        "02-b": {"smoke": smoke,
                 "sweep": {"caught": False, "kind": "pass", "runs": 200, "detail": "",
                           "seconds": 90.0},
                 "tests": {"caught": True, "kind": "failed", "runs": None,
                           "detail": "FAILED tests/core/test_x.py::t", "seconds": 9.0}},
    }
    header = {"date": "2026-12-01", "commit": "abc1234", "load": "1.00 1.00 1.00",
              "minutes": "5.0"}
    text = planted.render_report(bugs, records, header=header,
                                 judgements="## Judgements\n\nkept.\n")
    assert "| `01-a`: bug a. | rule a. | passes | yes, violation after 12 runs | not run |" in text
    assert "**no** (200 runs pass)" in text and "FAILED tests/core/test_x.py::t" in text
    assert "- sweep alone: 1 of 2 swept (3 bugs)" in text
    assert "- sweep + tests: 2 of 3 (tests run for 1)" in text
    assert text.rstrip().endswith("kept.")
