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
- `temp_store=MEMORY`: the statement journals of savepoints and the sorters of small queries stay in
  memory instead of a temporary file created and unlinked each time (two per job, 0.3-0.5 ms each on
  this machine's disk); they only ever hold what one transaction changes.
- `cached_statements=CACHED_STATEMENTS` (512, the module's default is 128): a store's queries are
  compiled once and kept; with more distinct statements than the cache holds (IN lists of every
  length, the filters of list queries) each would push out another, compiled again at its next use.
- `foreign_keys=ON` (opt-in): SQLite leaves REFERENCES clauses unenforced unless asked, per
  connection. Only a schema that declares foreign keys asks.
- Checkpoints in the background (opt-in, `checkpoint_in_background`): SQLite's automatic checkpoint
  runs inside the COMMIT that crosses 1000 pages of log, with two fsyncs, on the event loop's thread;
  it was half of what a commit cost on average. With it off, a thread of ours copies the log back into
  the file (a PASSIVE checkpoint: it never blocks a writer or a reader) whenever the log has grown, at
  most CHECKPOINT_INTERVAL_S apart. Durability is the same: a committed write is in the log either way.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

_log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS: Final = 5_000
CACHED_STATEMENTS: Final = 512


def pragmas(*, foreign_keys: bool = False) -> tuple[str, ...]:
    """The PRAGMA statements `configure` runs, in order (see the module docstring for why each)."""
    foreign_keys_on = ("PRAGMA foreign_keys=ON",) if foreign_keys else ()
    return ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", *foreign_keys_on, f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
            "PRAGMA temp_store=MEMORY")


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
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=check_same_thread, cached_statements=CACHED_STATEMENTS
    )
    try:
        configure(conn, foreign_keys=foreign_keys)
    except BaseException:
        conn.close()
        raise
    return conn


# How often the checkpointer looks at the logs it keeps short; a busy node's log grows by what it
# commits in that time (a few MB) before it is copied back and reused from its start.
CHECKPOINT_INTERVAL_S: Final = 1.0


class _Checkpointer:
    """One thread that checkpoints the WAL of registered files, each through a connection of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held while checkpointing, and to change what is registered
        self._files: dict[int, Path] = {}  # id(store's connection) -> its file
        self._conns: dict[Path, sqlite3.Connection] = {}
        self._seen: dict[Path, tuple[int, int]] = {}  # log (mtime_ns, size) at the last checkpoint
        self._thread: threading.Thread | None = None

    def add(self, conn: sqlite3.Connection, path: Path) -> None:
        with self._lock:
            self._files[id(conn)] = path
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
                self._thread.start()

    def remove(self, conn: sqlite3.Connection) -> None:
        """Forget `conn`'s file; its own connection is closed before this returns (not mid-checkpoint)."""
        with self._lock:
            path = self._files.pop(id(conn), None)
            if path is not None and path not in self._files.values():
                own = self._conns.pop(path, None)
                self._seen.pop(path, None)
                if own is not None:
                    own.close()

    def _run(self) -> None:
        stop = threading.Event()
        while not stop.wait(CHECKPOINT_INTERVAL_S):
            with self._lock:
                for path in set(self._files.values()):
                    self._checkpoint(path)

    def _checkpoint(self, path: Path) -> None:
        wal = path.with_name(path.name + "-wal")
        try:
            stat = wal.stat()
        except OSError:
            return
        mark = (stat.st_mtime_ns, stat.st_size)
        if self._seen.get(path) == mark:
            return  # nothing committed since the last checkpoint
        try:
            own = self._conns.get(path)
            if own is None:
                own = self._conns[path] = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            own.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._seen[path] = mark
        except sqlite3.Error as exc:  # the next turn tries again; the log just grows meanwhile
            _log.warning("checkpoint of %s failed: %s", path, exc)


_CHECKPOINTER = _Checkpointer()


def checkpoint_in_background(conn: sqlite3.Connection, path: Path) -> None:
    """Turn off `conn`'s automatic checkpoints and checkpoint `path` from the background thread instead.

    Close such a connection with `close()`, so that the thread lets go of the file first."""
    conn.execute("PRAGMA wal_autocheckpoint=0")
    _CHECKPOINTER.add(conn, path)


def close(conn: sqlite3.Connection) -> None:
    """Close a connection (of checkpoint_in_background or not). The last connection to a file
    checkpoints it and removes its log, as SQLite does."""
    _CHECKPOINTER.remove(conn)
    with contextlib.suppress(sqlite3.ProgrammingError):  # closed already
        conn.close()
