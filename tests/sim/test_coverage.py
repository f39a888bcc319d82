"""Which checks the catalogue's behaviours exercise: measured, and held to what it is today.

Issue 13 asks for a behaviour that attacks every check. Until then the checks nothing
exercises are listed here: the test fails if one of them becomes exercised (take it off the
list) or if a check that was exercised no longer is (a behaviour or a check broke).
"""

from __future__ import annotations

import pytest

from btob.cli.main import main
from btob.core.checks import CHECKS
from btob.sim import coverage as coverage_module
from btob.sim.coverage import CheckCoverage, measure_coverage

NOT_YET_EXERCISED = frozenset({
    "brb-finished", "order-unexpected-kind", "snapshot-not-needed", "snapshot-too-large",
    "snapshot-undecodable", "transfer-all-peers-bad", "transfer-refused",
})
"""Checks no behaviour of the catalogue makes fire in the coverage runs (nor do fault-free
runs). None can be reached by one Byzantine member of four: the first two are shadowed by
earlier checks (the late-vote gate, the routing by kind); the rest need a certified root that
honest members did not compute, every peer failing verification, a transfer the member never
starts, or a member passing a snapshot by other means while it fetches it (docs/faults.md)."""


@pytest.fixture(scope="module")
def measured() -> tuple[CheckCoverage, ...]:
    return measure_coverage()


@pytest.fixture
def coverage(measured: tuple[CheckCoverage, ...]) -> dict[str, tuple[tuple[str, ...], bool]]:
    return {c.check: (c.behaviours, c.without_faults) for c in measured}


def test_every_check_is_measured_and_the_unexercised_ones_are_the_known_ones(
        coverage: dict[str, tuple[tuple[str, ...], bool]]) -> None:
    assert set(coverage) == set(CHECKS)
    nothing = {check for check, (behaviours, clean) in coverage.items()
               if not behaviours and not clean}
    assert nothing == NOT_YET_EXERCISED, (sorted(nothing - NOT_YET_EXERCISED),
                                          sorted(NOT_YET_EXERCISED - nothing))


def test_a_behaviour_exercises_the_check_it_exists_to_break(
        coverage: dict[str, tuple[tuple[str, ...], bool]]) -> None:
    # a forger's signatures fail; a member that floods beyond the windows is refused at each
    # window
    assert "forge" in coverage["bad-signature"][0]
    assert "garbage" in coverage["malformed-frame"][0]
    for window in ("order-beyond-window", "viewchange-beyond-window",
                   "checkpoint-beyond-window"):
        assert "flood" in coverage[window][0], window
    for check in ("brb-bad-origin", "brb-beyond-window", "brb-echo-not-for-me",
                  "brb-unexpected-kind", "ub-beyond-window", "ub-unexpected-kind",
                  "order-malformed"):
        assert "out-of-bounds" in coverage[check][0], check
    for check in ("viewchange-invalid", "newview-invalid", "newview-beyond-window"):
        assert "bad-viewchange" in coverage[check][0], check
    for check in ("proof-malformed", "proof-batch-mismatch", "proof-bad-certificate",
                  "segment-malformed", "segment-bad-certificate", "segment-not-needed"):
        assert "bad-catchup" in coverage[check][0], check
    assert "out-of-bounds" in coverage["malformed-body"][0]
    for check in ("chunk-unexpected", "chunkreq-not-held", "chunkreq-over-budget",
                  "chunk-duplicate", "chunk-bad-root", "snapshot-offer-not-needed",
                  "snapshot-offer-bad-certificate"):
        assert "bad-transfer" in coverage[check][0], check
    # against the laggard, which fetches a snapshot
    assert "bad-chunks" in coverage["chunk-bad-proof"][0]
    assert "stale-snapshot" in coverage["chunk-stale"][0]
    assert coverage["late-vote-unchecked"][1]  # an honest cluster's own redundancy


def test_the_command_prints_each_check_with_what_it_refuses(
        measured: tuple[CheckCoverage, ...], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[object] = []

    def measure(**options: object) -> tuple[CheckCoverage, ...]:
        calls.append(options)
        return measured  # what the runs gave once already

    monkeypatch.setattr(coverage_module, "measure_coverage", measure)
    assert main(["faults", "--coverage"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert calls and lines[-1].endswith(f"{len(NOT_YET_EXERCISED)} by nothing"), lines[-1]
    assert any(line.startswith("bad-signature") and "forge" in line for line in lines)
    assert f"refuses {CHECKS['order-not-sequencer']}" in out
