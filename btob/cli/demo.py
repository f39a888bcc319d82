"""``btob demo``: four members over TCP on loopback, one a Byzantine sequencer."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import trio
from rich.console import Console
from rich.live import Live

from btob.core.proposers import view_leader
from btob.core.settings import Settings
from btob.crypto import KeyRegistry, SigningKey
from btob.faults import parse_fault
from btob.runtime.config import ClusterConfig, MemberAddress
from btob.runtime.node import Node, open_node
from btob.sim.checker import check, format_report
from btob.sim.logs import (
    BroadcastRecord,
    DeliveryRecord,
    LogDir,
    MemberInfo,
    RunInfo,
    write_log_dir,
)
from btob.testing.ports import free_ports

__all__ = ["DEMO_FAULT", "run_demo"]

DEMO_FAULT = "0=equivocate"
"""The demo's Byzantine sequencer: different ORDERs to different members, voting for both."""


def run_demo(*, seed: int = 7, messages: int = 3000, log_dir: Path | None = None,
             variant: str = "bb") -> int:
    """Run the demo, show live progress, then the checker's verdict and the throughput;
    0 iff every property held and every payload of a correct member was delivered."""
    return trio.run(_demo, seed, messages, log_dir, variant)


async def _demo(seed: int, messages: int, log_dir: Path | None, variant: str) -> int:
    console = Console()
    n = 4
    keys = [SigningKey.from_seed(hashlib.sha256(b"demo/%d/%d" % (seed, i)).digest())
            for i in range(n)]
    settings = Settings(view_change_timeout_s=0.5)
    config = ClusterConfig(
        b"demo-%d" % seed, KeyRegistry(tuple(k.public_key() for k in keys)),
        tuple(MemberAddress("127.0.0.1", p) for p in free_ports(n)), variant=variant,
        settings=settings,
    )
    fault = parse_fault(DEMO_FAULT, n)
    senders = [i for i in range(n) if i != fault.member]
    per_sender = messages // len(senders)
    expected = per_sender * len(senders)
    console.print(f"btob demo ({variant}): {n} members over TCP on loopback; member "
                  f"{fault.member} is a "
                  f"Byzantine sequencer ({DEMO_FAULT}); members {senders} broadcast "
                  f"{per_sender} payloads of 100 B each")
    broadcasts: dict[int, list[BroadcastRecord]] = {i: [] for i in range(n)}
    deliveries: dict[int, list[DeliveryRecord]] = {i: [] for i in range(n)}
    started = time.perf_counter()
    finished_at = 0.0

    async def send(node: Node) -> None:
        for k in range(per_sender):
            payload = (b"%d:%d:" % (node.id, k)).ljust(100, b".")
            msg_id = await node.broadcast(payload)
            broadcasts[node.id].append(BroadcastRecord(str(msg_id),
                                                       hashlib.sha256(payload).hexdigest()))

    async def collect(node: Node, done: trio.Event) -> None:
        async for d in node.deliveries():
            deliveries[node.id].append(DeliveryRecord(d.index, str(d.msg_id), d.origin,
                                                      hashlib.sha256(d.payload).hexdigest()))
            if d.index + 1 >= expected:
                done.set()

    nodes: list[Node] = []
    with trio.move_on_after(120) as timeout:
        async with trio.open_nursery() as nursery:
            async def run(i: int, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
                async with open_node(config, i, keys[i], seed=seed,
                                     fault=fault if i == fault.member else None) as node:
                    nodes.append(node)
                    task_status.started()
                    await trio.sleep_forever()

            for i in range(n):
                await nursery.start(run, i)
            nodes.sort(key=lambda node: node.id)
            done = {i: trio.Event() for i in senders}
            for i in senders:
                nursery.start_soon(collect, nodes[i], done[i])
                nursery.start_soon(send, nodes[i])
            with Live(console=console, transient=True, refresh_per_second=8) as live:
                while not all(e.is_set() for e in done.values()):
                    elapsed = time.perf_counter() - started
                    slowest = min(len(deliveries[i]) for i in senders)
                    live.update(f"delivered {slowest}/{expected} at every correct member, "
                                f"{slowest / max(elapsed, 1e-9):,.0f} payloads/s, "
                                f"view {max(node.view for node in nodes)}")
                    await trio.sleep(0.125)
            finished_at = time.perf_counter() - started
            await trio.sleep(0.3)  # let the stragglers settle before judging
            nursery.cancel_scope.cancel()
    complete = not timeout.cancelled_caught
    run_info = RunInfo(n=n, f=config.quorums.f, complete=complete, members={
        i: MemberInfo(honest=i != fault.member, crashed=False) for i in range(n)})
    logs = LogDir(run=run_info, broadcasts={i: tuple(v) for i, v in broadcasts.items()},
                  deliveries={i: tuple(v) for i, v in deliveries.items()})
    target = log_dir or Path(tempfile.mkdtemp(prefix="btob-demo-"))
    write_log_dir(target, run_info, logs.broadcasts, logs.deliveries)
    report = check(logs)
    proven = sorted({m for node in nodes if node.id != fault.member
                     for m in node.statistics().member.evidence})
    print(format_report(report))
    print(f"views: {max(node.view for node in nodes)} (sequencer now member "
          f"{view_leader(max(node.view for node in nodes), n)}); evidence: "
          f"{'members ' + str(proven) + ' proven Byzantine' if proven else 'none'}")
    if complete:
        print(f"throughput: {expected / finished_at:,.0f} payloads/s delivered at every correct "
              f"member ({expected} payloads in {finished_at:.2f} s)")
    else:
        print("the run did not complete within 120 s")
    print(f"logs: {target} (judge again with: btob check {target})")
    return 0 if report.ok and complete else 1
