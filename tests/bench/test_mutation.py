"""The mutation-testing script's own logic, without the tool: reading its results, scoring,
the copy it works in and the report (which keeps the history and the judgements)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from btob.bench import mutation

RESULTS = """\
    btob.core.quorum.x_default_faults__mutmut_1: survived
    btob.core.quorum.x_default_faults__mutmut_2: killed
    btob.core.quorum.x\u01c1Quorums\u01c1for_cluster__mutmut_10: no tests
    btob.core.quorum.x\u01c1Quorums\u01c1for_cluster__mutmut_9: survived
    btob.core.quorum.x\u01c1Quorums\u01c1for_cluster__mutmut_3: timeout
    btob.core.quorum.x\u01c1Quorums\u01c1for_cluster__mutmut_4: caught by type check
"""
TARGET = mutation.Target("btob/core/quorum.py", ("tests/core/test_quorum.py",))


def test_results_are_read_line_by_line_and_noise_is_skipped() -> None:
    statuses = mutation.parse_results("\u280b Generating mutants\n" + RESULTS + "\n")
    assert len(statuses) == 6
    assert statuses["btob.core.quorum.x_default_faults__mutmut_1"] == "survived"
    assert statuses["btob.core.quorum.x\u01c1Quorums\u01c1for_cluster__mutmut_4"] \
        == "caught by type check"


def test_the_score_counts_what_a_test_noticed_over_all_mutants() -> None:
    counts = mutation.tally(mutation.parse_results(RESULTS))
    assert (counts["killed"], counts["survived"], counts["no tests"], counts["absent"]) \
        == (1, 2, 1, 0)
    assert counts.total == 6
    assert counts.detected == 3  # killed, timeout, caught by type check
    assert counts.score == pytest.approx(50.0)
    assert mutation.tally({}).score == 100.0


def test_the_undetected_mutants_are_listed_by_function_then_number() -> None:
    missed = mutation.undetected(mutation.parse_results(RESULTS))
    assert [name.rsplit(".", 1)[1] for name in missed] == [
        "x_default_faults__mutmut_1",
        "x\u01c1Quorums\u01c1for_cluster__mutmut_9",
        "x\u01c1Quorums\u01c1for_cluster__mutmut_10",  # 9 before 10, not as strings sort
    ]


def test_the_tool_is_told_to_mutate_one_module_with_its_tests(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for folder in ("btob/core", "tests/core", "btob/__pycache__"):
        (root / folder).mkdir(parents=True)
    (root / "btob/core/quorum.py").write_text("X = 1\n")
    (root / "btob/__pycache__/junk.pyc").write_bytes(b"")
    (root / "tests/core/test_quorum.py").write_text("")
    (root / "pyproject.toml").write_text('[project]\nname = "btob"\n')
    work = tmp_path / "work"
    (work / "stale").mkdir(parents=True)
    mutation.prepare(root, work, TARGET)
    assert (work / "btob/core/quorum.py").read_text() == "X = 1\n"
    assert (work / "tests/core/test_quorum.py").exists()
    assert not (work / "stale").exists() and not (work / "btob/__pycache__").exists()
    settings = tomllib.loads((work / "pyproject.toml").read_text())
    assert settings["project"]["name"] == "btob"
    tool = settings["tool"]["mutmut"]
    assert tool["only_mutate"] == ["btob/core/quorum.py"]
    assert tool["pytest_add_cli_args_test_selection"] == ["tests/core/test_quorum.py"]
    assert "btob.bench.mutation_plugin" in tool["pytest_add_cli_args"]
    (root / "pyproject.toml").write_text("[tool.mutmut]\n")
    with pytest.raises(SystemExit, match=r"\[tool\.mutmut\]"):
        mutation.prepare(root, work, TARGET)


def _render(date: str, previous: str = "") -> str:
    diffs = {"btob.core.quorum.x_default_faults__mutmut_1": "-    if n < 1:\n+    if n <= 1:\n"}
    return mutation.render_report(target=TARGET, statuses=mutation.parse_results(RESULTS),
                                  diffs=diffs, version="9.9", date=date, minutes=0.5,
                                  load=(1.0, 0.5, 0.25), previous=previous)


def test_the_report_keeps_the_history_and_the_judgements() -> None:
    first = _render("2030-01-01T00:00")
    assert "| score (detected / total) | 50.0 % (3/6) |" in first
    assert "+    if n <= 1:" in first and "(no diff)" in first
    assert "x_default_faults__mutmut_2" not in first  # killed: not listed
    assert first.rstrip().endswith("say why it is equivalent.")
    judged = first.replace("None yet: for each survivor", "mutmut_1: equivalent, because")
    second = _render("2030-02-02T00:00", previous=judged)
    history = second.split(mutation.HISTORY, 1)[1].split("## Survivors", 1)[0]
    assert [line[:19] for line in history.splitlines() if line.startswith("| 20")] \
        == ["| 2030-01-01T00:00 ", "| 2030-02-02T00:00 "]
    assert second.splitlines().count(mutation.JUDGEMENTS) == 1
    assert "mutmut_1: equivalent, because" in second


def test_every_module_and_its_tests_exist() -> None:
    for target in mutation.MODULES.values():
        assert (mutation.ROOT / target.path).is_file()
        assert all((mutation.ROOT / test).is_file() for test in target.tests)


def test_unknown_modules_are_refused_and_the_list_needs_no_tool(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        mutation.main(["nonsense"])
    assert mutation.main(["--list"]) == 0
    assert "btob/core/quorum.py" in capsys.readouterr().out
