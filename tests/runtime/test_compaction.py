"""Compaction on a real disk: a durable member's files stay the size of its windows, not of
its history (the snapshot at each stable checkpoint replaces what lies below it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from btob import Node, Settings
from btob.runtime.store import _WAL_BYTES_MAX
from btob.testing import open_local_cluster


async def _deliver_everywhere(nodes: tuple[Node, ...], count: int) -> None:
    for node in nodes:
        async for delivery in node.deliveries(max(node.delivered - 1, 0)):
            if delivery.index >= count - 1:
                break


def _content_bytes(database: Path) -> int:
    """The pages the database's content uses, the write-ahead log's newer copies included
    (read through a connection of its own, as a reader would): how big the files would be
    right after a checkpoint, whenever the automatic ones happen to come."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    return int((pages - free) * size)


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
            early_content = _content_bytes(database)
            for _ in range(3):
                await cluster.nodes[2].broadcast_many([b"y" * 100] * 1000)
            await _deliver_everywhere(cluster.nodes, 5000)
            late = cluster.nodes[0].statistics()
            late_content = _content_bytes(database)
    assert late.member.stable_checkpoint > early.member.stable_checkpoint > 0
    assert late.commits > early.commits  # it did commit all along
    # 2.5 times the history, the same content within 30%. Without compaction the slots alone
    # would add ~150 bytes per payload: 450 KB here.
    assert late_content <= 1.3 * early_content + 16 * 1024, (early_content, late_content)
    assert database.stat().st_size <= 1.3 * early_db + 16 * 1024
    # The write-ahead log swings with the moments the automatic checkpoints come (it is cut
    # back at a snapshot once over _WAL_CUT_BYTES, and to journal_size_limit after any
    # checkpoint), not with history.
    assert late.store_bytes <= late_content + _WAL_BYTES_MAX + 64 * 1024
