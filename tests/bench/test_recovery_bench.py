"""The recovery micro-benchmark, with tiny numbers."""

from __future__ import annotations

import pytest

from btob.bench import recovery_bench


def test_recovery_after_a_sequencer_crash_takes_at_least_the_timeout() -> None:
    times = recovery_bench.recovery_times(4, 2, 0.25)
    assert len(times) == 2
    assert all(0.25 <= t < 5.0 for t in times)


def test_the_benchmark_prints_a_row_per_size_and_timeout(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    monkeypatch.setattr(recovery_bench, "SIZES", (4,))
    assert recovery_bench.main(["--seeds", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [(row[0], row[1]) for row in rows] == [("4", "1.00"), ("4", "0.25")]
    assert all(float(row[2]) >= float(row[1]) for row in rows)  # the timeout is a floor
