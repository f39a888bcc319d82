"""``btob keygen`` and ``btob node``, in this process: the files keygen writes, the workload
a node broadcasts (the same after a restart), its logs, and what it refuses."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from btob import ConfigError, check
from btob.cli.main import main
from btob.cli.node import workload_payload
from btob.crypto import load_signing_key
from btob.runtime.config import MemberAddress, load_cluster_config
from btob.sim.logs import read_log_dir

from ..helpers import free_base_port


def test_a_workload_payload_is_its_member_and_counter_then_filler() -> None:
    payload = workload_payload(3, 7, 100)
    assert len(payload) == 100 and payload[:8] == struct.pack(">II", 3, 7)
    assert workload_payload(3, 7, 100) == payload  # the same after a restart
    assert len({workload_payload(m, c, 100) for m in range(3) for c in range(3)}) == 9
    assert workload_payload(3, 7, 4) == struct.pack(">II", 3, 7)  # never below its header
    assert workload_payload(3, 7, 1000)[:100] == payload


def test_keygen_writes_a_cluster_file_and_one_key_per_member(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             ) -> None:
    out = tmp_path / "cluster"
    assert main(["keygen", "--n", "4", "--out", str(out), "--base-port", "9000",
                 "--cluster-id", "my-cluster", "--variant", "uub", "--brb", "echo",
                 "--setting", "checkpoint_interval=32"]) == 0
    assert "wrote" in capsys.readouterr().out
    config = load_cluster_config(out / "cluster.toml")
    assert (config.n, config.cluster_id, config.variant, config.brb) == (4, b"my-cluster",
                                                                         "uub", "echo")
    assert config.settings.checkpoint_interval == 32
    assert [(a.host, a.port) for a in config.addresses] == [("127.0.0.1", 9000 + i)
                                                           for i in range(4)]
    for i in range(4):
        key = load_signing_key(out / f"node-{i}.key")
        assert key.public_key() == config.registry.public_key(i)
    assert len({load_signing_key(out / f"node-{i}.key") for i in range(4)}) == 4


def test_keygen_refuses_a_members_own_setting_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cluster"
    assert main(["keygen", "--n", "4", "--out", str(out),
                 "--setting", "retransmit_interval_s=0.1"]) == 2
    err = capsys.readouterr().err
    assert "retransmit_interval_s" in err and "btob node --setting" in err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("argv", [["--n", "0"], ["--n", "4", "--base-port", "65533"],
                                  ["--n", "4", "--base-port", "0"]])
def test_keygen_refuses_a_cluster_whose_ports_do_not_fit(argv: list[str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         ) -> None:
    assert main(["keygen", *argv, "--out", str(tmp_path / "c")]) == 2
    assert "--n must be >= 1" in capsys.readouterr().err


def test_keygen_writes_client_keys_and_admits_exactly_them(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         ) -> None:
    import os
    import stat

    out = tmp_path / "cluster"
    assert main(["keygen", "--n", "4", "--clients", "3", "--out", str(out),
                 "--base-port", "9000"]) == 0
    assert "3 client key files" in capsys.readouterr().out
    config = load_cluster_config(out / "cluster.toml")
    keys = [load_signing_key(out / f"client-{j}.key") for j in range(3)]
    assert config.client_keys == tuple(k.public_key() for k in keys)
    assert not config.clients_open and len(set(config.client_keys)) == 3
    assert not set(config.client_keys) & set(config.registry.public_keys)
    for j in range(3):
        assert stat.S_IMODE(os.stat(out / f"client-{j}.key").st_mode) == 0o600
    # member i serves clients right after the members' ports
    assert [config.client_address(i) for i in range(4)] == [
        MemberAddress("127.0.0.1", 9004 + i) for i in range(4)]
    assert not (out / "client-3.key").exists()


def test_keygen_with_open_clients_admits_any_key(tmp_path: Path) -> None:
    out = tmp_path / "cluster"
    assert main(["keygen", "--n", "4", "--open-clients", "--out", str(out),
                 "--client-base-port", "9100"]) == 0
    config = load_cluster_config(out / "cluster.toml")
    assert config.clients_open and config.client_keys == ()
    assert 'clients = "open"' in (out / "cluster.toml").read_text()
    assert config.client_address(2) == MemberAddress("127.0.0.1", 9102)
    assert not list(out.glob("client-*.key"))


def test_keygen_without_clients_serves_none(tmp_path: Path) -> None:
    out = tmp_path / "cluster"
    assert main(["keygen", "--n", "4", "--out", str(out)]) == 0
    config = load_cluster_config(out / "cluster.toml")
    assert (config.client_keys, config.clients_open, config.client_addresses) == ((), False, ())
    text = (out / "cluster.toml").read_text()
    assert "[[client]]" not in text and "client_port" not in text and "clients =" not in text


@pytest.mark.parametrize(("argv", "named"), [
    (["--clients", "-1"], "--clients -1"),
    (["--client-base-port", "9100"], "needs --clients or --open-clients"),
    (["--clients", "1", "--client-base-port", "65534"], "must fit below 65536"),
    (["--clients", "1", "--base-port", "9000", "--client-base-port", "9002"],
     "overlap the members' ports 9000..9003"),
])
def test_keygen_refuses_bad_client_options_and_writes_nothing(
        argv: list[str], named: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c"
    assert main(["keygen", "--n", "4", *argv, "--out", str(out)]) == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_keygen_clients_and_open_clients_exclude_each_other(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["keygen", "--n", "4", "--clients", "2", "--open-clients",
              "--out", str(tmp_path / "c")])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.fixture
def single(tmp_path: Path) -> Path:
    """A one-member cluster: a node alone orders and delivers its own workload."""
    out = tmp_path / "single"
    assert main(["keygen", "--n", "1", "--out", str(out), "--base-port",
                 str(free_base_port(1))]) == 0
    return out


def _node(cluster: Path, *extra: str) -> list[str]:
    return ["node", "--config", str(cluster / "cluster.toml"), "--id", "0", "--key",
            str(cluster / "node-0.key"), "--linger", "0", *extra]


def test_a_node_broadcasts_its_workload_logs_it_and_resumes_it_after_a_restart(
        single: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs, data = single / "logs", single / "data"
    common = ("--data", str(data), "--log-dir", str(logs), "--payload-size", "40")
    assert main(_node(single, "--workload", "5", "--exit-after", "5", *common)) == 0
    assert main(_node(single, "--workload", "8", "--exit-after", "8", *common)) == 0
    out = capsys.readouterr().out
    assert "8 payloads delivered" in out
    assert out.splitlines()[-1].startswith("node 0: summary: delivered=8 view=0 "
                                           "slots_restored=")  # what it says at exit
    assert out.splitlines()[-1].endswith(" transfers_completed=0 transfer_chunks=0 "
                                         "deliveries_transferred=0")
    log = read_log_dir(logs)
    ids = [d.msg_id for d in log.deliveries[0]]
    assert ids == [f"0:{k}" for k in range(8)]  # the restart went on from 5, reusing no id
    assert [b.msg_id for b in log.broadcasts[0]] == ids
    assert [d.index for d in log.deliveries[0]] == list(range(8))
    assert [d.digest for d in log.deliveries[0]] == [
        hashlib.sha256(workload_payload(0, k, 40)).hexdigest() for k in range(8)]
    assert json.loads((logs / "run.json").read_text())["n"] == 1
    assert check(log).ok


def test_a_fault_must_name_the_nodes_own_id(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c"
    assert main(["keygen", "--n", "4", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(_node(out, "--fault", "1=crash")) == 2
    assert "--fault 1=crash: it must name this member's id (0)" in capsys.readouterr().err


def test_a_members_setting_must_agree_with_the_cluster_file(single: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            ) -> None:
    assert main(_node(single, "--setting", "checkpoint_interval=64")) == 2
    assert "checkpoint_interval" in capsys.readouterr().err


def test_the_node_runner_raises_config_errors_for_the_command_to_report(single: Path) -> None:
    import argparse

    from btob.cli.node import add_node_arguments, run_node

    parser = argparse.ArgumentParser()
    add_node_arguments(parser)
    args = parser.parse_args(_node(single, "--id", "1")[1:])
    with pytest.raises(ConfigError, match="--id 1 is not a member"):
        run_node(args)


def test_keygen_writes_the_vote_mode_into_the_cluster_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "linear"
    assert main(["keygen", "--n", "4", "--out", str(out), "--votes", "linear",
                 "--setting", "checkpoint_interval=32"]) == 0
    text = (out / "cluster.toml").read_text()
    settings = text[text.index("[settings]"):text.index("[[member]]")]
    assert '\nvotes = "linear"\n' in settings
    config = load_cluster_config(out / "cluster.toml")
    assert (config.settings.votes, config.settings.checkpoint_interval) == ("linear", 32)
    assert main(["keygen", "--n", "4", "--out", str(tmp_path / "plain")]) == 0
    assert load_cluster_config(tmp_path / "plain" / "cluster.toml").settings.votes == "all"
    assert main(["keygen", "--n", "4", "--out", str(tmp_path / "as-setting"),
                 "--setting", "votes=linear"]) == 0
    assert load_cluster_config(
        tmp_path / "as-setting" / "cluster.toml").settings.votes == "linear"


def test_keygen_gives_a_new_cluster_the_vote_mode_measured_best_for_its_size(
        tmp_path: Path) -> None:
    def mode(n: int, *extra: str) -> str:
        out = tmp_path / f"n{n}{''.join(extra)}"
        assert main(["keygen", "--n", str(n), "--out", str(out), *extra]) == 0
        return load_cluster_config(out / "cluster.toml").settings.votes

    assert [mode(n) for n in (1, 4, 6, 7, 10)] == ["all", "all", "all", "linear", "linear"]
    assert mode(7, "--votes", "all") == "all"
    assert mode(10, "--setting", "votes=all") == "all"


def test_keygen_refuses_two_vote_modes_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cluster"
    assert main(["keygen", "--n", "4", "--out", str(out), "--votes", "linear",
                 "--setting", "votes=all"]) == 2
    assert capsys.readouterr().err == ("btob: error: --votes linear disagrees with --setting "
                                       "votes=all: give the vote mode once\n")
    assert not out.exists() or list(out.iterdir()) == []


@pytest.fixture
def linear(tmp_path: Path) -> Path:
    """A one-member cluster created in linear vote mode."""
    out = tmp_path / "linear"
    assert main(["keygen", "--n", "1", "--out", str(out), "--votes", "linear", "--base-port",
                 str(free_base_port(1))]) == 0
    return out


@pytest.mark.parametrize("flag", [["--votes", "linear"], []], ids=["flag", "file"])
def test_a_node_runs_its_member_in_the_clusters_vote_mode(
        linear: Path, flag: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import btob.runtime.node
    from btob.core.member import Member

    seen: list[str] = []

    class Recorded(Member):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            seen.append(self.settings.votes)

    monkeypatch.setattr(btob.runtime.node, "Member", Recorded)
    assert main(_node(linear, "--workload", "3", "--exit-after", "3", *flag)) == 0
    assert "3 payloads delivered" in capsys.readouterr().out
    assert seen == ["linear"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--votes", "all"], "btob: error: votes 'all' disagrees with the cluster's votes 'linear' "
                         "(set it in cluster.toml's [settings])"),
    (["--setting", "votes=all"], "btob: error: setting votes is cluster-wide and the cluster "
                                 "says 'linear', not 'all' (change it in cluster.toml)"),
])
def test_a_node_refuses_another_vote_mode_than_the_clusters_in_one_line(
        linear: Path, extra: list[str], message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_node(linear, *extra)) == 2
    assert capsys.readouterr().err == message + "\n"


def test_a_node_of_an_all_cluster_refuses_linear_votes(single: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_node(single, "--votes", "linear")) == 2
    assert capsys.readouterr().err == ("btob: error: votes 'linear' disagrees with the "
                                       "cluster's votes 'all' (set it in cluster.toml's "
                                       "[settings])\n")
