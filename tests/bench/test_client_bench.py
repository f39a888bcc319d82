"""The closed-loop client benchmark: medians, the table, and one short real run."""

from __future__ import annotations

from typing import Any

import pytest

from btob.bench.client_bench import _median_row, render, run


def test_a_row_holds_the_medians_of_its_samples() -> None:
    samples = [{"ops_per_s": v, "p50_ms": 2 * v, "p99_ms": 3 * v, "busy_cores": 1.0,
                "load_before": 0.5} for v in (10.0, 30.0, 20.0)]
    row = _median_row(4, samples)  # type: ignore[arg-type]
    assert row == {"clients": 4, "ops_per_s": 20.0, "p50_ms": 40.0, "p99_ms": 60.0,
                   "busy_cores": 1.0, "load_before": 0.5, "repeats": 3}


def test_a_short_real_run_measures_receipted_requests_and_busy_cores() -> None:
    result = run([2], duration=1.0, repeats=1, payload_size=100)
    (row,) = result["rows"]  # type: ignore[misc]
    assert row["clients"] == 2 and row["ops_per_s"] > 0
    assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert 0 < row["busy_cores"] <= (result["cpus"] or 1) + 0.01  # type: ignore[operator]
    table = render(result)
    assert "| 2 |" in table and "busy cores" in table


def test_the_cluster_is_created_and_run_in_the_vote_mode_asked_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from btob.bench import client_bench

    commands: list[list[str]] = []
    real_popen = subprocess.Popen

    def popen_recorded(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        commands.append(list(argv))  # subprocess.run starts its process through Popen too
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen_recorded)
    # A member whose --votes disagreed with the keygen's cluster.toml would exit 2: the run
    # completing shows the cluster really runs linear.
    result = run([1], duration=0.5, repeats=1, payload_size=100, votes="linear")
    assert result["votes"] == "linear" and "votes linear" in render(result)
    made = [c for c in commands if c[3:4] in (["keygen"], ["node"])]
    assert [c[3] for c in made] == ["keygen"] + ["node"] * 4
    assert all(c[c.index("--votes") + 1] == "linear" for c in made)
    assert client_bench.build_parser().parse_args([]).votes == "all"
