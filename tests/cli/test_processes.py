"""Real processes: four ``btob node`` processes on loopback, one SIGKILLed mid-run and
restarted from its data directory; one stopped (SIGTERM, SIGKILL, or with its data directory
deleted) while the others commit past the log they retain, so that it comes back by state
transfer; every log must pass ``btob check``. Also the one-line errors for bad config and
key files."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from btob import check
from btob.sim.logs import SettledRecord, read_log_dir, write_log_dir

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
    try:
        victim = 2
        deadline = time.monotonic() + 60
        while _lines(logs / f"node-{victim}.deliver.jsonl") < 30:
            assert time.monotonic() < deadline, "no progress before the kill"
            if procs[victim].poll() is not None:
                _, err = procs[victim].communicate()
                raise AssertionError(f"member {victim} exited {procs[victim].returncode} "
                                     f"before the kill: {err.decode()[-2000:]}")
            time.sleep(0.05)
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        time.sleep(1.0)
        procs[victim] = start(victim)
        for i, proc in procs.items():
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, (i, err.decode()[-2000:])
    finally:  # a failed run leaves no node behind
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    _judge_complete(logs, n * workload)
    broadcast = logs / f"node-{victim}.broadcast.jsonl"
    ids = [json.loads(line)["msg_id"] for line in broadcast.read_text().splitlines()]
    assert ids == [f"{victim}:{k}" for k in range(workload)]  # none lost, none twice


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
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


RETENTION, INTERVAL = 16, 8
"""The cluster's ``log_retention_slots`` and ``checkpoint_interval``: peers serve 16 slots."""


def _finish(procs: dict[int, subprocess.Popen[bytes]], logs: Path,
            timeout: float) -> dict[int, str]:
    """What each process printed, once all exited 0 within ``timeout`` seconds; else kill
    them all and fail, saying how far each got and what it said."""
    deadline = time.monotonic() + timeout
    while any(proc.poll() is None for proc in procs.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
    said = {i: [part.decode()[-1500:] for part in proc.communicate()]
            for i, proc in procs.items()}
    failed = {i: (proc.returncode, _lines(logs / f"node-{i}.deliver.jsonl"), *said[i])
              for i, proc in procs.items() if proc.returncode != 0}
    assert not failed, f"(exit status, deliveries logged, stdout, stderr) by node: {failed}"
    return {i: out for i, (out, _) in said.items()}


def _judge_complete(logs: Path, deliveries: int) -> None:
    """Mark the run complete - every process exited after delivering everything - and
    judge it: every property holds, and every member made ``deliveries`` deliveries."""
    run = json.loads((logs / "run.json").read_text())
    run["complete"] = True
    (logs / "run.json").write_text(json.dumps(run))
    report = check(logs)
    assert report.ok, [str(v) for v in report.violations]
    assert all(count == deliveries for count in report.deliveries.values()), \
        report.deliveries


def _judge_with_transferred_gap(logs: Path, victim: int, gap: tuple[int, int]) -> None:
    """``btob check`` on the logs as written passes: a member that took the state by transfer
    did not deliver the slots below it, and its log says so with one settled line for the gap
    (the transferred state is the certified one, made of those very deliveries; the checker
    judges the gap as what the others delivered there). Without that line, only the victim
    is faulted."""
    start, end = gap
    log = read_log_dir(logs)
    assert log.settled == {victim: (SettledRecord(start, end, "transfer"),)}
    mine = log.deliveries[victim]
    assert [d.index for d in mine] == [*range(start), *range(end, end + len(mine) - start)]
    result = subprocess.run([*BTOB, "check", str(logs)], capture_output=True, text=True)
    assert result.returncode == 0 and "verdict: PASS" in result.stdout, result.stdout
    write_log_dir(logs, log.run, log.broadcasts, log.deliveries)  # the settled line dropped
    report = check(logs)
    assert not report.ok
    assert all(victim in v.members for v in report.violations), \
        [str(v) for v in report.violations]


@pytest.mark.parametrize("stop", ["sigterm", "sigkill", "sigkill-wiped"])
def test_a_member_stopped_past_the_retained_log_comes_back_by_state_transfer(
        stop: str, tmp_path: Path) -> None:
    """Member 2 of four ``btob node`` processes stops - SIGTERM (a clean stop: exit 143, one
    line, no traceback), SIGKILL, or SIGKILL with its data directory deleted - while the
    other three commit more than 5 x ``log_retention_slots`` slots (one payload a batch, one
    batch a slot, so deliveries count slots), then restarts on its (possibly empty) data
    directory. No peer holds the slots it misses any more, so it must take the state at a
    stable checkpoint in verified chunks: its summary counts a completed transfer of several
    chunks, it says which deliveries are not in its log, and the others are all there after
    the gap, which its delivery log names as settled. ``btob check`` passes as the logs are
    written, and faults only the gap without that line (see
    :func:`_judge_with_transferred_gap`).

    With its data directory deleted, the member comes back knowing nothing, not even its own
    counters: it must learn them from its peers' STATUS before it takes a payload, and says
    where its payloads continue. What it had accepted that no peer had seen is lost with the
    disk (a correct member's broadcast that nobody delivers, for the checker) - and so that
    some is, nothing its first run sends arrives after its first half second (``--net
    isolate``), while it goes on accepting payloads. The node says which were lost, and its
    workload - deterministic by counter - broadcasts those payloads again, under the same
    ids and with the same bytes, so the broadcast line each has already is still true and is
    not written twice. Either way every id of its broadcast log must be delivered exactly
    once everywhere, and no id may name two payloads: ``btob check`` would report a repeat,
    a payload broadcast under another id's bytes, or one never delivered. Without the
    learning (counters from 0) its payloads would repeat finished instances and never be
    delivered."""
    n, victim = 4, 2
    wiped = stop == "sigkill-wiped"
    # 164 or 244 slots, not a multiple of the interval (a transfer to the very end would leave
    # nothing to deliver after it); the wiped member delivers while its sends are lost, so
    # the others need more of their own to commit past it
    workload = 61 if wiped else 41
    subprocess.run([*BTOB, "keygen", "--n", str(n), "--out", str(tmp_path),
                    "--base-port", str(free_base_port(n)),
                    "--setting", f"log_retention_slots={RETENTION}",
                    "--setting", f"checkpoint_interval={INTERVAL}",
                    "--setting", "batch_payloads_max=1", "--setting", "slot_refs_max=1",
                    "--setting", "snapshot_chunk_bytes=32"],  # a state of several chunks
                   check=True, capture_output=True)
    logs = tmp_path / "logs"

    def start(i: int, *extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*BTOB, "node", "--config", str(tmp_path / "cluster.toml"), "--id", str(i),
             "--key", str(tmp_path / f"node-{i}.key"), "--data", str(tmp_path / f"data-{i}"),
             "--log-dir", str(logs), "--workload", str(workload), "--rate", "12",
             "--exit-after", str(n * workload), "--linger", "2", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def delivered(i: int) -> int:
        return _lines(logs / f"node-{i}.deliver.jsonl")

    # What a wiped member had accepted that no peer had seen is lost: so that there is some,
    # nothing it sends arrives from 0.5 s after its start on (it still receives).
    procs = {i: start(i, *(["--net", f"isolate=0.5-1000:{victim}"] if wiped and i == victim
                           else [])) for i in range(n)}
    try:
        deadline = time.monotonic() + 60
        while delivered(victim) < 1:
            assert time.monotonic() < deadline, "no progress before the stop"
            assert procs[victim].poll() is None
            time.sleep(0.05)
        started = time.monotonic()  # the victim's transport, and its clock, started before
        while delivered(victim) < 10 or (wiped and time.monotonic() < started + 1.5):
            assert time.monotonic() < deadline, "no progress before the stop"
            assert procs[victim].poll() is None
            time.sleep(0.05)
        procs[victim].send_signal(signal.SIGTERM if stop == "sigterm" else signal.SIGKILL)
        out, err = procs[victim].communicate(timeout=30)
        if stop == "sigterm":
            stopping = (procs[victim].returncode, err.decode(), out.decode()[-3000:])
            assert procs[victim].returncode == 143, stopping
            assert err == b"" and out.decode().splitlines()[-1].startswith(
                f"node {victim}: stopped by SIGTERM; summary: delivered="), stopping
        else:
            assert procs[victim].returncode == -signal.SIGKILL
        stopped_at = delivered(victim)
        broadcast_before = _lines(logs / f"node-{victim}.broadcast.jsonl")
        others = [i for i in range(n) if i != victim]
        while min(delivered(i) for i in others) <= stopped_at + 5 * RETENTION + INTERVAL:
            assert time.monotonic() < deadline, \
                f"too little progress: deliveries {[delivered(i) for i in range(n)]}"
            time.sleep(0.05)
        if wiped:
            shutil.rmtree(tmp_path / f"data-{victim}")
        procs[victim] = start(victim)
        outputs = _finish(procs, logs, timeout=60)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    said = outputs[victim]
    summary = dict(re.findall(r"(\w+)=(\d+)", said.splitlines()[-1]))
    assert int(summary["transfers_completed"]) >= 1, said
    assert int(summary["transfer_chunks"]) > 1, said  # several chunks, each verified
    skipped = re.search(rf"node {victim}: deliveries (\d+)\.\.(\d+) are not in its log: "
                        r"its member took the state at a stable checkpoint \(transfer\)", said)
    assert skipped is not None, said
    gap = (int(skipped[1]), int(skipped[2]) + 1)
    assert gap[0] >= stopped_at and gap[1] - gap[0] > RETENTION, (gap, stopped_at)
    assert int(summary["deliveries_transferred"]) == gap[1] - gap[0] + (
        stopped_at if wiped else 0), said  # an empty one skips from 0
    learnt = re.search(rf"node {victim}: empty data directory: counters learnt from the "
                       r"peers, its payloads continue at (\d+)(; payloads (\d+)\.\.(\d+), "
                       r"accepted before but seen by no peer, were lost with the data "
                       r"directory and are broadcast again)?\n", said)
    if wiped:
        assert summary["slots_restored"] == "0" and learnt is not None, said
        assert learnt[2] is not None, said  # some were lost, and are broadcast again
        assert int(learnt[1]) == int(learnt[3]) and int(learnt[4]) == broadcast_before - 1
    else:
        assert learnt is None, said
    _judge_complete(logs, n * workload)
    _judge_with_transferred_gap(logs, victim, gap)
    broadcast = logs / f"node-{victim}.broadcast.jsonl"
    ids = [json.loads(line)["msg_id"] for line in broadcast.read_text().splitlines()]
    assert ids == [f"{victim}:{k}" for k in range(workload)]  # none lost, none twice


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


_RUN = os.getpid() % 100_000  # two runs at once on one machine must not share names
NETNS = [f"btob-test-{_RUN}-n{i}" for i in range(4)]
HUB = f"btob-test-{_RUN}-hub"
VETH = [(f"btv{_RUN}x{i}", f"btb{_RUN}x{i}") for i in range(4)]  # at most 15 characters


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
        for i, (ns, (inner, outer)) in enumerate(zip(NETNS, VETH, strict=True)):
            _sh("ip", "netns", "add", ns)
            _sh("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            _sh("ip", "link", "set", inner, "netns", ns)
            _sh("ip", "link", "set", outer, "netns", HUB)
            _sh("ip", "netns", "exec", HUB, "ip", "link", "set", outer, "master", "br0")
            _sh("ip", "netns", "exec", HUB, "ip", "link", "set", outer, "up")
            _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"10.77.0.{i + 1}/24",
                "dev", inner)
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
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


async def test_a_node_process_serves_a_client_whose_receipt_verifies_offline(
        tmp_path: Path) -> None:
    import trio

    from btob.core.clientwire import Receipt, decode_client_frame
    from btob.crypto import load_signing_key
    from btob.runtime.config import load_cluster_config

    from ..runtime.clientkit import RawClient

    await trio.run_process([*BTOB, "keygen", "--n", "1", "--clients", "1", "--out",
                            str(tmp_path), "--base-port", str(free_base_port(2))],
                           capture_stdout=True)
    config = load_cluster_config(tmp_path / "cluster.toml")
    served = config.client_address(0)
    assert served is not None
    key = load_signing_key(tmp_path / "client-0.key")
    node = await trio.lowlevel.open_process(
        [*BTOB, "node", "--config", str(tmp_path / "cluster.toml"), "--id", "0", "--key",
         str(tmp_path / "node-0.key")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with trio.fail_after(30):
            while True:  # until the node listens
                try:
                    client = await RawClient.connect(served.port, key,
                                                     cluster_id=config.cluster_id,
                                                     registry=config.registry, member=0)
                    break
                except OSError:
                    await trio.sleep(0.1)
            await client.send(client.request(b"from a client"))
            frame = await client.frame()
        assert frame is not None
        assert isinstance(decode_client_frame(frame, frame_bytes_max=1 << 22), Receipt)
    finally:
        node.terminate()
        await node.wait()
    (tmp_path / "receipt.bin").write_bytes(frame)
    verdict = await trio.run_process(
        [*BTOB, "receipt", "verify", "--config", str(tmp_path / "cluster.toml"),
         str(tmp_path / "receipt.bin")], capture_stdout=True, check=False)
    assert verdict.returncode == 0, verdict
    assert verdict.stdout.decode().startswith("valid: slot 0, index 0, ")
    at = frame.index(b"from a client")  # the request's payload, which its signature covers
    (tmp_path / "receipt.bin").write_bytes(frame[:at] + b"FROM" + frame[at + 4:])
    tampered = await trio.run_process(
        [*BTOB, "receipt", "verify", "--config", str(tmp_path / "cluster.toml"),
         str(tmp_path / "receipt.bin")], capture_stdout=True, capture_stderr=True, check=False)
    assert tampered.returncode == 1 and tampered.stdout.decode().startswith("invalid: ")
