"""Durability by write-ahead input log: the member's inputs in SQLite, replayed on restart.

Theory of operation. A :class:`~btob.Member` is a deterministic function of its inputs
(submitted payloads, received frames, ticks, each with its time). The driver appends every
input it applied to this log and commits - one transaction per batch of inputs, a group
commit - *before* it sends the outputs those inputs produced. After a crash, replaying the
log through a fresh member rebuilds exactly the state it had when it last sent anything, so it
can never contradict a vote it sent; inputs that were applied but not committed produced no
output that anyone saw, and peers retransmit them. Submitted payloads are inputs too, so a
payload broadcast before a crash is neither lost nor broadcast twice (same message id).

Replay rebuilds the same member only if it is the same machine: same cluster, member and key,
same reliable broadcast and variant, same settings. The directory keeps that configuration as
its identity (:func:`identity_of`), and opening it with any other is refused, naming the field:
a member rebuilt under another configuration could contradict what it signed.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs

from btob._errors import ConfigError
from btob.core.settings import Settings

__all__ = ["INPUT_RECEIVE", "INPUT_SUBMIT", "INPUT_TICK", "InputLog", "identity_of"]

Identity = Mapping[str, object]
"""What a data directory belongs to: JSON-ready values by name."""

# Settings that cannot change what a replayed member does (they bound what the driver keeps
# for its application, or how often a signature check is repeated).
_REPLAY_NEUTRAL = frozenset({"deliveries_retained_max", "deliveries_retained_bytes_max",
                             "verify_cache_entries_max"})


def identity_of(*, cluster_id: bytes, member: int, public_key: bytes, n: int, f: int,
                brb: str, variant: str, settings: Settings) -> dict[str, object]:
    """The identity a member's data directory records: everything its replay depends on."""
    record: dict[str, object] = {
        "cluster_id": cluster_id.hex(), "member": member, "public_key": public_key.hex(),
        "n": n, "f": f, "brb": brb, "variant": variant,
    }
    for field in attrs.fields(Settings):
        if field.name not in _REPLAY_NEUTRAL:
            record[f"settings.{field.name}"] = getattr(settings, field.name)
    return record

INPUT_SUBMIT, INPUT_RECEIVE, INPUT_TICK = 1, 2, 3
"""Input kinds in the log."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL,
                                   now REAL NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


class InputLog:
    """The append-only input log of one member in ``DATA_DIR/inputs.sqlite`` (WAL mode)."""

    def __init__(self, data_dir: str | os.PathLike[str], *, identity: Identity) -> None:
        """Open (or create) the log; ``identity`` (see :func:`identity_of`) must match the
        one the directory was created with, else :class:`ConfigError` naming the first field
        that differs. So is a directory that cannot be created or a file that is not a usable
        SQLite database; the message names it."""
        directory = Path(data_dir)
        self.path = directory / "inputs.sqlite"
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"data directory {directory} cannot be created: {exc.strerror or exc}"
            ) from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"input log {self.path} cannot be opened: {exc}") from None
        try:
            # SQLite reads a file only when it must: a file that is not a database may pass
            # connect() and fail at any of these.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            encoded = json.dumps(dict(identity), sort_keys=True).encode()
            row = self._db.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('identity', ?)", (encoded,))
        except sqlite3.Error as exc:
            self._db.close()
            raise ConfigError(f"input log {self.path} cannot be used: {exc}") from None
        if row is not None:
            mismatch = _mismatch(row[0], identity)
            if mismatch is not None:
                self._db.close()
                raise ConfigError(f"data directory {directory} {mismatch}")

    def append(self, rows: Sequence[tuple[int, float, bytes]]) -> None:
        """Append ``(kind, now, data)`` rows in one durable transaction (group commit)."""
        if not rows:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO inputs (kind, now, data) VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")

    def replay(self) -> Iterator[tuple[int, float, bytes]]:
        """Every input in the order it was applied.

        Raises :class:`ConfigError` naming the file if the log turns out to be damaged (a
        corrupt page may be met only here, long after the log was opened).
        """
        try:
            cursor = self._db.execute("SELECT kind, now, data FROM inputs ORDER BY seq")
            for kind, now, data in cursor:
                if not isinstance(data, bytes):
                    raise TypeError(f"an input holds {type(data).__name__}, not bytes")
                yield int(kind), float(now), data
        except (sqlite3.Error, TypeError, ValueError) as exc:
            raise ConfigError(f"input log {self.path} cannot be replayed: {exc}") from None

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
                    f"{key}={identity.get(key)!r}: a member replayed under another "
                    f"configuration could contradict what it signed")
    return None
