"""Durability by committed state: what a member must remember, in SQLite, restored on restart.

Theory of operation. A member does not need to remember what it received - peers retransmit -
only what it said (see :mod:`btob.core.durable`). Each driver step hands the node a
:class:`~btob.core.durable.DurableChanges`; the node merges the changes of the steps that
queued up while the previous commit ran (a group commit) and commits them here - in a worker
thread, one transaction, ``synchronous=FULL`` - *before* any frame of those steps leaves, any
of their deliveries is published and any of their payloads is acknowledged. After a crash,
:meth:`DurableStore.load` returns the :class:`~btob.core.durable.DurableState` as of the last
commit and ``Member.restore`` resumes from it; a step that was applied but not committed
produced nothing anyone saw.

The database holds keyed entries (put and deleted by the member), the delivered slots above
the snapshot, one snapshot, and the directory's identity. A snapshot deletes the slots below
it, and the member deletes the entries it no longer needs, so the database stays as large as
the member's windows, not its history. A snapshot gives the pages it freed back to the file
system (incremental vacuum, then a checkpoint that truncates the write-ahead log once it is
over a MiB); ``journal_size_limit`` keeps the log from keeping the size of its largest burst
once an automatic checkpoint has copied it back.

A member resumes correctly only if it is the same machine: same cluster, member and key, same
reliable broadcast and variant, same settings. The directory keeps that configuration as its
identity (:func:`identity_of`), and opening it with any other is refused, naming the field: a
member resumed under another configuration could contradict what it signed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

import attrs

from btob._errors import ConfigError, WireError
from btob.core.durable import DurableChanges, DurableState, SlotRecord, Snapshot
from btob.core.settings import Settings

__all__ = ["STATE_FILE", "DurableStore", "identity_of"]

Identity = Mapping[str, object]
"""What a data directory belongs to: JSON-ready values by name."""

STATE_FILE = "state.sqlite"
"""The database's name in a data directory."""

_INPUT_LOG_FILE = "inputs.sqlite"
"""What btob kept before the durable state: a log of inputs, replayed on restart."""

# Settings that cannot change what a resumed member does (they bound what the driver keeps
# for its application, or how often a signature check is repeated, or say where votes are
# sent: a vote counts wherever it arrives).
_RESTORE_NEUTRAL = frozenset({"deliveries_retained_max", "deliveries_retained_bytes_max",
                              "verify_cache_entries_max", "votes"})

_WAL_BYTES_MAX = 4 << 20
"""``journal_size_limit``: the write-ahead log is cut back to this after a checkpoint. Without
it the file keeps the size of the largest burst of commits between two checkpoints."""

_WAL_CUT_BYTES = 1 << 20
"""At a snapshot, a write-ahead log above this is checkpointed and truncated: the pages the
snapshot compacted away leave the database file only at a checkpoint, and until then the log
holds a copy of them. Below it, the next snapshot will do (a snapshot comes every
``checkpoint_interval`` slots, and a checkpoint costs an fsync of the database)."""


def identity_of(*, cluster_id: bytes, member: int, public_key: bytes, n: int, f: int,
                brb: str, variant: str, settings: Settings) -> dict[str, object]:
    """The identity a member's data directory records: everything its restore depends on."""
    record: dict[str, object] = {
        "cluster_id": cluster_id.hex(), "member": member, "public_key": public_key.hex(),
        "n": n, "f": f, "brb": brb, "variant": variant,
    }
    for field in attrs.fields(Settings):
        if field.name not in _RESTORE_NEUTRAL:
            record[f"settings.{field.name}"] = getattr(settings, field.name)
    return record


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS slots (slot INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 0),
                                     upto INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


class DurableStore:
    """The committed durable state of one member in ``DATA_DIR/state.sqlite`` (WAL mode).

    :meth:`commit` may run in a worker thread: the connection is not tied to the thread that
    opened it, and a lock lets only one thread at a time use it (a probe waits for a commit
    in progress).
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, identity: Identity) -> None:
        """Open (or create) the store; ``identity`` (see :func:`identity_of`) must match the
        one the directory was created with, else :class:`ConfigError` naming the first field
        that differs. So is a directory that cannot be created, one that holds the input log
        of an older btob, or a file that is not a usable SQLite database; the message names
        it."""
        directory = Path(data_dir)
        self.path = directory / STATE_FILE
        self._lock = threading.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"data directory {directory} cannot be created: {exc.strerror or exc}"
            ) from None
        old = directory / _INPUT_LOG_FILE
        if old.exists():
            # The input log cannot be turned into committed state without replaying it
            # through the member of that version; refusing beats starting afresh under a key
            # that already signed things this member would no longer know about.
            raise ConfigError(f"data directory {directory} holds {old}, written by an older "
                              f"btob (input log): it cannot be resumed; start this member on "
                              f"a new data directory")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigError(f"durable state {self.path} cannot be opened: {exc}") from None
        try:
            # SQLite reads a file only when it must: a file that is not a database may pass
            # connect() and fail at any of these.
            # Before the first table: a database whose history is compacted away gives its
            # free pages back (at each snapshot) instead of keeping its largest size.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA journal_size_limit={_WAL_BYTES_MAX}")
            self._db.executescript(_SCHEMA)
            encoded = json.dumps(dict(identity), sort_keys=True).encode()
            row = self._db.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('identity', ?)", (encoded,))
        except sqlite3.Error as exc:
            self._db.close()
            raise ConfigError(f"durable state {self.path} cannot be used: {exc}") from None
        if row is not None:
            mismatch = _mismatch(row[0], identity)
            if mismatch is not None:
                self._db.close()
                raise ConfigError(f"data directory {directory} {mismatch}")

    def load(self) -> DurableState:
        """Everything committed so far.

        Raises :class:`ConfigError` naming the file if the database turns out to be damaged
        (a corrupt page or record may be met only here, long after the store was opened).
        """
        with self._lock:
            try:
                entries: dict[str, bytes] = {}
                for key, value in self._db.execute("SELECT key, value FROM entries"):
                    entries[_text(key)] = _blob(value)
                slots = []
                for slot, data in self._db.execute("SELECT slot, data FROM slots "
                                                   "ORDER BY slot"):
                    record = SlotRecord.decode(_blob(data))
                    if record.slot != slot:
                        raise ValueError(f"row {slot} holds slot {record.slot}")
                    slots.append(record)
                row = self._db.execute("SELECT upto, data FROM snapshot WHERE id=0").fetchone()
                snapshot = None if row is None else Snapshot.decode(_blob(row[1]))
                if snapshot is not None and snapshot.upto != row[0]:
                    raise ValueError(f"the snapshot row says upto {row[0]}, its record "
                                     f"{snapshot.upto}")
            except (sqlite3.Error, WireError, TypeError, ValueError) as exc:
                raise ConfigError(f"durable state {self.path} cannot be loaded: {exc}") from None
        return DurableState(entries, tuple(slots), snapshot)

    def commit(self, changes: DurableChanges) -> None:
        """Commit ``changes`` in one durable transaction, as
        :meth:`DurableState.apply <btob.core.durable.DurableState.apply>` applies them: puts,
        deletes, appended slots, then the snapshot, which replaces the previous one and drops
        every slot below it.

        Nothing is committed if it raises: :class:`ValueError` for a slot that is already
        stored (a core that appends a slot twice is broken), :class:`sqlite3.Error` (an
        ``OSError``-like failure of the disk) for anything else.
        """
        if not changes:
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?)", changes.put)
                db.executemany("DELETE FROM entries WHERE key=?",
                               [(key,) for key in changes.delete])
                db.executemany("INSERT INTO slots VALUES (?, ?)",
                               [(s.slot, s.encode()) for s in changes.slots])
                if changes.snapshot is not None:
                    db.execute("INSERT OR REPLACE INTO snapshot VALUES (0, ?, ?)",
                               (changes.snapshot.upto, changes.snapshot.encode()))
                if changes.slots or changes.snapshot is not None:
                    # Below the snapshot (the new one, or the one stored) no slot is kept -
                    # not even one appended now; with no snapshot the bound is NULL, and
                    # nothing goes.
                    db.execute("DELETE FROM slots WHERE slot < (SELECT upto FROM snapshot)")
                db.execute("COMMIT")
                if changes.snapshot is not None:
                    # Run to completion (execute() would step once: one page).
                    db.executescript("PRAGMA incremental_vacuum;")
                    if self._wal_bytes() > _WAL_CUT_BYTES:
                        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except BaseException as exc:
                if db.in_transaction:  # SQLite may have rolled back already (disk full)
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise ValueError(f"a slot appended to {self.path} is already stored: "
                                     f"{exc}") from None
                raise

    def _wal_bytes(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            return self.path.with_name(self.path.name + "-wal").stat().st_size
        return 0

    def file_bytes(self) -> int:
        """Bytes on disk: the database and its write-ahead log (never waits for a commit)."""
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):  # no WAL between sessions
                total += path.stat().st_size
        return total

    def entry_count(self) -> int:
        """How many keyed entries are committed."""
        return self._count("entries")

    def slot_count(self) -> int:
        """How many delivered slots above the snapshot are committed."""
        return self._count("slots")

    def _count(self, table: str) -> int:
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database (after the last commit returned)."""
        with self._lock:
            self._db.close()


def _blob(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"a record holds {type(value).__name__}, not bytes")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a key is {type(value).__name__}, not text")
    return value


def _mismatch(stored: object, identity: Identity) -> str | None:
    """Why ``stored`` (the directory's recorded identity) is not ``identity``, or None."""
    recorded: object = None
    if isinstance(stored, (bytes, str)):
        try:
            recorded = json.loads(stored)
        except ValueError:  # an identity digest of before, or damage
            recorded = None
    if not isinstance(recorded, dict):
        return "was written by an older btob that did not record its configuration"
    for key in ("cluster_id", "member", "public_key"):
        if recorded.get(key) != identity.get(key):
            return f"belongs to another member or cluster ({key} differs)"
    for key in sorted(set(recorded) | set(identity)):
        if recorded.get(key) != identity.get(key):
            return (f"was created with {key}={recorded.get(key)!r}, and this node runs "
                    f"{key}={identity.get(key)!r}: a member resumed under another "
                    f"configuration could contradict what it signed")
    return None
