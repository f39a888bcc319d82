"""The Trio runtime: embedded nodes on the in-memory transport, faults, durability."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from btob import PayloadTooLarge, Settings, open_node
from btob.crypto import SigningKey
from btob.runtime.config import ClusterConfig
from btob.testing import MemoryNetwork, open_local_cluster

from ..helpers import collect


async def test_local_cluster_delivers_the_same_order_everywhere() -> None:
    async with open_local_cluster(n=4) as cluster:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for origin in (1, 2):
                    async def send(origin: int = origin) -> None:
                        for k in range(50):
                            await cluster.nodes[origin].broadcast(b"%d-%d" % (origin, k))
                    nursery.start_soon(send)
            orders = [await collect(node, 100) for node in cluster.nodes]
    assert all(order == orders[0] for order in orders)
    expected = [f"{origin}:{k}" for origin in (1, 2) for k in range(50)]
    assert sorted(orders[0]) == sorted(expected)


async def test_deliveries_resume_from_an_index() -> None:
    async with open_local_cluster(n=4) as cluster:
        with trio.fail_after(20):
            for k in range(10):
                await cluster.nodes[0].broadcast(b"p%d" % k)
            full = await collect(cluster.nodes[3], 10)
            tail = []
            async for d in cluster.nodes[3].deliveries(start=7):
                tail.append(str(d.msg_id))
                if len(tail) == 3:
                    break
    assert tail == full[7:]


async def test_oversized_payload_is_refused() -> None:
    async with open_local_cluster(n=4) as cluster:
        with pytest.raises(PayloadTooLarge):
            await cluster.nodes[0].broadcast(b"x" * (1 << 20))


async def test_a_byzantine_sequencer_in_a_local_cluster_is_replaced() -> None:
    from btob import Settings

    settings = Settings(view_change_timeout_s=0.3)
    async with open_local_cluster(n=4, faults=["0=silent"], settings=settings) as cluster:
        with trio.fail_after(30):
            for k in range(20):
                await cluster.nodes[1].broadcast(b"x%d" % k)
            orders = [await collect(node, 20) for node in cluster.nodes[1:]]
        assert cluster.nodes[1].view >= 1
    assert orders[0] == orders[1] == orders[2]


def _memory_cluster(name: bytes, n: int = 4) -> tuple[list[SigningKey], ClusterConfig,
                                                      MemoryNetwork]:
    """Keys derived from ``name``, a cluster of ``n`` on a memory network, and that network."""
    import hashlib

    from btob.crypto import KeyRegistry
    from btob.runtime.config import MemberAddress

    keys = [SigningKey.from_seed(hashlib.sha256(name + b"%d" % i).digest()) for i in range(n)]
    config = ClusterConfig(name, KeyRegistry(tuple(k.public_key() for k in keys)),
                           tuple(MemberAddress("memory", 1) for _ in range(n)))
    return keys, config, MemoryNetwork(n)


async def test_a_restarted_node_resumes_from_its_data_directory(tmp_path: Path) -> None:

    from btob import open_node

    keys, config, network = _memory_cluster(b"restart")
    data = tmp_path / "node-3"
    with trio.fail_after(40):
        async with trio.open_nursery() as outer:
            nodes = {}
            stops = {}
            for i in range(3):
                async def run(i: int = i, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
                    async with open_node(config, i, keys[i],
                                         transport=network.endpoints[i]) as node:
                        nodes[i] = node
                        stops[i] = trio.Event()
                        task_status.started()
                        await stops[i].wait()
                await outer.start(run)
            first: list[str] = []
            async with open_node(config, 3, keys[3], transport=network.endpoints[3],
                                 data_dir=data) as node3:
                ids = [str(await node3.broadcast(b"before-%d" % k)) for k in range(5)]
                first = await collect(node3, 5)
            # node 3 is down; the others go on
            for k in range(5):
                await nodes[0].broadcast(b"during-%d" % k)
            async with open_node(config, 3, keys[3], transport=network.endpoints[3],
                                 data_dir=data) as node3:
                stats = node3.statistics()
                assert stats.member.payloads_submitted == 5  # restored, not started afresh
                assert stats.slots_restored > 0 or stats.member.stable_checkpoint > 0
                assert node3.delivered >= 5  # re-delivered with their indices
                more = [str(await node3.broadcast(b"after-%d" % k)) for k in range(3)]
                everything = await collect(node3, 13)
            for stop in stops.values():
                stop.set()
    assert everything[:5] == first
    assert ids == ["3:0", "3:1", "3:2", "3:3", "3:4"]
    assert more == ["3:5", "3:6", "3:7"]  # no id reused after the restart
    assert len(set(everything)) == 13


async def test_a_node_on_a_wiped_data_directory_learns_its_counters_before_it_broadcasts(
        tmp_path: Path) -> None:
    import shutil

    from btob import open_node

    keys, config, network = _memory_cluster(b"wiped")
    data = tmp_path / "node-3"
    with trio.fail_after(40):
        async with trio.open_nursery() as outer:
            stops = []
            for i in range(3):
                async def run(i: int = i, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
                    async with open_node(config, i, keys[i], transport=network.endpoints[i]):
                        stop = trio.Event()
                        stops.append(stop)
                        task_status.started()
                        await stop.wait()
                await outer.start(run)
            async with open_node(config, 3, keys[3], transport=network.endpoints[3],
                                 data_dir=data) as node3:
                assert await node3.next_payload_counter() == 0  # a new directory learns too
                before = [str(await node3.broadcast(b"before-%d" % k)) for k in range(5)]
                await collect(node3, 5)
            shutil.rmtree(data)
            async with open_node(config, 3, keys[3], transport=network.endpoints[3],
                                 data_dir=data) as node3:
                assert not node3.statistics().member.counters_known
                assert await node3.next_payload_counter() == 5  # the peers said so
                after = str(await node3.broadcast(b"after"))
                everything = await collect(node3, 6)
            for stop in stops:
                stop.set()
    assert before == [f"3:{k}" for k in range(5)] and after == "3:5"  # no id used twice
    assert everything == [*before, after]


def test_the_example_app_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "kv_store.py"
    proc = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "3 replicas agree" in proc.stdout


@pytest.mark.parametrize("variant", ["ub", "uub", "moving"])
async def test_every_variant_runs_on_the_trio_runtime(variant: str) -> None:
    async with open_local_cluster(n=4, variant=variant) as cluster:
        with trio.fail_after(30):
            for k in range(20):
                await cluster.nodes[k % 4].broadcast(b"v%d" % k)
            orders = [await collect(node, 20) for node in cluster.nodes]
    assert all(order == orders[0] for order in orders)


async def test_broadcast_many_accepts_in_order_in_one_step() -> None:
    async with open_local_cluster(n=4) as cluster:
        with trio.fail_after(30):
            first = await cluster.nodes[1].broadcast(b"alone")
            ids = await cluster.nodes[1].broadcast_many([b"m%d" % k for k in range(120)])
            assert [i.counter for i in ids] == list(range(first.counter + 1,
                                                          first.counter + 121))
            order = await collect(cluster.nodes[2], 121)
    assert order == [f"1:{k}" for k in range(121)]  # FIFO per origin, nothing lost


async def test_broadcast_many_refuses_all_when_one_is_oversized() -> None:
    async with open_local_cluster(n=4) as cluster:
        with pytest.raises(PayloadTooLarge):
            await cluster.nodes[0].broadcast_many([b"ok", b"x" * (1 << 20)])
        assert cluster.nodes[0].statistics().member.payloads_submitted == 0


async def test_an_application_is_restored_from_its_snapshot_after_a_restart(
        disk_path: Path) -> None:
    from tests.core.test_application import Tally

    settings = Settings(checkpoint_interval=4, batch_payloads_max=2)
    first = [Tally() for _ in range(4)]
    async with open_local_cluster(n=4, settings=settings, data_dir=disk_path,
                                  apps=first.__getitem__) as cluster:
        with trio.fail_after(30):
            await cluster.nodes[1].broadcast_many([b"p%d" % i for i in range(40)])
            for node in cluster.nodes:
                async for delivery in node.deliveries():
                    if delivery.index == 39:
                        break
    assert {a.count for a in first} == {40} and len({a.digest for a in first}) == 1
    again = [Tally() for _ in range(4)]
    async with open_local_cluster(n=4, settings=settings, data_dir=disk_path,
                                  apps=again.__getitem__) as cluster:
        # Restored from the snapshot at a checkpoint, then the slots above it applied again.
        assert all(a.restored for a in again)
        assert [(a.digest, a.count) for a in again] == [(a.digest, a.count) for a in first]
        with trio.fail_after(30):
            await cluster.nodes[2].broadcast(b"after")
            for node in cluster.nodes:
                async for delivery in node.deliveries(cluster.nodes[0].delivered - 1):
                    if delivery.payload == b"after":
                        break
    assert {a.count for a in again} == {41}


async def test_checkpoint_states_are_encoded_and_hashed_off_the_event_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Encoding a boundary's state and hashing it into its Merkle root is O(state): the node
    does it in a worker thread, and the checkpoints still stabilise and compact (with a
    fault-wrapped member too: its work goes the same way)."""
    import threading

    from btob.core.recovery import StateWork
    from tests.core.test_application import Tally

    threads: list[str] = []
    original = StateWork.run

    def run(self: StateWork):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return original(self)

    monkeypatch.setattr(StateWork, "run", run)

    settings = Settings(checkpoint_interval=2, batch_payloads_max=1, slot_refs_max=1,
                        log_retention_slots=4, slot_window=4)
    with trio.fail_after(30):
        async with open_local_cluster(4, settings=settings, faults=["3=slow:delay=0.001"],
                                      apps=lambda i: Tally()) as cluster:
            for k in range(12):
                await cluster.nodes[k % 4].broadcast(b"payload %d" % k)
            await collect(cluster.nodes[0], 12)
            while min(node.statistics().member.stable_checkpoint
                      for node in cluster.nodes) < 8:
                await trio.sleep(0.01)
    assert threads and threading.main_thread().name not in threads


# -- clients over TCP -------------------------------------------------------------------------


@pytest.mark.parametrize("durable", [False, True])
async def test_clients_are_served_over_tcp_and_their_receipts_verify(durable: bool,
                                                                     tmp_path: Path) -> None:
    import hashlib
    from contextlib import AsyncExitStack

    from btob import Quorums
    from btob.core.clientwire import Notice, Receipt, decode_client_frame, receipt_problem
    from btob.crypto import KeyRegistry, Verifier
    from btob.runtime.config import MemberAddress
    from btob.testing.ports import free_ports

    from .clientkit import RawClient, client_key

    alice = client_key("alice")
    keys = [SigningKey.from_seed(hashlib.sha256(b"tcp-clients%d" % i).digest())
            for i in range(4)]
    registry = KeyRegistry(tuple(k.public_key() for k in keys))
    config = ClusterConfig(b"tcp-clients", registry,
                           tuple(MemberAddress("127.0.0.1", p) for p in free_ports(4)),
                           client_keys=(alice.public_key(),),
                           client_addresses=tuple(MemberAddress("127.0.0.1", 0)
                                                  for _ in range(4)))
    verifier = Verifier(registry, cluster_id=config.cluster_id)
    bound = 1 << 22
    with trio.fail_after(30):
        async with AsyncExitStack() as stack:
            nodes = [await stack.enter_async_context(open_node(
                config, i, keys[i], data_dir=tmp_path / f"node-{i}" if durable else None))
                for i in range(4)]
            port = nodes[1].client_port
            assert port is not None and port.port is not None
            client = await RawClient.connect(port.port, alice, cluster_id=config.cluster_id,
                                             registry=registry, member=1)
            frames = [client.request(b"req-%d" % k) for k in range(3)]
            for frame in frames:
                await client.send(frame)
            receipts = []
            while len(receipts) < 3:
                frame = await client.frame()
                assert frame is not None
                decoded = decode_client_frame(frame, frame_bytes_max=bound)
                assert isinstance(decoded, Receipt), decoded
                receipts.append(decoded)
            assert sorted(r.request for r in receipts) == sorted(frames)
            for receipt in receipts:
                assert receipt_problem(receipt, quorums=Quorums.for_cluster(4),
                                       verify_member=verifier.verify,
                                       verify_client=verifier.verify_key,
                                       frame_bytes_max=bound) is None
            for node in nodes:  # delivered everywhere, in one order, said to be alice's
                seen = []
                async for delivery in node.deliveries():
                    seen.append((delivery.index, delivery.client, delivery.payload))
                    if len(seen) == 3:
                        break
                assert seen == [(r.index, alice.public_key(), b"req-%d" % k)
                                for k, r in enumerate(sorted(receipts, key=lambda r: r.index))]
            # a request delivered already gets its receipt again (rebuilt from the log); one
            # with a bad signature gets a NOTICE
            await client.send(frames[0])
            frame = await client.frame()
            assert frame is not None
            again = decode_client_frame(frame, frame_bytes_max=bound)
            assert isinstance(again, Receipt) and again.request == frames[0]
            assert again == next(r for r in receipts if r.request == frames[0])
            forged = client.request(b"forged")
            await client.send(forged[:-1] + bytes([forged[-1] ^ 1]))
            frame = await client.frame()
            assert frame is not None
            notice = decode_client_frame(frame, frame_bytes_max=bound)
            assert isinstance(notice, Notice), notice
            assert (notice.session, notice.seq) == (1, 3)
            assert "signature" in notice.reason
            assert all(node.statistics().member.deliveries == 3 for node in nodes)


async def test_a_node_serves_no_clients_without_a_client_port_or_when_told_not_to() -> None:
    from btob.runtime.config import MemberAddress

    keys, config, network = _memory_cluster(b"no-clients", n=1)
    async with open_node(config, 0, keys[0], transport=network.endpoints[0]) as node:
        assert node.client_port is None
    served = ClusterConfig(config.cluster_id, config.registry, config.addresses,
                           clients_open=True,
                           client_addresses=(MemberAddress("127.0.0.1", 0),))
    async with open_node(served, 0, keys[0], transport=network.endpoints[0],
                         serve_clients=False) as node:
        assert node.client_port is None
    async with open_node(served, 0, keys[0], transport=network.endpoints[0]) as node:
        assert node.client_port is not None and node.client_port.port
