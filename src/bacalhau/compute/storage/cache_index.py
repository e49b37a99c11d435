"""The input cache's index: one SQLite row per complete entry (see input_cache.py for the flow).

SQLite rather than a JSON file written atomically: every hit moves one entry's `last_used`, and a
single-row UPDATE in WAL mode is one small append, where a JSON index would be rewritten whole (and
fsynced) at every staging. The opener is bacalhau/sqlite.py's, so the index shares the other stores'
durability settings: a commit survives the process being killed.

A row is written only once its entry's folder has been renamed into place, so a row always names a
complete entry; the cache reconciles rows and folders when it opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bacalhau import sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key        TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    validator  TEXT NOT NULL,
    entry_id   TEXT NOT NULL UNIQUE,
    size_bytes INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    last_used  REAL NOT NULL
)
"""
_COLUMNS = "key, label, validator, entry_id, size_bytes, sha256, last_used"


@dataclass(frozen=True)
class CacheEntry:
    """One cached input: the identity `key` of its source, a `label` for people (a URL without its
    password), the `validator` it was fetched under (ETag, Last-Modified, S3 ETags), the folder name
    `entry_id`, its size, the SHA-256 of its single file when known ('' otherwise), and when it was last
    staged (seconds since the epoch)."""

    key: str
    label: str
    validator: str
    entry_id: str
    size_bytes: int
    sha256: str
    last_used: float


class CacheIndex:
    """The rows of `<cache>/index.db`. Raises sqlite3.Error / OSError; the cache translates them."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite.connect(path)
        self._conn.execute(_SCHEMA)

    def get(self, key: str) -> CacheEntry | None:
        """The entry of `key`, if any."""
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE key = ?", (key,)).fetchone()
        return _entry(row) if row is not None else None

    def by_last_use(self) -> list[CacheEntry]:
        """Every entry, least recently used first (the eviction order)."""
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY last_used, rowid").fetchall()
        return [_entry(row) for row in rows]

    def newest(self, limit: int) -> list[CacheEntry]:
        """The `limit` most recently used entries, newest first (what the node reports holding)."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM entries ORDER BY last_used DESC, rowid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_entry(row) for row in rows]

    def totals(self) -> tuple[int, int]:
        """(number of entries, their total size in bytes)."""
        count, size = self._conn.execute("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM entries").fetchone()
        return int(count), int(size)

    def put(self, entry: CacheEntry) -> None:
        """Insert `entry`, replacing the row its key had (one statement: atomic)."""
        self._conn.execute(
            f"INSERT OR REPLACE INTO entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry.key,
                entry.label,
                entry.validator,
                entry.entry_id,
                entry.size_bytes,
                entry.sha256,
                entry.last_used,
            ),
        )

    def touch(self, key: str, when: float) -> None:
        """Record that `key`'s entry was staged at `when`."""
        self._conn.execute("UPDATE entries SET last_used = ? WHERE key = ?", (when, key))

    def remove(self, entry_id: str) -> None:
        """Forget the entry stored in folder `entry_id` (nothing if already gone)."""
        self._conn.execute("DELETE FROM entries WHERE entry_id = ?", (entry_id,))

    def close(self) -> None:
        """Close the database. Idempotent."""
        self._conn.close()


def _entry(row: tuple[Any, ...]) -> CacheEntry:
    key, label, validator, entry_id, size_bytes, sha256, last_used = row
    return CacheEntry(
        key=str(key),
        label=str(label),
        validator=str(validator),
        entry_id=str(entry_id),
        size_bytes=int(size_bytes),
        sha256=str(sha256),
        last_used=float(last_used),
    )
