"""Compaction on a real disk: a durable member's files stay the size of its windows, not of
its history (the snapshot at each stable checkpoint replaces what lies below it)."""

from __future__ import annotations

from pathlib import Path

import trio

from btob import Node, Settings
from btob.testing import open_local_cluster


async def _deliver_everywhere(nodes: tuple[Node, ...], count: int) -> None:
    for node in nodes:
        async for delivery in node.deliveries(max(node.delivered - 1, 0)):
            if delivery.index >= count - 1:
                break


async def test_the_files_of_a_durable_member_do_not_grow_with_history(disk_path: Path) -> None:
    settings = Settings(checkpoint_interval=8, batch_payloads_max=16)
    database = disk_path / "node-0" / "state.sqlite"
    async with open_local_cluster(n=4, settings=settings, data_dir=disk_path) as cluster:
        with trio.fail_after(120):
            # Past the first write-ahead log checkpoint: the files reach their working size.
            await cluster.nodes[1].broadcast_many([b"x" * 100] * 2000)
            await _deliver_everywhere(cluster.nodes, 2000)
            early = cluster.nodes[0].statistics()
            early_db = database.stat().st_size
            for _ in range(3):
                await cluster.nodes[2].broadcast_many([b"y" * 100] * 1000)
            await _deliver_everywhere(cluster.nodes, 5000)
            late = cluster.nodes[0].statistics()
    assert late.member.stable_checkpoint > early.member.stable_checkpoint > 0
    assert late.commits > early.commits  # it did commit all along
    # 2.5 times the history, the same files: the database and everything (the write-ahead
    # log included, which journal_size_limit cuts back) within 30%. Without compaction the
    # slots alone would add ~150 bytes per payload: 450 KB here.
    assert database.stat().st_size <= 1.3 * early_db + 16 * 1024
    assert late.store_bytes <= 1.3 * early.store_bytes + 64 * 1024
