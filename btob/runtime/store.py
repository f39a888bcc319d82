"""Durability by write-ahead input log: the member's inputs in SQLite, replayed on restart.

Theory of operation. A :class:`~btob.Member` is a deterministic function of its inputs
(submitted payloads, received frames, ticks, each with its time). The driver appends every
input it applied to this log and commits - one transaction per batch of inputs, a group
commit - *before* it sends the outputs those inputs produced. After a crash, replaying the
log through a fresh member rebuilds exactly the state it had when it last sent anything, so it
can never contradict a vote it sent; inputs that were applied but not committed produced no
output that anyone saw, and peers retransmit them. Submitted payloads are inputs too, so a
payload broadcast before a crash is neither lost nor broadcast twice (same message id).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from btob._errors import ConfigError

__all__ = ["INPUT_RECEIVE", "INPUT_SUBMIT", "INPUT_TICK", "InputLog"]

INPUT_SUBMIT, INPUT_RECEIVE, INPUT_TICK = 1, 2, 3
"""Input kinds in the log."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL,
                                   now REAL NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


class InputLog:
    """The append-only input log of one member in ``DATA_DIR/inputs.sqlite`` (WAL mode)."""

    def __init__(self, data_dir: str | os.PathLike[str], *, identity: bytes) -> None:
        """Open (or create) the log; ``identity`` (member id, cluster id and public key) must
        match the one the directory was created with, else :class:`ConfigError`."""
        directory = Path(data_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(directory / "inputs.sqlite", isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"data directory {directory}: {exc}") from None
        row = self._db.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('identity', ?)", (identity,))
        elif row[0] != identity:
            raise ConfigError(
                f"data directory {directory} belongs to another member or cluster"
            )
        self.path = directory / "inputs.sqlite"

    def append(self, rows: Sequence[tuple[int, float, bytes]]) -> None:
        """Append ``(kind, now, data)`` rows in one durable transaction (group commit)."""
        if not rows:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO inputs (kind, now, data) VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")

    def replay(self) -> Iterator[tuple[int, float, bytes]]:
        """Every input in the order it was applied."""
        cursor = self._db.execute("SELECT kind, now, data FROM inputs ORDER BY seq")
        for kind, now, data in cursor:
            yield int(kind), float(now), bytes(data)

    def count(self, kind: int) -> int:
        """How many inputs of ``kind`` the log holds."""
        row = self._db.execute("SELECT COUNT(*) FROM inputs WHERE kind=?", (kind,)).fetchone()
        return int(row[0])

    def last_time(self) -> float | None:
        """The time of the last input, if any."""
        row = self._db.execute("SELECT now FROM inputs ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()
