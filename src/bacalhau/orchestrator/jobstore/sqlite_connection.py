"""One SQLite connection shared by the tasks of an event loop: writer lock, joinable transactions,
and the translation of sqlite3 errors into DatastoreError.

How a store call reaches the file::

    writing() ──> inside an open transaction() of this connection? ──yes──> run in it (no commit)
                      │ no
                      └──> take the lock ─> BEGIN IMMEDIATE ─> run ─> COMMIT   (any exception: ROLLBACK)
    reading() ──> inside an open transaction()? ──yes──> read through it (sees its own writes)
                      │ no
                      └──> take the lock ─> read committed data

The sqlite work of each call is sub-millisecond, so it runs inline on the event loop: a thread hop per
call would cost more than the query. Reads take the lock too because there is one connection: without
it a read could see the uncommitted writes of another task's open transaction. A second process (or
another connection on the same file) is serialised by SQLite's own file lock and busy timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from bacalhau.models.errors import BadRequestError, DatastoreError
from bacalhau.orchestrator.jobstore import schema

COMPONENT = "JobStore"
_log = logging.getLogger(__name__)
_OPEN_HINT = (
    "check that the directory is writable and the file is a SQLite job store; "
    "move a damaged file aside to start with an empty store"
)


@dataclass(eq=False)
class _Transaction:
    owner: SQLiteConnection
    open: bool = True
    # Run once the transaction has committed (never on rollback): what others may now read.
    on_commit: list[Callable[[], None]] = field(default_factory=list)


# The transactions open in this context. Tasks started inside a transaction inherit the context and
# join the transaction while it is open; once it has ended they run their own.
_ACTIVE: ContextVar[tuple[_Transaction, ...]] = ContextVar("bacalhau_sqlite_jobstore_tx", default=())


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatastoreError(
            f"cannot create the job store directory {path.parent}: {exc.strerror or exc}",
            hint=_OPEN_HINT,
        ) from exc
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (the sqlite3 module's implicit
        # transactions would begin DEFERRED and could fail to upgrade to a write lock mid-way).
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise DatastoreError(f"cannot open the job store {path}: {exc}", hint=_OPEN_HINT) from exc
    try:
        schema.configure(conn)
        schema.migrate(conn)
    except schema.SchemaTooNewError as exc:
        conn.close()
        raise DatastoreError(
            f"cannot open the job store {path}: {exc}",
            hint="upgrade bacalhau-py, or use another data directory",
        ) from exc
    except sqlite3.Error as exc:
        conn.close()
        raise DatastoreError(f"cannot open the job store {path}: {exc}", hint=_OPEN_HINT) from exc
    return conn


class SQLiteConnection:
    """An open SQLite file plus the lock and transaction bookkeeping that make it safe to share."""

    def __init__(self, *, path: Path) -> None:
        """Open (creating if needed) the database and migrate it. DatastoreError on failure."""
        self.path = path
        self._lock = asyncio.Lock()
        self._savepoints = itertools.count()
        self._conn: sqlite3.Connection | None = _connect(path)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """An atomic transaction; inside another open one of this connection, joins it as a savepoint."""
        if self._joined():
            async with self._savepoint():
                yield
            return
        async with self._lock:
            conn = self._connection()
            tx = _Transaction(self)
            token = _ACTIVE.set((*_ACTIVE.get(), tx))
            try:
                with self.translated():
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    # The original error says more than a failed rollback would.
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                try:
                    with self.translated():
                        conn.execute("COMMIT")
                except DatastoreError:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            finally:
                tx.open = False
                _ACTIVE.reset(token)
            for callback in tx.on_commit:
                try:
                    callback()
                except Exception:  # a listener's bug must not undo or fail a committed write
                    _log.exception("job store commit listener failed")

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the open transaction of this connection commits (dropped on rollback).

        Only inside writing()/transaction(): outside one there is nothing to wait for.
        """
        for tx in _ACTIVE.get():
            if tx.owner is self and tx.open:
                tx.on_commit.append(callback)
                return
        raise RuntimeError("after_commit() outside a transaction of this connection")

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        # A nested transaction is a savepoint: if it fails, only its own writes are undone, so an
        # outer transaction that catches the error never commits half of a store call.
        conn = self._connection()
        name = f"nested_{next(self._savepoints)}"
        with self.translated():
            conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        with self.translated():
            conn.execute(f"RELEASE {name}")

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[sqlite3.Connection]:
        """The raw connection inside a (possibly joined) transaction, with errors translated."""
        async with self.transaction():
            with self.translated():
                yield self._connection()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[sqlite3.Connection]:
        """The raw connection for reads: through the open transaction if any, else under the lock."""
        if self._joined():
            with self.translated():
                yield self._connection()
            return
        async with self._lock:
            with self.translated():
                yield self._connection()

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turn sqlite3 errors into DatastoreError (and unstorable text into BadRequestError)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise DatastoreError(
                f"job store {self.path}: {exc}",
                hint="check free disk space and that the file is writable; the operation was rolled back",
                # Locked/busy/disk-full are OperationalErrors: a retry may succeed.
                retryable=isinstance(exc, sqlite3.OperationalError),
            ) from exc
        except UnicodeEncodeError as exc:
            raise BadRequestError(
                f"cannot store text that is not valid Unicode: {exc.reason}", component=COMPONENT
            ) from exc

    async def close(self) -> None:
        """Close the file once any transaction in progress has ended. Idempotent."""
        if self._joined():
            # Waiting for the lock our own transaction holds would never end.
            raise DatastoreError(f"cannot close job store {self.path} inside one of its transactions")
        async with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _joined(self) -> bool:
        return any(tx.owner is self and tx.open for tx in _ACTIVE.get())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DatastoreError(
                f"job store {self.path} is closed", hint="the store was used after close(); this is a bug"
            )
        return self._conn
