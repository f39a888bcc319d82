"""The command line: the acceptance runs of the core issue, exit codes and usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from btob.cli.main import main


def _swap_two_deliveries(path: Path) -> None:
    lines = path.read_text().splitlines()
    a, b = json.loads(lines[3]), json.loads(lines[4])
    a["index"], b["index"] = 4, 3
    lines[3], lines[4] = json.dumps(b), json.dumps(a)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--n", "7", "--net", "loss=0.05,dup=0.02,delay=0.001-0.05,gst=2"],
        ["--n", "10", "--brb", "echo"],
        ["--n", "7", "--fault", "3=crash:at=0.05", "--fault", "5=crash:at=0.1"],
    ],
    ids=["n4", "n7-lossy", "n10-echo", "n7-crashes"],
)
def test_sim_then_check_pass(extra: list[str], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    log_dir = tmp_path / "logs"
    code = main(["sim", "--seed", "1", "--messages", "300", "--log-dir", str(log_dir),
                 "--require-complete", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "verdict   PASS" in out and "complete" in out
    assert main(["check", str(log_dir)]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [
        ["--n", "4", "--fault", "0=crash:at=0.3"],
        ["--fault", "0=silent"],
        ["--n", "7", "--fault", "0=crash:at=0.2", "--fault", "1=crash:at=1.0"],
        ["--n", "4", "--fault", "0=crash:at=0.5", "--net", "loss=0.2,gst=3"],
    ],
    ids=["crash", "silent", "two-crashes", "crash-lossy"],
)
def test_sequencer_failures_complete_and_check(extra: list[str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    log_dir = tmp_path / "logs"
    # A slow workload, so that the sequencer fails while there is work to order.
    code = main(["sim", "--seed", "3", "--messages", "200", "--rate", "100",
                 "--log-dir", str(log_dir), "--require-complete", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "installed at" in out and "verdict   PASS" in out
    assert main(["check", str(log_dir)]) == 0


def test_check_fails_on_swapped_deliveries(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    log_dir = tmp_path / "logs"
    assert main(["sim", "--seed", "2", "--messages", "50", "--log-dir", str(log_dir)]) == 0
    _swap_two_deliveries(log_dir / "node-2.deliver.jsonl")
    capsys.readouterr()
    assert main(["check", str(log_dir)]) == 1
    out = capsys.readouterr().out
    assert "prefix-order" in out and "index 3" in out and "FAIL" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "--fault", "9=crash"],
        ["sim", "--fault", "1=teleport"],
        ["sim", "--fault", "1=crash:when=3"],
        ["sim", "--net", "loss=2"],
        ["sim", "--net", "wobble=1"],
        ["sim", "--n", "3", "--f", "1"],
        ["sim", "--brb", "gossip"],
        ["sim", "--messages", "-1"],
        ["sim", "--setting", "colour=4"],
        ["sim", "--setting", "checkpoint_interval=x"],
        ["check"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_check_on_a_missing_directory_names_it(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_faults_lists_behaviours_and_network_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faults"]) == 0
    out = capsys.readouterr().out
    assert "crash" in out and "at=float" in out and "partition=" in out and "twins" in out
    for name in ("bad-chunks", "stale-snapshot", "silent-transfer", "bad-transfer",
                 "drop-requests", "forge-receipts", "withhold-receipts"):
        assert f"  {name} " in out
    clients = out.split("client behaviours", 1)[1].split("coordinated strategies", 1)[0]
    for name in ("equivocate", "replay", "flood", "garbage"):  # under --client-fault
        assert f"  {name} " in clients


def test_console_entry_point_runs_as_a_module(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "btob", "sim", "--messages", "20", "--quiet"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout


def test_bench_command_runs_a_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sim", "--messages", "40", "--repeat", "1", "--variant", "moving"]) == 0
    assert "deliveries/cpu-s" in capsys.readouterr().out


def test_sim_with_a_coordinated_adversary_says_what_it_did(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--adversary", "edge:slot=1", "--seed", "2", "--messages", "40"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("adversary "))
    assert line.startswith("adversary edge:slot=1: faulty [0]; witness ")
    held = int(line.split("held back ")[1].split()[0])
    assert held > 0 and "verdict   PASS" in out
    assert main(["sim", "--adversary", "edge", "--fault", "1=silent"]) == 2
    assert "does not combine with --fault" in capsys.readouterr().err
    assert main(["sim", "--adversary", "nope"]) == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err


def _sim_args(*argv: str) -> object:
    from btob.cli.main import _sim_config, build_parser

    return _sim_config(build_parser().parse_args(["sim", *argv]))


def test_sim_runs_its_members_in_the_vote_mode_asked_for(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from btob.sim.simulator import SimConfig

    for argv, mode in ((["--votes", "linear"], "linear"), ([], "all"),
                       (["--setting", "votes=linear"], "linear"),
                       (["--votes", "linear", "--setting", "votes=linear"], "linear"),
                       (["--votes", "all", "--setting", "checkpoint_interval=8"], "all")):
        config = _sim_args(*argv)
        assert isinstance(config, SimConfig)
        assert (config.votes, config.settings.votes) == (mode, mode), argv
    log_dir = tmp_path / "logs"
    assert main(["sim", "--votes", "linear", "--messages", "30", "--log-dir", str(log_dir)]) == 0
    assert "brb=bracha  votes=linear" in capsys.readouterr().out.splitlines()[0]
    assert json.loads((log_dir / "run.json").read_text())["votes"] == "linear"


@pytest.mark.parametrize(("argv", "message"), [
    (["--votes", "linear", "--setting", "votes=all"],
     "btob: error: --votes linear disagrees with --setting votes=all: give the vote mode once"),
    (["--setting", "votes=some"],
     "btob: error: --setting: setting votes must be one of all, linear, got 'some'"),
])
def test_sim_refuses_two_vote_modes_or_an_unknown_one_in_one_line(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", *argv]) == 2
    err = capsys.readouterr().err
    assert err.strip() == message
    with pytest.raises(SystemExit) as exc:
        main(["sim", "--votes", "quadratic"])
    assert exc.value.code == 2
    assert "invalid choice: 'quadratic'" in capsys.readouterr().err
