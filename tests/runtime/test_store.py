"""The durable store: commits apply as ``DurableState.apply`` specifies and survive a reopen,
a commit may run in a worker thread, the files stay bounded under compaction, and the
identity of a data directory - one reopened under another configuration, or written by an
older btob, is refused, naming the field or the file."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import AsyncExitStack
from functools import reduce
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btob import ClusterConfig, ConfigError, MemberAddress, Settings, open_node
from btob.core.durable import DurableChanges, DurableState, SlotRecord, Snapshot
from btob.core.wire import Batch, BatchRef, CheckpointCert, Vote
from btob.runtime.memory import MemoryNetwork
from btob.runtime.node import member_identity
from btob.runtime.store import STATE_FILE, DurableStore, identity_of

from ..helpers import Keys
from ..strategies import change_sequences

KEYS = Keys(4)


def _config(**kwargs: object) -> ClusterConfig:
    return ClusterConfig(b"store", KEYS.registry,
                         tuple(MemberAddress("memory", 1) for _ in range(4)),
                         **kwargs)  # type: ignore[arg-type]


def _identity(**changes: object) -> dict[str, object]:
    base: dict[str, object] = dict(cluster_id=b"store", member=0, public_key=b"k", n=4, f=1,
                                   brb="bracha", variant="bb", settings=Settings())
    base.update(changes)
    return identity_of(**base)  # type: ignore[arg-type]


def _slot(slot: int, size: int = 8) -> SlotRecord:
    batch = Batch(slot, (bytes([slot % 256]) * size,))
    return SlotRecord(0, slot, (BatchRef(1, slot, batch.digest()),), (Vote(2, bytes(64)),),
                      (batch,))


def _snapshot(upto: int, state: bytes = b"state") -> Snapshot:
    return Snapshot(CheckpointCert(upto, bytes(32), (Vote(0, bytes(64)),)), state)


def test_commits_survive_a_reopen(tmp_path: Path) -> None:
    store = DurableStore(tmp_path, identity=_identity())
    assert store.load() == DurableState.EMPTY
    store.commit(DurableChanges(put=(("a", b"1"), ("b", b"2")), slots=(_slot(0), _slot(1))))
    store.commit(DurableChanges.EMPTY)
    store.commit(DurableChanges(put=(("a", b"3"),), delete=("b", "never"),
                                slots=(_slot(2), _slot(3)), snapshot=_snapshot(2)))
    store.close()
    again = DurableStore(tmp_path, identity=_identity())
    assert again.load() == DurableState({"a": b"3"}, (_slot(2), _slot(3)), _snapshot(2))
    assert again.entry_count() == 1 and again.slot_count() == 2
    assert again.file_bytes() >= (tmp_path / STATE_FILE).stat().st_size > 0
    again.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=change_sequences(), groups=st.lists(st.integers(1, 4), max_size=12),
       reopen_at=st.integers(0, 12))
def test_the_store_loads_what_the_reference_state_holds(
        tmp_path: Path, steps: list[DurableChanges], groups: list[int], reopen_at: int) -> None:
    """Random changes committed one group at a time (merged with ``then``, as the node's
    committer does), with a reopen somewhere, load as ``DurableState.apply`` says."""
    directory = tempfile.mkdtemp(dir=tmp_path)
    store = DurableStore(directory, identity=_identity())
    expected = DurableState.EMPTY
    at = 0
    for commit, size in enumerate([*groups, len(steps)]):
        group, at = steps[at:at + size], at + size
        store.commit(reduce(DurableChanges.then, group, DurableChanges.EMPTY))
        expected = reduce(DurableState.apply, group, expected)
        if commit == reopen_at:
            store.close()
            store = DurableStore(directory, identity=_identity())
        assert store.load() == expected
        if at >= len(steps):
            break
    store.close()


def test_a_slot_stored_twice_commits_nothing(tmp_path: Path) -> None:
    store = DurableStore(tmp_path, identity=_identity())
    store.commit(DurableChanges(slots=(_slot(0),)))
    with pytest.raises(ValueError, match="already stored"):
        store.commit(DurableChanges(put=(("a", b"1"),), slots=(_slot(1), _slot(0))))
    assert store.load() == DurableState({}, (_slot(0),))  # the whole transaction rolled back
    store.commit(DurableChanges(put=(("a", b"1"),)))  # and the store goes on
    assert store.load().entries == {"a": b"1"}
    store.close()


async def test_a_commit_may_run_in_a_worker_thread(tmp_path: Path) -> None:
    store = DurableStore(tmp_path, identity=_identity())
    for k in range(3):
        await trio.to_thread.run_sync(store.commit, DurableChanges(slots=(_slot(k),)))
    assert await trio.to_thread.run_sync(store.load) == store.load()
    assert store.slot_count() == 3
    store.close()


def _wal_bytes(store: DurableStore) -> int:
    wal = store.path.with_name(store.path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_files_stay_bounded_under_compaction(disk_path: Path) -> None:
    """A member's windows: entries put and deleted, slots appended and snapshotted away.
    What was written is many times what is kept, and the files stay near what is kept."""
    store = DurableStore(disk_path, identity=_identity())
    window, written = 16, 0
    for slot in range(400):
        payload = os.urandom(8192)
        changes = DurableChanges(put=((f"echo/{slot}", payload),),
                                 delete=(f"echo/{slot - window}",),
                                 slots=(_slot(slot, 32768),),
                                 snapshot=_snapshot(slot - window) if slot % window == 0
                                 else None)
        store.commit(changes)
        written += len(payload) + 32768
    assert written > 15 << 20
    assert store.entry_count() == window and store.slot_count() <= 2 * window
    assert store.file_bytes() < 8 << 20, store.file_bytes()
    store.close()


def test_a_burst_does_not_leave_the_write_ahead_log_at_its_size(disk_path: Path) -> None:
    """One large commit grows the write-ahead log past its checkpoint; once the burst is
    snapshotted away and checkpointed, the log is cut back (``journal_size_limit``)."""
    store = DurableStore(disk_path, identity=_identity())
    store.commit(DurableChanges(slots=tuple(_slot(k, 16384) for k in range(1000))))
    burst = _wal_bytes(store)
    assert burst > 12 << 20
    store.commit(DurableChanges(snapshot=_snapshot(1000)))
    for k in range(300):  # small commits, enough for automatic checkpoints
        store.commit(DurableChanges(put=(("k", os.urandom(4096)),), slots=(_slot(1000 + k),)))
    assert _wal_bytes(store) <= 5 << 20 < burst
    store.close()


def test_a_snapshot_gives_the_pages_it_compacted_back_to_the_disk(disk_path: Path) -> None:
    """What a snapshot compacts away leaves the files at once, not at some later automatic
    checkpoint: after it, the database holds little more than its pages in use and the
    write-ahead log is short."""
    store = DurableStore(disk_path, identity=_identity())
    for k in range(200):  # 6 MiB of slots, in commits small enough for no checkpoint to cut
        store.commit(DurableChanges(slots=(_slot(k, 32768),)))
    before = store.file_bytes()
    assert before > 6 << 20
    store.commit(DurableChanges(snapshot=_snapshot(200)))
    assert _wal_bytes(store) <= 1 << 20, _wal_bytes(store)
    assert store.file_bytes() < 1 << 20 < before, store.file_bytes()
    store.close()


def test_a_damaged_record_is_refused_on_load_naming_the_file(tmp_path: Path) -> None:
    store = DurableStore(tmp_path, identity=_identity())
    store.commit(DurableChanges(slots=(_slot(0),)))
    store.close()
    db = sqlite3.connect(tmp_path / STATE_FILE)
    db.execute("UPDATE slots SET data = ?", (b"\xc1junk",))
    db.commit()
    db.close()
    store = DurableStore(tmp_path, identity=_identity())  # it opens: the damage shows on load
    with pytest.raises(ConfigError, match=f"durable state {tmp_path / STATE_FILE} cannot be "
                                          f"loaded"):
        store.load()
    store.close()


@pytest.mark.parametrize(("change", "named"), [
    ({"brb": "echo"}, "brb='bracha', and this node runs brb='echo'"),
    ({"variant": "ub"}, "variant='bb', and this node runs variant='ub'"),
    ({"settings": Settings(checkpoint_interval=8)}, "settings.checkpoint_interval=16"),
    ({"settings": Settings(view_change_timeout_s=0.5)}, "settings.view_change_timeout_s"),
    ({"f": 0}, "f=1"),
    ({"member": 1}, "another member or cluster (member differs)"),
    ({"cluster_id": b"other"}, "another member or cluster (cluster_id differs)"),
])
def test_another_configuration_is_refused_naming_the_field(
        tmp_path: Path, change: dict[str, object], named: str) -> None:
    DurableStore(tmp_path, identity=_identity()).close()
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        DurableStore(tmp_path, identity=_identity(**change))


def test_settings_that_cannot_change_a_restore_may_change(tmp_path: Path) -> None:
    DurableStore(tmp_path, identity=_identity()).close()
    relaxed = Settings(deliveries_retained_max=300_000, verify_cache_entries_max=10)
    DurableStore(tmp_path, identity=_identity(settings=relaxed)).close()


def test_a_store_without_a_recorded_configuration_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / STATE_FILE)
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);")
    db.execute("INSERT INTO meta VALUES ('identity', ?)", (bytes(32),))
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="older btob that did not record its configuration"):
        DurableStore(tmp_path, identity=_identity())


def test_the_input_log_of_an_older_btob_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "inputs.sqlite")
    db.executescript("CREATE TABLE inputs (seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL,"
                     " now REAL NOT NULL, data BLOB NOT NULL);")
    db.close()
    with pytest.raises(ConfigError) as caught:
        DurableStore(tmp_path, identity=_identity())
    message = str(caught.value)
    assert str(tmp_path / "inputs.sqlite") in message and "\n" not in message
    assert "older btob (input log)" in message and "cannot be resumed" in message
    assert not (tmp_path / STATE_FILE).exists()  # nothing written next to it


async def test_a_node_reopened_with_another_variant_is_refused(tmp_path: Path) -> None:
    """Regression: a member resumed under another configuration rebuilt a different member
    (30 deliveries came back as 1, 2 or 8) - it must be refused before anything runs."""
    network = MemoryNetwork(4)
    config = _config()
    async with AsyncExitStack() as peers:  # a new directory's member learns its counters first
        for i in range(3):
            await peers.enter_async_context(
                open_node(config, i, KEYS.keys[i], transport=network.endpoints[i]))
        async with open_node(config, 3, KEYS.keys[3], transport=network.endpoints[3],
                             data_dir=tmp_path) as node:
            await node.broadcast(b"x")
    for other, named in ((_config(variant="ub"), "variant"),
                         (_config(brb="echo"), "brb"),
                         (_config(settings=Settings(checkpoint_interval=32)),
                          "settings.checkpoint_interval")):
        with pytest.raises(ConfigError, match=f"was created with {named}="):
            async with open_node(other, 3, KEYS.keys[3], transport=network.endpoints[3],
                                 data_dir=tmp_path):
                pass
    # and the same configuration still opens it
    async with open_node(config, 3, KEYS.keys[3], transport=MemoryNetwork(4).endpoints[3],
                         data_dir=tmp_path) as node:
        stats = node.statistics()
        assert stats.store_bytes > 0
        assert stats.member.payloads_submitted == 1  # what btob node's workload goes on from
    assert member_identity(config, 3)["variant"] == "bb"
    await trio.lowlevel.checkpoint()


def test_the_database_gives_back_what_a_snapshot_compacted_away(tmp_path: Path) -> None:
    store = DurableStore(tmp_path, identity=_identity())
    for first in range(0, 400, 50):
        store.commit(DurableChanges(slots=tuple(
            SlotRecord(0, s, (), (), (Batch(s, (bytes(2000),)),))
            for s in range(first, first + 50))))
    store.close()
    grown = (tmp_path / STATE_FILE).stat().st_size
    store = DurableStore(tmp_path, identity=_identity())
    cert = CheckpointCert(400, bytes(32), (Vote(0, bytes(64)),), bytes(32))
    store.commit(DurableChanges(snapshot=Snapshot(cert, b"state")))  # drops all 400
    store.close()
    assert grown > 400 * 2000
    assert (tmp_path / STATE_FILE).stat().st_size < grown / 4  # the free pages went back


@pytest.mark.parametrize("torn", [1, 512, "half"])
def test_a_torn_last_write_leaves_the_commit_before_it(tmp_path: Path, torn: int | str) -> None:
    """A crash amid a commit tears its write: the disk holds the previous commits whole and
    part of the last. The store opens on exactly what was committed before the torn one
    (the member resumes from there, as the simulator's before-commit crash does)."""
    import shutil

    store = DurableStore(tmp_path / "live", identity=_identity())
    first = DurableChanges(put=(("a", b"1"),), slots=(_slot(0), _slot(1)))
    store.commit(first)
    wal = tmp_path / "live" / (STATE_FILE + "-wal")
    before = wal.stat().st_size
    store.commit(DurableChanges(put=(("a", b"2"), ("b", b"x" * 4096)),
                                slots=tuple(_slot(s, 512) for s in range(2, 8))))
    after = wal.stat().st_size
    assert after > before  # the last commit is in the write-ahead log, not yet in the file
    shutil.copytree(tmp_path / "live", tmp_path / "disk")  # the disk as the crash left it
    shutil.copytree(tmp_path / "live", tmp_path / "whole")
    store.close()
    (tmp_path / "whole" / (STATE_FILE + "-shm")).unlink(missing_ok=True)
    untorn = DurableStore(tmp_path / "whole", identity=_identity())
    assert untorn.load().entries["a"] == b"2"  # copied whole, the last commit is there
    untorn.close()
    cut = (after - before) // 2 if torn == "half" else int(torn)
    copy = tmp_path / "disk" / (STATE_FILE + "-wal")
    with copy.open("r+b") as handle:
        handle.truncate(after - cut)
    (tmp_path / "disk" / (STATE_FILE + "-shm")).unlink(missing_ok=True)
    reopened = DurableStore(tmp_path / "disk", identity=_identity())
    assert reopened.load() == DurableState.EMPTY.apply(first)
    reopened.close()
