"""The durability micro-benchmark, with tiny numbers: each scenario measures what it says and
checks that its effect happened."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import attrs
import pytest

from btob.bench import durability_bench as bench

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid 0 0
/dev/vdb /tmp/disk\\040two xfs rw 0 0
/dev/zram0 /var/zram ext4 rw 0 0
overlay /tmp overlay rw 0 0
"""


def test_the_mount_of_a_path_is_the_longest_mount_point_above_it() -> None:
    assert bench.mount_of(Path("/work/x"), MOUNTS) == bench.Mount("/", "ext4", "/dev/vda")
    assert bench.mount_of(Path("/tmp/disk two/d"), MOUNTS).fstype == "xfs"  # \040 decoded
    assert bench.mount_of(Path("/tmp/diskette"), MOUNTS).point == "/tmp"  # not a prefix match
    assert bench.mount_of(Path("/tmp/a"), MOUNTS).fstype == "overlay"  # the last one mounted
    assert bench.mount_of(Path("/work"), "").fstype == "unknown"


@pytest.mark.parametrize(("fstype", "device", "disk"), [
    ("ext4", "/dev/vda", True), ("xfs", "/dev/nvme0n1p2", True), ("tmpfs", "tmpfs", False),
    ("ramfs", "none", False), ("ext4", "/dev/zram0", False), ("unknown", "?", False)])
def test_memory_is_not_a_disk(fstype: str, device: str, disk: bool) -> None:
    assert bench.Mount("/", fstype, device).real_disk is disk


def test_goals_are_the_issues(tmp_path: Path) -> None:
    assert bench.goal_met("throughput", 0.5) and not bench.goal_met("throughput", 0.49)
    assert bench.goal_met("disk", 1.3) and bench.goal_met("disk", 0.8)
    assert not bench.goal_met("disk", 1.31) and not bench.goal_met("disk", 0.75)
    assert bench.goal_met("restart", 1.5) and not bench.goal_met("restart", 1.51)
    assert bench.goal_met("restart", math.nan) is None and bench.goal_met("catchup", 1) is None
    assert bench.fsync_ms(tmp_path, count=3) > 0 and not list(tmp_path.iterdir())


def _tiny(**changes: Any) -> bench.Plan:
    return attrs.evolve(bench.QUICK, **changes)


def test_history_measures_stores_and_restarts_at_each_mark(tmp_path: Path) -> None:
    plan = _tiny(disk_marks=(400, 2000), restart_marks=(200, 2000), settle_s=0.3)
    result = bench.run_history(plan, tmp_path)
    disk, restart = result["disk"], result["restart"]
    (run,) = disk["runs"]
    assert sorted(run) == ["2000", "400"]
    for mark, rows in run.items():
        # two rounds: on reaching the mark, then round_payloads (200) later
        assert [(row["round"], row["member"]) for row in rows] == \
            [(r, m) for r in range(2) for m in range(4)]
        first = rows[0]["payloads"]
        assert first >= int(mark)
        assert [row["payloads"] for row in rows] == [first] * 4 + [first + 200] * 4
        # Pages in use count those still in the write-ahead log, so they are bounded by the
        # database and its log together, not by the database file alone.
        assert all(row["store_bytes"] >= row["db_bytes"] > 0 for row in rows)
        assert all(row["store_bytes"] >= row["live_db_bytes"] > 0 for row in rows)
        # the peak counts what was sampled while the cluster worked, not only the settled size
        assert all(row["sampled_store_bytes"] > 0 for row in rows)
        assert all(row["peak_store_bytes"] ==
                   max(row["sampled_store_bytes"], row["store_bytes"]) for row in rows)
    assert all(row["snapshot_upto"] > 0 and row["slots"] is not None for row in run["2000"])
    peaks = disk["median_peak_store_bytes"]
    assert disk["ratio"] == peaks["2000"] / peaks["400"]
    (restarts,) = restart["runs"]
    for mark, rows in restarts.items():
        assert len(rows) == 8 and all(0 < row["seconds"] < 10 for row in rows)
        # each resumed from its directory: further along after 2000 payloads than after 200
        assert all(row["slots_delivered"] > 0 for row in rows), mark
    assert min(r["slots_delivered"] for r in restarts["2000"]) > \
        max(r["slots_delivered"] for r in restarts["200"])
    assert restart["met"] is (restart["ratio"] <= 1.5)
    assert not list(tmp_path.iterdir())  # each run's data is removed


def test_a_laggard_and_an_empty_member_catch_up_by_state_transfer(tmp_path: Path) -> None:
    result = bench.run_catchup(_tiny(behind=(40,)), tmp_path)
    (row,) = result["runs"]
    assert row["distance"] >= 40 and row["distance"] > result["retention"]
    assert row["laggard_at"] > 0 and row["target"] >= row["laggard_at"] + 40
    for case in ("old_dir", "empty_dir"):
        rejoin = row[case]
        assert rejoin["transfer"]["completed"] >= 1 and rejoin["transfer"]["chunks_received"]
        assert rejoin["slots_delivered"] >= row["target"]
        assert rejoin["seconds"] >= rejoin["open_s"] > 0
    # it resumed where it was, but for what it had not committed as it closed
    assert row["laggard_at"] - 8 <= row["old_dir"]["resumed_at"] <= row["laggard_at"]
    assert row["distance"] == row["target"] - row["old_dir"]["resumed_at"]
    assert row["empty_dir"]["resumed_at"] == 0
    (summary,) = result["distances"]
    assert summary["old_dir_ratio"] == summary["old_dir_median_s"] / summary["produce_median_s"]


def test_a_catch_up_the_log_could_serve_does_not_count(tmp_path: Path) -> None:
    # Peers that keep 1024 slots serve a laggard 40 behind from their log: no state transfer.
    with pytest.raises(AssertionError, match="without a state transfer"):
        bench.run_catchup(_tiny(behind=(40,), retention=1024), tmp_path)


def test_quick_throughput_writes_the_table_and_json(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out, md = tmp_path / "d.json", tmp_path / "out" / "d.md"  # a new directory for it
    status = bench.main(["--quick", "--only", "throughput", "--dir", str(tmp_path),
                         "--json", str(out), "--markdown", str(md)])
    assert status == 0
    report = json.loads(out.read_text())
    t = report["scenarios"]["throughput"]
    assert [row["callers"] for row in t["rows"]] == [1, 2]
    for row in t["rows"]:
        assert len(row["memory_per_s"]) == len(row["durable_per_s"]) == 1
        assert row["ratio"] == pytest.approx(row["durable_median_per_s"]
                                             / row["memory_median_per_s"])
        assert all(c > 0 for member in row["durable_members"] for c in member["commits"])
    assert t["ratio"] == t["rows"][-1]["ratio"] and t["callers"] == 2  # judged on the last
    assert report["data"]["path"].startswith(str(tmp_path)) and report["data"]["fstype"]
    table = md.read_text()
    assert "| throughput, 4 processes over TCP" in table and table in capsys.readouterr().out
    assert "1 caller per member" in table and "2 callers per member" in table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "out"]  # data removed


def test_a_failed_scenario_is_reported_and_fails_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(plan: bench.Plan, parent: Path) -> dict[str, Any]:
        raise AssertionError("member 3 caught up without a state transfer")

    monkeypatch.setattr(bench, "run_catchup", broken)
    md = tmp_path / "d.md"
    assert bench.main(["--quick", "--only", "catchup", "--dir", str(tmp_path),
                       "--markdown", str(md)]) == 1
    assert "FAILED: AssertionError: member 3 caught up without" in md.read_text()


def test_the_table_says_when_the_data_is_not_on_a_disk() -> None:
    report = {"repeat": 3, "payload_size": 100, "scenarios": {},
              "machine": {"cpus": 2, "load_start": [1.0], "load_end": [1.0]},
              "data": {"path": "/dev/shm/x", "device": "tmpfs", "fstype": "tmpfs",
                       "mount": "/dev/shm", "real_disk": False, "fsync_ms": 0.001}}
    assert "NOT a disk (memory)" in bench.markdown_table(report)


@pytest.mark.parametrize(("argv", "reason"), [
    (["--behind", "1000"], "does not exceed --retention 1024"),
    (["--quick", "--behind", "32"], "does not exceed --retention 32"),
    (["--retention", "20", "--behind", "30"], "log_retention_slots must be at least"),
    (["--repeat", "0"], "--repeat >= 1"), (["--history-backlog", "-1"], "backlog >= 0")])
def test_a_plan_that_cannot_measure_is_refused(argv: list[str], reason: str) -> None:
    with pytest.raises(SystemExit, match=reason):
        bench.main(argv)


def test_unknown_scenarios_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--only", "throughput,speed"])
    assert "scenarios are throughput, disk, restart, catchup" in capsys.readouterr().err
