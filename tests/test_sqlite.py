"""The SQLite opener shared by the local stores: directory creation, autocommit, and the pragmas."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from bacalhau import sqlite


def pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_connect_creates_the_directory_and_opens_in_wal_autocommit(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    with closing(sqlite.connect(path)) as conn:
        assert path.exists()
        assert conn.isolation_level is None
        assert pragma(conn, "journal_mode") == "wal"
        assert pragma(conn, "synchronous") == 1  # NORMAL
        assert pragma(conn, "busy_timeout") == sqlite.BUSY_TIMEOUT_MS
        assert pragma(conn, "foreign_keys") == 0


def test_foreign_keys_are_enforced_only_when_asked(tmp_path: Path) -> None:
    with closing(sqlite.connect(tmp_path / "fk.db", foreign_keys=True)) as conn:
        assert pragma(conn, "foreign_keys") == 1
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id))")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO child VALUES (1)")


def test_the_connection_stays_on_its_thread_unless_told_otherwise(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def use(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("SELECT 1")
        except sqlite3.ProgrammingError as exc:
            errors.append(exc)

    for check_same_thread in (True, False):
        with closing(sqlite.connect(tmp_path / "t.db", check_same_thread=check_same_thread)) as conn:
            worker = threading.Thread(target=use, args=(conn,))
            worker.start()
            worker.join()
    assert len(errors) == 1  # only the default, thread-checked connection refused


def test_a_file_that_is_not_a_database_raises_sqlite3_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        sqlite.connect(path)
