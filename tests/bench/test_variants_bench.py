"""The variants micro-benchmark, with tiny numbers."""

from __future__ import annotations

import pytest

from btob.bench import variants_bench
from btob.core.variants import VARIANTS


def test_a_measurement_gives_the_variants_figures() -> None:
    figures = variants_bench.measure("uub", 4, 20, 400.0)
    assert set(figures) == {"deliveries_per_cpu_s", "latency_p50_ms", "latency_p99_ms",
                            "msgs_per_payload", "bytes_per_payload", "busiest_msgs",
                            "busiest_verifies"}
    assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert figures["busiest_msgs"] >= 1 and figures["busiest_verifies"] >= 1  # max >= mean


def test_the_benchmark_prints_a_markdown_row_per_variant(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    monkeypatch.setattr(variants_bench, "SIZES", (4,))
    assert variants_bench.main(["--messages", "20", "--rate", "400"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "| 4 |" in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == list(VARIANTS)


def test_the_vote_mode_reaches_every_simulated_run(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from btob import SimConfig, SimResult, simulate

    modes: list[str] = []

    def recorded(config: SimConfig) -> SimResult:
        modes.append(config.settings.votes)
        return simulate(config)

    monkeypatch.setattr(variants_bench, "simulate", recorded)
    monkeypatch.setattr(variants_bench, "SIZES", (4,))
    assert variants_bench.main(["--messages", "10", "--rate", "400", "--votes", "linear"]) == 0
    assert modes == ["linear"] * len(VARIANTS)
    assert "votes linear" in capsys.readouterr().out.splitlines()[0]
    variants_bench.measure("bb", 4, 10, 400.0)
    assert modes[-1] == "all"
