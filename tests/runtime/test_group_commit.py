"""The node's group commit on a slow disk: the event loop keeps running while a commit is in
a worker thread, nothing a step produced - frames, acknowledgements, deliveries - leaves
before that step's durable changes are committed, the steps queued during a commit are
merged into the next one, and what waits for a commit is bounded. Then the regression that
made durable mode stall: four members handed 256 payloads each deliver all of them within
seconds, in one process and as four ``btob node --data`` processes over TCP."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from btob import ClusterConfig, MemberAddress, Node, check
from btob.core.contract import MemberStatistics, Outgoing
from btob.core.delivery import Delivery, MsgId
from btob.core.durable import DurableChanges, DurableState
from btob.core.member import Member
from btob.crypto import KeyRegistry, SigningKey
from btob.runtime.memory import MemoryNetwork
from btob.runtime.node import open_core_node
from btob.testing import open_local_cluster

from ..helpers import BTOB, free_base_port
from .ledger import LedgerCore, RecordingTransport, ledger_node, slow_disk


async def test_commits_run_off_the_event_loop_and_release_only_what_is_durable(
        disk_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit_s = 0.04
    stores = slow_disk(monkeypatch, commit_s)
    core = LedgerCore()
    transport = RecordingTransport(lambda: stores[0].committed)
    gaps: list[float] = []
    acknowledged_early: list[MsgId] = []
    delivered_early: list[MsgId] = []

    async def heartbeat() -> None:
        last = trio.current_time()
        while True:
            await trio.sleep(0.001)
            now = trio.current_time()
            gaps.append(now - last)
            last = now

    async def feed() -> None:  # frames from peers, faster than the disk commits
        for _ in range(150):
            for _ in range(4):
                transport.inbound.send_nowait((1, b"frame"))
            await trio.sleep(0.003)

    async def broadcasts(node: Node) -> None:
        for k in range(12):
            msg_id = await node.broadcast(b"p%d" % k)
            if f"step/{core.step_of[msg_id]}" not in stores[0].committed:
                acknowledged_early.append(msg_id)

    async def read(node: Node) -> None:
        async for delivery in node.deliveries():
            if f"step/{core.step_of[delivery.msg_id]}" not in stores[0].committed:
                delivered_early.append(delivery.msg_id)
            if delivery.index == 11:
                return

    with trio.fail_after(30):
        async with ledger_node(disk_path, core, transport) as node, \
                trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat)
            async with trio.open_nursery() as load:
                load.start_soon(feed)
                load.start_soon(broadcasts, node)
                load.start_soon(read, node)
            # ticks go on making steps; wait for those of the load to be released
            steps, frames = core.step, core.frames_made
            while len(transport.sent_steps) < frames or \
                    node.statistics().steps_committed < steps:
                await trio.sleep(0.01)
            stats = node.statistics()
            nursery.cancel_scope.cancel()
    assert transport.early == [] and acknowledged_early == [] and delivered_early == []
    # the event loop ran while the commits did: no pause anywhere near a commit's length
    assert len(gaps) > 200 and max(gaps) < commit_s / 2, max(gaps)
    assert transport.sent_steps == sorted(transport.sent_steps)  # released in step order
    assert stats.steps_committed >= steps > 100
    assert stats.commits * 3 < stats.steps_committed  # steps queued meanwhile were merged
    assert stats.commit_seconds >= stats.commits * commit_s
    assert stats.changes_committed == stats.steps_committed  # one put per step


async def test_what_waits_for_a_commit_is_bounded(disk_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames of 1 MiB, fed far faster than a commit (0.2 s) completes: the driver stops
    taking inputs once 16 MiB wait, instead of holding all 64 MiB."""
    stores = slow_disk(monkeypatch, 0.2)
    core = LedgerCore(frame_bytes=1 << 20)
    transport = RecordingTransport(lambda: stores[0].committed)
    waiting: list[int] = []

    def measure() -> None:
        waiting.append(core.bytes_made - transport.sent_bytes)

    transport.on_send = measure
    with trio.fail_after(30):
        async with ledger_node(disk_path, core, transport) as node:
            for k in range(64):  # one input per driver step: the next once this one is in
                transport.inbound.send_nowait((1, b"frame"))
                while core.frames_made <= k:
                    await trio.sleep(0.0005)
            while transport.sent_bytes < 64 << 20:
                measure()
                await trio.sleep(0.001)
            stats = node.statistics()
    assert transport.early == []
    assert core.step_bytes_max == 1 << 20
    assert 15 << 20 <= max(waiting) <= 17 << 20, max(waiting)
    assert stats.commits >= 4


# -- real members, four in one process --------------------------------------------------------


async def _hand_each_256(nodes: Sequence[Node]) -> None:
    """Every node broadcasts 256 payloads at once; all 1,024 are delivered everywhere."""
    async with trio.open_nursery() as nursery:
        for node in nodes:
            payloads = [b"%d-%d" % (node.id, k) for k in range(256)]
            nursery.start_soon(node.broadcast_many, payloads)
    while min(node.delivered for node in nodes) < 1024:
        await trio.sleep(0.01)


@pytest.mark.parametrize("commit_delay_s", [0.0, 0.01])
async def test_four_durable_members_deliver_1024_payloads_within_seconds(
        disk_path: Path, monkeypatch: pytest.MonkeyPatch, commit_delay_s: float) -> None:
    """Regression: with the input log committed on the event loop, this delivered 0 of
    1,024 in 12 s (an fsync of 10 ms per batch of inputs) while views climbed."""
    slow_disk(monkeypatch, commit_delay_s)
    async with open_local_cluster(n=4, data_dir=disk_path) as cluster:
        with trio.fail_after(10):
            await _hand_each_256(cluster.nodes)
        assert [node.view for node in cluster.nodes] == [0, 0, 0, 0]
        assert all(n.statistics().member.view_changes_started == 0 for n in cluster.nodes)


class Journaled:
    """A member that also commits a journal entry at every step: until the member commits
    state of its own, this puts every step of a real member through the group commit."""

    def __init__(self, inner: Member) -> None:
        self._inner = inner
        self._steps = 0
        self.member = inner.member
        self.settings = inner.settings

    @property
    def view(self) -> int:
        """The member's view."""
        return self._inner.view

    def submit(self, payload: bytes, now: float) -> MsgId:
        """As the member."""
        return self._inner.submit(payload, now)

    def receive(self, frame: bytes, now: float, *, source: int | None = None) -> None:
        """As the member."""
        self._inner.receive(frame, now, source=source)

    def tick(self, now: float) -> None:
        """As the member."""
        self._inner.tick(now)

    def take_outputs(self) -> tuple[list[Outgoing], list[Delivery]]:
        """As the member."""
        return self._inner.take_outputs()

    def take_durable(self) -> DurableChanges:
        """The member's changes, and this step's journal entry."""
        self._steps += 1
        return self._inner.take_durable().then(
            DurableChanges(put=(("journal", b"%d" % self._steps),)))

    def restore(self, state: DurableState, now: float) -> None:
        """As the member (never called here: each run starts on an empty directory)."""
        self._inner.restore(state, now)

    def statistics(self) -> MemberStatistics:
        """As the member."""
        return self._inner.statistics()


@pytest.mark.parametrize("commit_delay_s", [0.0, 0.01])
async def test_four_members_committing_every_step_deliver_1024_payloads_within_seconds(
        disk_path: Path, monkeypatch: pytest.MonkeyPatch, commit_delay_s: float) -> None:
    stores = slow_disk(monkeypatch, commit_delay_s)
    n = 4
    keys = [SigningKey.from_seed(hashlib.sha256(b"journal/%d" % i).digest()) for i in range(n)]
    config = ClusterConfig(b"journal", KeyRegistry(tuple(k.public_key() for k in keys)),
                           tuple(MemberAddress("memory", 1) for _ in range(n)))
    network = MemoryNetwork(n)
    async with AsyncExitStack() as stack:
        nodes = []
        for i in range(n):
            member = Member(member=i, registry=config.registry, signing_key=keys[i],
                            cluster_id=config.cluster_id, settings=config.member_settings(None))
            nodes.append(await stack.enter_async_context(open_core_node(
                Journaled(member), config, keys[i], transport=network.endpoints[i],
                data_dir=disk_path / f"node-{i}")))
        with trio.fail_after(10):
            await _hand_each_256(nodes)
        assert [node.view for node in nodes] == [0, 0, 0, 0]
        stats = [node.statistics() for node in nodes]
        assert all(store.load().entries["journal"] for store in stores)
    assert all(s.commits > 0 and s.steps_committed >= s.commits for s in stats)


# -- four processes over TCP ------------------------------------------------------------------


def test_four_durable_processes_deliver_1024_payloads_within_seconds(disk_path: Path) -> None:
    """The same four members as ``btob node --data`` processes on loopback, each broadcasting
    256 payloads flat out; each exits once it delivered all 1,024."""
    n, workload = 4, 256
    subprocess.run([*BTOB, "keygen", "--n", str(n), "--out", str(disk_path),
                    "--base-port", str(free_base_port(n))], check=True, capture_output=True)
    logs = disk_path / "logs"
    started = time.monotonic()
    procs = [subprocess.Popen(
        [*BTOB, "node", "--config", str(disk_path / "cluster.toml"), "--id", str(i),
         "--key", str(disk_path / f"node-{i}.key"), "--data", str(disk_path / f"data-{i}"),
         "--log-dir", str(logs), "--workload", str(workload), "--exit-after",
         str(n * workload), "--linger", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
    try:
        for i, proc in enumerate(procs):
            _, err = proc.communicate(timeout=max(1.0, 25 - (time.monotonic() - started)))
            assert proc.returncode == 0, (i, err.decode()[-2000:])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.monotonic() - started
    run = json.loads((logs / "run.json").read_text())
    run["complete"] = True  # every process exited after delivering everything
    (logs / "run.json").write_text(json.dumps(run))
    report = check(logs)
    assert report.ok, [str(v) for v in report.violations]
    assert all(count == n * workload for count in report.deliveries.values())
    assert all((disk_path / f"data-{i}" / "state.sqlite").exists() for i in range(n))
    assert elapsed < 20, elapsed
    print(f"4 durable processes delivered {n * workload} payloads each in {elapsed:.1f} s",
          file=sys.stderr)
