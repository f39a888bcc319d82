"""Real processes: four ``btob node`` processes on loopback, one SIGKILLed mid-run and
restarted from its data directory; every log must pass ``btob check``. A node stopped by
SIGTERM or SIGINT says so in one line. Also the one-line errors for bad config and key
files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from btob import check

from ..helpers import BTOB, free_base_port


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_four_processes_survive_a_sigkill_and_restart(tmp_path: Path) -> None:
    subprocess.run([*BTOB, "keygen", "--n", "4", "--out", str(tmp_path),
                    "--base-port", str(free_base_port(4))], check=True, capture_output=True)
    _sigkill_run(tmp_path, prefix=[], extra=["--net", "delay=0.001-0.004,dup=0.02"])


def _sigkill_run(tmp_path: Path, prefix: list[str] | None = None,
                 prefixes: dict[int, list[str]] | None = None,
                 extra: list[str] | None = None) -> None:
    """Run four nodes (each command prefixed, e.g. by ``ip netns exec``), SIGKILL member 2
    mid-run, restart it, and judge every log."""
    n, workload = 4, 60
    logs = tmp_path / "logs"

    def start(i: int) -> subprocess.Popen[bytes]:
        front = (prefixes or {}).get(i, prefix or [])
        return subprocess.Popen(
            [*front, *BTOB, "node", "--config", str(tmp_path / "cluster.toml"), "--id", str(i),
             "--key", str(tmp_path / f"node-{i}.key"), "--data", str(tmp_path / f"data-{i}"),
             "--log-dir", str(logs), "--workload", str(workload), "--rate", "40",
             "--exit-after", str(n * workload), "--linger", "8",
             "--view-change-timeout", "0.5", *(extra or [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = {i: start(i) for i in range(n)}
    victim = 2
    deadline = time.monotonic() + 60
    while _lines(logs / f"node-{victim}.deliver.jsonl") < 30:
        assert time.monotonic() < deadline, "no progress before the kill"
        assert procs[victim].poll() is None
        time.sleep(0.05)
    procs[victim].send_signal(signal.SIGKILL)
    procs[victim].wait()
    time.sleep(1.0)
    procs[victim] = start(victim)
    for i, proc in procs.items():
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for p in procs.values():
                p.kill()
            raise
        assert proc.returncode == 0, (i, err.decode()[-2000:])
    run = json.loads((logs / "run.json").read_text())
    run["complete"] = True  # every process exited after delivering everything
    (logs / "run.json").write_text(json.dumps(run))
    report = check(logs)
    assert report.ok, [str(v) for v in report.violations]
    assert all(count == n * workload for count in report.deliveries.values())
    broadcast = logs / f"node-{victim}.broadcast.jsonl"
    ids = [json.loads(line)["msg_id"] for line in broadcast.read_text().splitlines()]
    assert ids == [f"{victim}:{k}" for k in range(workload)]  # none lost, none twice


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_node_stops_cleanly_on_sigterm_and_sigint(signum: signal.Signals,
                                                    tmp_path: Path) -> None:
    """No traceback: one line that says why and what the node did, exit 143 or 130 (as a
    shell reports the signal), and logs that go on after a restart on the same directory."""
    subprocess.run([*BTOB, "keygen", "--n", "1", "--out", str(tmp_path), "--base-port",
                    str(free_base_port(1))], check=True, capture_output=True)
    logs = tmp_path / "logs"
    command = [*BTOB, "node", "--config", str(tmp_path / "cluster.toml"), "--id", "0",
               "--key", str(tmp_path / "node-0.key"), "--data", str(tmp_path / "data"),
               "--log-dir", str(logs), "--workload", "1000", "--rate", "100"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while _lines(logs / "node-0.deliver.jsonl") < 5:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum and err == b"", err.decode()
    lines = out.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"node 0: stopped by {signum.name}; summary: delivered="), lines
    delivered = int(lines[0].split("delivered=")[1].split()[0])
    assert delivered >= 5
    goal = _lines(logs / "node-0.deliver.jsonl") + 10
    again = subprocess.run([*command, "--exit-after", str(goal), "--linger", "0"],
                           capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr.decode()
    report = check(logs)  # safety: the broadcasts it had accepted are not all delivered
    assert report.ok and report.deliveries[0] >= goal, [str(v) for v in report.violations]


@pytest.mark.parametrize("problem", ["missing-config", "malformed-config", "world-readable-key",
                                     "missing-key"])
def test_bad_files_get_a_one_line_error_naming_them(problem: str, tmp_path: Path) -> None:
    subprocess.run([*BTOB, "keygen", "--n", "4", "--out", str(tmp_path)], check=True,
                   capture_output=True)
    config, key = tmp_path / "cluster.toml", tmp_path / "node-0.key"
    if problem == "missing-config":
        config = tmp_path / "nowhere.toml"
        named = config
    elif problem == "malformed-config":
        config.write_text("cluster_id = [\n")
        named = config
    elif problem == "world-readable-key":
        os.chmod(key, 0o644)
        named = key
    else:
        key = tmp_path / "absent.key"
        named = key
    proc = subprocess.run([*BTOB, "node", "--config", str(config), "--id", "0", "--key",
                           str(key)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(named) in lines[0], proc.stderr


def test_keygen_writes_private_keys_0600(tmp_path: Path) -> None:
    subprocess.run([*BTOB, "keygen", "--n", "4", "--out", str(tmp_path)], check=True,
                   capture_output=True)
    for i in range(4):
        assert (tmp_path / f"node-{i}.key").stat().st_mode & 0o777 == 0o600
    assert "[[member]]" in (tmp_path / "cluster.toml").read_text()


NETNS = [f"btob-test-n{i}" for i in range(4)]
HUB = "btob-test-hub"


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def _make_namespaces() -> str | None:
    """Four hosts on a bridge: 10.77.0.1-4. Returns why not, when the machine refuses."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        _teardown_namespaces()
        _sh("ip", "netns", "add", HUB)
        _sh("ip", "netns", "exec", HUB, "ip", "link", "add", "br0", "type", "bridge")
        _sh("ip", "netns", "exec", HUB, "ip", "link", "set", "br0", "up")
        for i, ns in enumerate(NETNS):
            _sh("ip", "netns", "add", ns)
            _sh("ip", "link", "add", f"btv{i}", "type", "veth", "peer", "name", f"btb{i}")
            _sh("ip", "link", "set", f"btv{i}", "netns", ns)
            _sh("ip", "link", "set", f"btb{i}", "netns", HUB)
            _sh("ip", "netns", "exec", HUB, "ip", "link", "set", f"btb{i}", "master", "br0")
            _sh("ip", "netns", "exec", HUB, "ip", "link", "set", f"btb{i}", "up")
            _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"10.77.0.{i + 1}/24",
                "dev", f"btv{i}")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", f"btv{i}", "up")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    except (subprocess.CalledProcessError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
        _teardown_namespaces()
        detail = exc.stderr.decode().strip() if isinstance(exc, subprocess.CalledProcessError) \
            else str(exc)
        return f"cannot build network namespaces here: {detail}"
    return None


def _teardown_namespaces() -> None:
    for ns in [*NETNS, HUB]:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)


def test_four_hosts_in_network_namespaces_survive_a_sigkill(tmp_path: Path) -> None:
    reason = _make_namespaces()
    if reason is not None:
        pytest.skip(reason)
    try:
        subprocess.run([*BTOB, "keygen", "--n", "4", "--out", str(tmp_path),
                        "--base-port", "7700"], check=True, capture_output=True)
        config = tmp_path / "cluster.toml"
        text = config.read_text()
        for i in range(4):  # each member on its own host
            text = text.replace(f'host = "127.0.0.1"\nport = {7700 + i}',
                                f'host = "10.77.0.{i + 1}"\nport = {7700 + i}')
        config.write_text(text)
        assert text.count("10.77.0.") == 4
        _sigkill_run(tmp_path, prefixes={i: ["ip", "netns", "exec", NETNS[i]] for i in range(4)})
    finally:
        _teardown_namespaces()
