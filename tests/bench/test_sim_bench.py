"""The simulator micro-benchmark, with tiny numbers."""

from __future__ import annotations

import pytest

from btob.bench import sim_bench


def test_a_measurement_gives_throughput_and_costs_per_payload() -> None:
    figures = sim_bench.measure(4, "bracha", 20, 1)
    assert set(figures) == {"deliveries_per_cpu_s", "cpu_s", "msgs_per_payload",
                            "sigs_per_payload", "verifies_per_payload"}
    assert figures["deliveries_per_cpu_s"] > 0 and figures["cpu_s"] > 0
    assert figures["msgs_per_payload"] > 0 and figures["verifies_per_payload"] > 0
    ub = sim_bench.measure(4, "bracha", 20, 1, variant="ub")
    assert ub["msgs_per_payload"] != figures["msgs_per_payload"]  # the variant is honoured


def test_the_benchmark_prints_a_row_per_configuration(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_bench, "CONFIGS", ((4, "bracha"), (4, "echo")))
    assert sim_bench.main(["--messages", "20", "--repeat", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.split()[:2] in (["4", "bracha"], ["4", "echo"])]
    assert len(rows) == 2 and "1.00x" in rows[0]  # the first row is the baseline


def test_the_vote_mode_reaches_every_simulated_run(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from btob import SimConfig, SimResult, simulate

    modes: list[str] = []

    def recorded(config: SimConfig) -> SimResult:
        modes.append(config.settings.votes)
        return simulate(config)

    monkeypatch.setattr(sim_bench, "simulate", recorded)
    sim_bench.measure(4, "bracha", 10, 2, votes="linear")
    assert modes == ["linear", "linear"]
    monkeypatch.setattr(sim_bench, "CONFIGS", ((4, "bracha"),))
    assert sim_bench.main(["--messages", "10", "--repeat", "1", "--votes", "linear"]) == 0
    assert modes[2:] == ["linear"] and "votes linear" in capsys.readouterr().out
    assert sim_bench.main(["--messages", "10", "--repeat", "1"]) == 0
    assert modes[3:] == ["all"]
