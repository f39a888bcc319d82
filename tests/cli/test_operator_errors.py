"""Operator mistakes: exit status 2 and one line ``btob: error: ...`` naming the file, port or
field at fault, never a traceback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from btob.cli.main import main
from btob.core.durable import DurableChanges, SlotRecord
from btob.core.wire import Batch, BatchRef
from btob.runtime.store import DurableStore

from ..helpers import BTOB, free_base_port


def _assert_one_line_error(status: int | None, err: str, *named: object) -> str:
    """``err`` is exactly one ``btob: error:`` line naming every item of ``named``."""
    assert status == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    line = err.rstrip("\n")
    assert line.startswith("btob: error: "), err
    for item in named:
        assert str(item) in line, (item, line)
    return line


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(argv)
    return status, capsys.readouterr().err


def _process(argv: list[str]) -> tuple[int, str]:
    proc = subprocess.run([*BTOB, *argv], capture_output=True, text=True, timeout=60,
                          check=False)
    return proc.returncode, proc.stderr


@pytest.fixture
def cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A keygen'd cluster of 4 on free loopback ports."""
    out = tmp_path / "cluster"
    assert main(["keygen", "--n", "4", "--out", str(out),
                 "--base-port", str(free_base_port(4))]) == 0
    capsys.readouterr()
    return out


def _node(cluster: Path, *extra: str, member: int = 0) -> list[str]:
    return ["node", "--config", str(cluster / "cluster.toml"), "--id", str(member),
            "--key", str(cluster / f"node-{member}.key"), *extra]


def _port_of(cluster: Path, member: int) -> int:
    from btob import load_cluster_config

    return load_cluster_config(cluster / "cluster.toml").addresses[member].port


@pytest.fixture
def occupied_port(cluster: Path) -> Iterator[int]:
    """Member 0's port, held by someone else listening on it."""
    port = _port_of(cluster, 0)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        yield port


# -- btob node: the port ----------------------------------------------------------------------


def test_node_on_a_port_in_use(cluster: Path, occupied_port: int,
                               capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _main(_node(cluster), capsys)
    line = _assert_one_line_error(status, err, f"127.0.0.1:{occupied_port}", "member 0")
    assert "in use" in line


def test_node_on_a_port_in_use_in_a_real_process(cluster: Path, occupied_port: int) -> None:
    status, err = _process(_node(cluster))
    _assert_one_line_error(status, err, f"127.0.0.1:{occupied_port}", "member 0")


async def test_open_node_on_a_port_in_use_raises_config_error_itself(
        cluster: Path, occupied_port: int) -> None:
    from btob import ConfigError, load_cluster_config, open_node
    from btob.crypto import load_signing_key

    config = load_cluster_config(cluster / "cluster.toml")
    key = load_signing_key(cluster / "node-0.key")
    with pytest.raises(ConfigError, match=f"127.0.0.1:{occupied_port}"):
        async with open_node(config, 0, key):
            pass


def test_node_on_a_client_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from btob import load_cluster_config

    out = tmp_path / "cluster"
    base = free_base_port(8)
    assert main(["keygen", "--n", "4", "--clients", "1", "--out", str(out),
                 "--base-port", str(base)]) == 0
    served = load_cluster_config(out / "cluster.toml").client_address(0)
    assert served is not None and served.port == base + 4
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", served.port))
        holder.listen()
        status, err = _main(_node(out), capsys)
    line = _assert_one_line_error(status, err, f"127.0.0.1:{served.port}", "member 0")
    assert "cannot serve clients" in line and "in use" in line


# -- btob keygen --out ------------------------------------------------------------------------


def test_keygen_into_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("in the way\n")
    status, err = _main(["keygen", "--n", "4", "--out", str(target)], capsys)
    _assert_one_line_error(status, err, target, "not a directory")


def test_keygen_below_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("in the way\n")
    target = tmp_path / "file" / "cluster"
    status, err = _main(["keygen", "--n", "4", "--out", str(target)], capsys)
    _assert_one_line_error(status, err, target)


def test_keygen_into_a_read_only_directory(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        # Permission bits do not stop root; sysfs refuses new files even to root.
        if not Path("/sys").is_dir():
            pytest.skip("no directory that root cannot write to")
        target = Path("/sys")
    else:
        target = tmp_path / "read-only"
        target.mkdir()
        target.chmod(0o555)
    status, err = _main(["keygen", "--n", "4", "--out", str(target)], capsys)
    _assert_one_line_error(status, err, target / "node-0.key")
    assert not (target / "cluster.toml").exists()


@pytest.mark.parametrize("existing", ["node-2.key", "cluster.toml"])
def test_keygen_does_not_overwrite(existing: str, cluster: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name in os.listdir(cluster):
        if name != existing:
            (cluster / name).unlink()
    before = (cluster / existing).read_bytes()
    status, err = _main(["keygen", "--n", "4", "--out", str(cluster)], capsys)
    _assert_one_line_error(status, err, cluster / existing, "already exists")
    assert (cluster / existing).read_bytes() == before
    assert sorted(os.listdir(cluster)) == [existing]  # nothing else was written either


# -- btob node --data -------------------------------------------------------------------------


def test_node_on_a_database_of_random_bytes(cluster: Path) -> None:
    data = cluster / "data-0"
    data.mkdir()
    (data / "state.sqlite").write_bytes(os.urandom(16384))
    status, err = _process(_node(cluster, "--data", str(data)))
    _assert_one_line_error(status, err, data / "state.sqlite")


def test_node_on_the_input_log_of_an_older_btob(cluster: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = cluster / "data-0"
    data.mkdir()
    (data / "inputs.sqlite").write_bytes(b"")
    status, err = _main(_node(cluster, "--data", str(data)), capsys)
    line = _assert_one_line_error(status, err, data / "inputs.sqlite")
    assert "older btob (input log)" in line and "cannot be resumed" in line


def test_node_on_a_database_damaged_past_its_first_pages(
        cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from btob import load_cluster_config
    from btob.runtime.node import member_identity

    data = cluster / "data-0"
    identity = member_identity(load_cluster_config(cluster / "cluster.toml"), 0)
    store = DurableStore(data, identity=identity)
    batches = [Batch(k, (os.urandom(300),)) for k in range(500)]
    store.commit(DurableChanges(slots=tuple(
        SlotRecord(0, k, (BatchRef(1, k, batch.digest()),), (), (batch,))
        for k, batch in enumerate(batches))))
    store.close()
    with (data / "state.sqlite").open("r+b") as db:  # leave the schema pages intact
        db.seek(10 * 4096)
        db.write(b"\xff" * 20 * 4096)
    DurableStore(data, identity=identity).close()  # it still opens: the damage shows on load
    status, err = _main(_node(cluster, "--data", str(data)), capsys)
    line = _assert_one_line_error(status, err, data / "state.sqlite")
    assert "cannot be loaded" in line


def test_node_on_a_data_directory_of_another_cluster(
        cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cluster / "data-0"
    DurableStore(data, identity={"cluster_id": "00", "member": 0, "public_key": "00"}).close()
    status, err = _main(_node(cluster, "--data", str(data)), capsys)
    _assert_one_line_error(status, err, data, "another member or cluster")


def test_node_on_a_data_directory_that_is_a_file(
        cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cluster / "data-0"
    data.write_text("in the way\n")
    status, err = _main(_node(cluster, "--data", str(data)), capsys)
    _assert_one_line_error(status, err, data)


def test_node_with_a_log_dir_that_is_a_file(cluster: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    logs = cluster / "logs"
    logs.write_text("in the way\n")
    status, err = _main(_node(cluster, "--log-dir", str(logs)), capsys)
    _assert_one_line_error(status, err, logs)


# -- btob node --key --------------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["missing", "a-directory", "unreadable", "world-readable",
                                     "garbage", "another-members"])
def test_node_with_a_bad_key_file(problem: str, cluster: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    key = cluster / "node-0.key"
    if problem == "missing":
        key.unlink()
    elif problem == "a-directory":
        key.unlink()
        key.mkdir(mode=0o700)
    elif problem == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads a file of mode 0000")
        key.chmod(0)
    elif problem == "world-readable":
        key.chmod(0o644)
    elif problem == "garbage":
        key.write_text("not a key\n")
    else:
        key.write_bytes((cluster / "node-1.key").read_bytes())
    status, err = _main(_node(cluster), capsys)
    _assert_one_line_error(status, err, key)


# -- btob node --config -----------------------------------------------------------------------


def _first(pattern: str, replacement: str) -> Callable[[str], str]:
    return lambda text: re.sub(pattern, replacement, text, count=1)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda text: "cluster_id = [\n", "not valid TOML"),
        (_first(r"port = \d+", "port = 99999"), "port 99999"),
        (_first(r"port = (\d+)", r'port = "\1"'), "port must be an integer"),
        (_first(r'public_key = "[0-9a-f]+"\n', ""), "public_key is missing"),
        (_first(r'public_key = "', 'public_key = "zz'), "public_key must be 64 hex"),
        (_first(r"id = 1\n", "id = 7\n"), "member ids"),
        (_first(r"cluster_id = .*\n", ""), "cluster_id is missing"),
        (lambda text: "verbose = true\n" + text, "verbose"),
        (lambda text: text.replace("[[member]]", "[[members]]"), "members"),
    ],
    ids=["bad-toml", "port-out-of-range", "port-not-a-number", "missing-public-key",
         "bad-public-key", "bad-ids", "missing-cluster-id", "unknown-key", "no-members"],
)
def test_node_with_a_malformed_cluster_config(
        edit: Callable[[str], str], named: str, cluster: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = cluster / "cluster.toml"
    config.write_text(edit(config.read_text()))
    status, err = _main(_node(cluster), capsys)
    _assert_one_line_error(status, err, config, named)


def test_node_with_a_missing_cluster_config(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "nowhere.toml"
    status, err = _main(["node", "--config", str(config), "--id", "0", "--key",
                         str(tmp_path / "node-0.key")], capsys)
    _assert_one_line_error(status, err, config, "does not exist")


def test_node_with_an_id_outside_the_cluster(cluster: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _main(["node", "--config", str(cluster / "cluster.toml"), "--id", "9",
                         "--key", str(cluster / "node-0.key")], capsys)
    _assert_one_line_error(status, err, "--id 9", cluster / "cluster.toml")


# -- btob check, sim, demo --------------------------------------------------------------------


def test_check_on_a_missing_directory(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    status, err = _main(["check", str(missing)], capsys)
    _assert_one_line_error(status, err, missing)


def test_check_on_a_missing_directory_in_a_real_process(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    status, err = _process(["check", str(missing)])
    _assert_one_line_error(status, err, missing)


@pytest.mark.parametrize("command", ["sim", "demo"])
def test_a_log_dir_that_is_a_file(command: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    logs.write_text("in the way\n")
    status, err = _main([command, "--messages", "5", "--log-dir", str(logs)], capsys)
    _assert_one_line_error(status, err, logs)


def test_a_group_holding_one_btob_error_is_reported_as_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from btob import ConfigError
    from btob.cli import main as cli

    def fail(args: object) -> int:
        raise ExceptionGroup("outer", [ExceptionGroup("inner", [ConfigError("bad thing")])])

    monkeypatch.setattr(cli, "run_node", fail)
    status, err = _main(["node", "--config", "c", "--id", "0", "--key", "k"], capsys)
    _assert_one_line_error(status, err, "bad thing")

    def fail_twice(args: object) -> int:
        raise ExceptionGroup("two", [ConfigError("one"), ValueError("a bug")])

    monkeypatch.setattr(cli, "run_node", fail_twice)
    with pytest.raises(ExceptionGroup):  # not an operator's mistake alone: not hidden
        main(["node", "--config", "c", "--id", "0", "--key", "k"])


def test_the_one_line_stays_one_line(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from btob import ConfigError
    from btob.cli import main as cli

    def fail(args: object) -> int:
        raise ConfigError("first line\nsecond line")

    monkeypatch.setattr(cli, "run_node", fail)
    status, err = _main(["node", "--config", "c", "--id", "0", "--key", "k"], capsys)
    _assert_one_line_error(status, err, "first line; second line")
