"""The TCP benchmark end to end with tiny numbers: four worker processes on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from btob.bench import tcp_bench


def test_percentile_interpolates() -> None:
    assert tcp_bench.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert tcp_bench.percentile([0.0, 10.0], 0.99) == 9.9


def test_tcp_bench_runs_both_phases(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    status = tcp_bench.main(["--n", "4", "--payloads", "40", "--low-load-payloads", "12",
                             "--low-load-rate", "40", "--linger", "0.3", "--timeout", "25",
                             "--json", str(out)])
    assert status == 0
    report = json.loads(out.read_text())
    for name, payloads in (("throughput", 40), ("low-load", 12)):
        phase = report["phases"][name]
        assert phase["payloads"] == payloads
        assert phase["all_delivered"] and phase["same_order"]
        assert phase["latency_samples"] == payloads
        assert phase["throughput_per_s"] > 0
        assert phase["signatures_verified_per_payload"] > 0


@pytest.mark.parametrize(("setting", "reason"), [("nope=1", "no field"),
                                                  ("slots_in_flight_max=x", "not a whole number"),
                                                  ("slots_in_flight_max=0", "positive")])
def test_a_bad_setting_is_refused_before_any_worker_starts(setting: str, reason: str) -> None:
    with pytest.raises(SystemExit, match=reason):
        tcp_bench.main(["--setting", setting])


def test_with_data_every_member_commits_to_its_data_directory(tmp_path: Path) -> None:
    options = tcp_bench.WorkerOptions(data=True)
    assert options.worker_args(0, 4)[-1] == "--data"
    results = tcp_bench.run_cluster(4, 40, 100, 0.0, linger_s=0.3, timeout_s=25,
                                    options=options, parent=tmp_path, keep_dir=True)
    summary = tcp_bench.summarize(results)
    assert summary["all_delivered"] and summary["same_order"]
    durable = summary["durable"]
    assert all(c > 0 for c in durable["commits"]) and all(b > 0 for b in durable["store_bytes"])
    (run,) = tmp_path.iterdir()  # the data directories are under the run's directory
    assert len(list(run.glob("data-*/state.sqlite"))) == 4
    memory = tcp_bench.summarize(tcp_bench.run_cluster(4, 40, 100, 0.0, linger_s=0.3,
                                                       timeout_s=25, parent=tmp_path))
    assert memory["all_delivered"] and memory["durable"] is None


def test_the_baseline_is_refused_a_data_directory() -> None:
    with pytest.raises(SystemExit, match="--data needs --core btob"):
        tcp_bench.main(["--core", "baseline", "--data"])


@pytest.mark.parametrize("callers", [1, 3])
async def test_flat_out_callers_hand_over_every_payload_once_and_overlap(
        callers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import trio

    monkeypatch.setattr(tcp_bench, "_counters", lambda node: {})
    handed: list[int] = []
    outstanding = most = 0

    class SlowNode:
        id = 1

        async def broadcast_many(self, payloads: list[bytes]) -> None:
            nonlocal outstanding, most
            outstanding += 1
            most = max(most, outstanding)
            await trio.sleep(0.01)  # a commit: the call returns later
            handed.extend(tcp_bench.HEADER.unpack_from(p)[1] for p in payloads)
            outstanding -= 1

    sent_at: dict[int, float] = {}
    share = 5 * tcp_bench.CHUNK + 7
    marks = tcp_bench._Marks()
    await tcp_bench._broadcaster(SlowNode(), share, 100, 0.0,  # type: ignore[arg-type]
                                 sent_at, marks, callers)
    assert sorted(handed) == list(range(share)) and sorted(sent_at) == list(range(share))
    assert most == callers == marks.calls_outstanding_max  # what the result reports
    assert marks.calls_outstanding == 0


def test_the_vote_mode_reaches_cluster_toml_every_worker_and_the_report(tmp_path: Path) -> None:
    options = tcp_bench.WorkerOptions(votes="linear", settings=("checkpoint_interval=8",))
    assert options.member_settings().votes == "linear"
    args = options.worker_args(1, 4)
    assert args[args.index("--votes") + 1] == "linear"
    assert "--votes" not in tcp_bench.WorkerOptions().worker_args(1, 4)
    parsed = tcp_bench.build_parser().parse_args(["--worker", "1", *args])
    assert tcp_bench._settings(parsed).votes == "linear"  # what the worker opens its node with
    results = tcp_bench.run_cluster(4, 40, 100, 0.0, linger_s=0.3, timeout_s=25,
                                    options=options, parent=tmp_path, keep_dir=True)
    assert [r["votes"] for r in results] == ["linear"] * 4
    assert tcp_bench.summarize(results)["all_delivered"]
    (run,) = tmp_path.iterdir()
    assert '\nvotes = "linear"\n' in (run / "cluster.toml").read_text()
    out = tmp_path / "bench.json"
    assert tcp_bench.main(["--n", "4", "--payloads", "20", "--low-load-payloads", "0",
                           "--linger", "0.3", "--timeout", "25", "--votes", "linear",
                           "--json", str(out)]) == 0
    assert json.loads(out.read_text())["votes"] == "linear"


def test_two_vote_modes_are_refused_before_any_worker_starts() -> None:
    with pytest.raises(SystemExit, match="--votes linear disagrees with --setting votes=all"):
        tcp_bench.main(["--votes", "linear", "--setting", "votes=all"])
    with pytest.raises(SystemExit):
        tcp_bench.build_parser().parse_args(["--votes", "some"])
