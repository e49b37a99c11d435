"""How a node's local SQLite stores open their files: one connection, autocommit, WAL.

Shared by the stores that live in different packages (the transport outbox, the compute execution
store, the orchestrator node store) so that they agree on durability and locking. It imports nothing
of ours and raises what sqlite3 and the filesystem raise: each store translates errors into its own
DatastoreError, with its own component and hint, at its boundary.

Why each setting:

- `isolation_level=None` (autocommit): the stores issue `BEGIN IMMEDIATE ... COMMIT` themselves. The
  sqlite3 module's implicit transactions begin DEFERRED and can fail to upgrade to a write lock
  midway through.
- `journal_mode=WAL`: readers never block the writer, and a commit is one append to the log instead
  of a rewrite of pages. It is a property of the file, so every connection to it must agree.
- `synchronous=NORMAL`: in WAL mode a commit survives the process being killed; only an OS crash or
  a power cut can lose the last few commits, and never corrupts the file. FULL would add an fsync to
  every commit, on the event loop's thread.
- `busy_timeout` (5 s): how long a writer waits for another connection's write lock before failing
  with "database is locked". Waiting blocks the event loop (the stores run inline), so it stays short:
  contention only comes from a second process on the same file. It is also the sqlite3 module's
  default (`connect(timeout=5.0)`), stated here so that it does not depend on that default.
- `foreign_keys=ON` (opt-in): SQLite leaves REFERENCES clauses unenforced unless asked, per
  connection. Only a schema that declares foreign keys asks.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

BUSY_TIMEOUT_MS: Final = 5_000


def pragmas(*, foreign_keys: bool = False) -> tuple[str, ...]:
    """The PRAGMA statements `configure` runs, in order (see the module docstring for why each)."""
    foreign_keys_on = ("PRAGMA foreign_keys=ON",) if foreign_keys else ()
    return ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", *foreign_keys_on, f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def configure(conn: sqlite3.Connection, *, foreign_keys: bool = False) -> None:
    """Apply the pragmas to an open connection. Raises sqlite3.Error. Idempotent."""
    for statement in pragmas(foreign_keys=foreign_keys):
        conn.execute(statement)


def connect(path: Path, *, check_same_thread: bool = True, foreign_keys: bool = False) -> sqlite3.Connection:
    """Open (creating it and its directory if needed) the database at `path`, in autocommit mode, configured.

    `check_same_thread=False` lets another thread use the connection (the caller then serialises the
    calls). Raises OSError if the directory cannot be created and sqlite3.Error if the file cannot be
    opened or configured; the connection is closed before a configuration error propagates.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    try:
        configure(conn, foreign_keys=foreign_keys)
    except BaseException:
        conn.close()
        raise
    return conn
