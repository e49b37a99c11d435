"""The SQLite opener shared by the local stores: directory creation, autocommit, and the pragmas."""

from __future__ import annotations

import sqlite3
import threading
import time
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
        assert pragma(conn, "temp_store") == 2  # MEMORY: no temporary file per savepoint or sort


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


def _fill(conn: sqlite3.Connection, rows: int) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
    for _ in range(rows):  # one commit per row, as the stores write
        conn.execute("INSERT INTO t (body) VALUES (?)", ("x" * 1000,))


def test_the_log_is_checkpointed_in_the_background_not_in_a_commit(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = sqlite.connect(path)
    try:
        sqlite.checkpoint_in_background(conn, path)
        assert pragma(conn, "wal_autocheckpoint") == 0  # no commit of ours stops for a checkpoint
        _fill(conn, 1500)  # ~1.5 MB of rows: past SQLite's 1000-page automatic checkpoint
        deadline = time.monotonic() + 10
        while path.stat().st_size < 1_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Only the checkpointer's connection could have copied the rows from the log into the file.
        assert path.stat().st_size >= 1_000_000
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1500
    finally:
        sqlite.close(conn)
    assert not path.with_name("store.db-wal").exists()  # the last connection's close removed the log
    with closing(sqlite3.connect(path)) as again:
        assert again.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1500


def test_close_lets_go_of_the_file_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = sqlite.connect(path)
    sqlite.checkpoint_in_background(conn, path)
    _fill(conn, 10)
    deadline = time.monotonic() + 10
    while path not in sqlite._CHECKPOINTER._conns and time.monotonic() < deadline:  # until it has checkpointed
        time.sleep(0.01)
    assert path in sqlite._CHECKPOINTER._conns, "the checkpointer never opened its own connection"
    sqlite.close(conn)
    sqlite.close(conn)
    assert not path.with_name("store.db-wal").exists()  # no connection of the checkpointer left open
    assert path not in sqlite._CHECKPOINTER._conns
    path.unlink()  # and nothing of ours recreates it: a window of a few checkpoint turns, by design a wait
    time.sleep(3 * sqlite.CHECKPOINT_INTERVAL_S)
    assert not path.exists()
