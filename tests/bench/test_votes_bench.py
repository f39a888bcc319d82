"""The vote-mode micro-benchmark, with tiny numbers."""

from __future__ import annotations

import pytest

from btob.bench import votes_bench


def test_linear_votes_measure_fewer_messages_than_all_to_all_at_n_7() -> None:
    every = votes_bench.measure(7, "echo", "all", 20, 100.0)
    linear = votes_bench.measure(7, "echo", "linear", 20, 100.0)
    assert set(every) == {"msgs_per_payload", "bytes_per_payload", "latency_p50_ms",
                          "latency_p99_ms", "busiest_msgs", "view_changes"}
    assert linear["msgs_per_payload"] < 0.7 * every["msgs_per_payload"]
    assert linear["busiest_msgs"] > every["busiest_msgs"]  # the collector does more
    assert every["view_changes"] == linear["view_changes"] == 0


def test_the_benchmark_prints_a_row_per_size_brb_and_mode(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    monkeypatch.setattr(votes_bench, "SIZES", (4,))
    assert votes_bench.main(["--messages", "20"]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| 4 |")]
    assert [(r[1], r[2]) for r in rows] == [("bracha", "all"), ("bracha", "linear"),
                                            ("echo", "all"), ("echo", "linear")]
    assert [r[-1].rstrip(" |") for r in rows][::2] == ["1.00", "1.00"]  # all against itself
