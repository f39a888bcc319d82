"""The benchmark harness: planning, targets, repeats, and a tiny end-to-end run that writes
results.json, the markdown table and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from btob import ConfigError
from btob.bench import harness
from btob.bench.matrix import RunSpec

# -- planning and targets -----------------------------------------------------------------


def test_plan_pairs_every_tcp_run_with_a_baseline() -> None:
    runs = [RunSpec(n=7, payloads=100), RunSpec(n=7, payloads=100, mix="crash-sequencer"),
            RunSpec(mode="sim", payloads=100)]
    planned = harness.plan(runs)
    assert [r.label for r in planned] == ["tcp-baseline-n7", "tcp-bb-bracha-n7",
                                          "tcp-bb-bracha-n7-crash-sequencer",
                                          "sim-bb-bracha-n4"]


def _row(**fields: object) -> dict[str, object]:
    row: dict[str, object] = {"mode": "tcp", "variant": "bb", "brb": "bracha", "n": 4,
                              "payload_size": 100, "batch_size": 1024, "batch_delay_ms": 0.0,
                              "mix": None, "rate": 0.0, "ok": True,
                              "throughput_pps": 4000.0, "latency_ms": {"p50": 10.0},
                              "sig_verify_per_payload": 0.15,
                              "throughput_after_recovery_pps": None}
    row.update(fields)
    return row


def test_targets_are_judged_against_the_rows_that_measure_them() -> None:
    rows = [_row(variant="baseline", brb=None, throughput_pps=10000.0),
            _row(),
            _row(variant="baseline", brb=None, rate=100.0, latency_ms={"p50": 1.0}),
            _row(rate=100.0, latency_ms={"p50": 5.0}),
            _row(mix="equivocating-sequencer", throughput_after_recovery_pps=2000.0)]
    targets = {t["target"].split(" (")[0]: t for t in harness.evaluate_targets(rows)}
    assert targets["throughput / baseline"]["met"] is False  # 0.4 < 0.5
    assert targets["signature verifications per payload, cluster-wide"]["met"] is True
    assert targets["throughput, payloads/s"]["met"] is True
    assert targets["p50 latency / baseline at low load"]["met"] is False  # 5x
    assert targets["throughput after replacing a Byzantine sequencer / fault-free"][
        "met"] is False  # 0.5
    assert harness.evaluate_targets([]) == []


# -- end to end ---------------------------------------------------------------------------


def test_a_tiny_matrix_runs_end_to_end(tmp_path: Path) -> None:
    matrix = tmp_path / "tiny.toml"
    matrix.write_text('[defaults]\npayloads = 240\n\n[[run]]\nmode = "tcp"\n\n'
                      '[[run]]\nmode = "sim"\nn = [4, 7]\nrate = 500.0\n')
    out = tmp_path / "out"
    assert harness.main(["--matrix", str(matrix), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    names = [r["name"] for r in results["runs"]]
    assert names == ["tcp-baseline-n4", "tcp-bb-bracha-n4", "sim-bb-bracha-n4-500pps",
                     "sim-bb-bracha-n7-500pps"]
    for run in results["runs"]:
        assert run["ok"], run
        for key in ("name", "mode", "variant", "n", "f", "faults", "payload_size",
                    "throughput_pps", "latency_ms", "sig_verify_per_payload",
                    "msgs_per_payload", "bytes_per_payload"):
            assert key in run
        assert set(run["latency_ms"]) == {"p50", "p90", "p99"}
        assert run["faults"] == []
    btob_row, base_row = results["runs"][1], results["runs"][0]
    assert btob_row["sig_verify_per_payload"] > 0 and base_row["sig_verify_per_payload"] == 0
    assert btob_row["baseline_ratio"]["throughput"] == pytest.approx(
        btob_row["throughput_pps"] / base_row["throughput_pps"])
    assert results["baseline"]["throughput_pps"] == base_row["throughput_pps"]
    assert set(results["baseline"]["latency_ms"]) == {"p50", "p90", "p99"}
    sims = results["runs"][2:]
    assert sims[1]["msgs_per_payload"] > sims[0]["msgs_per_payload"]  # n=7 costs more
    assert "tcp-bb-bracha-n4" in (out / "results.md").read_text()
    for png in ("throughput_vs_n.png", "latency_cdf.png", "throughput_by_faults.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")


def test_micro_benchmarks_still_run_through_the_harness(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert harness.main(["sim", "--messages", "40", "--repeat", "1"]) == 0
    assert "deliveries/cpu-s" in capsys.readouterr().out


def test_a_tcp_run_with_a_crashed_sequencer_measures_its_recovery() -> None:
    spec = RunSpec(payloads=400, mix="crash-sequencer", view_change_timeout_s=0.3)
    row = harness.run_tcp(spec)
    assert row["ok"], row["error"]
    assert row["faults"] == ["0=crash:at=0.01"]
    assert row["view_changes"] >= 1
    # the crashed member's payloads are not waited for; the others' all arrive
    assert row["payloads"] == 3 * (400 // 4)
    assert 0.3 <= row["recovery_s"] < 5.0  # at least the timeout, then the new view's work
    assert row["throughput_after_recovery_pps"] > 0


def test_a_repeated_run_reports_the_median_and_every_sample(
        monkeypatch: pytest.MonkeyPatch) -> None:
    samples = iter([300.0, 100.0, 200.0])

    def fake(spec: RunSpec) -> dict[str, object]:
        return {"name": spec.label, "ok": True, "throughput_pps": next(samples)}
    monkeypatch.setattr(harness, "run_sim", fake)
    row = harness._run_repeated(RunSpec(mode="sim", payloads=100, repeat=3))
    assert row["throughput_pps"] == 200.0 and row["repeats"] == [300.0, 100.0, 200.0]
    with pytest.raises(ConfigError):
        RunSpec(repeat=0)
