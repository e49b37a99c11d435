"""One SQLite connection shared by the tasks of an event loop: writer lock, joinable transactions,
and the translation of sqlite3 errors into DatastoreError.

How a store call reaches the file::

    writing() ──> inside an open transaction() of this connection? ──yes──> run in it (no commit, no
                      │ no                                             savepoint: see `writing`)
                      └──> take the lock ─> BEGIN IMMEDIATE (unless a group is open) ─> SAVEPOINT (not
                           for the group's first) ─> run
                           ─> RELEASE (any exception: ROLLBACK TO, only its own writes undone)
                           ─> alone on an idle store (no COMMIT in the last ms, no burst of
                              callbacks ready in the loop)? ──yes──> COMMIT, return
                           ─> else join the open group; its flush, after a turn of the event loop (more
                              turns while more join), takes the lock behind queued writers and COMMITs
                           ─> return once that COMMIT is done
    reading() ──> inside an open transaction()? ──yes──> read through it (sees its own writes)
                      │ no
                      └──> take the lock ─> COMMIT an open group first ─> read committed data

Group commit is what lets a burst of submissions share one COMMIT (the costly part of a small write)
without any of them being answered before its writes are on disk.

The sqlite work of each call is sub-millisecond, so it runs inline on the event loop: a thread hop per
call would cost more than the query. Reads take the lock too because there is one connection: without
it a read could see the uncommitted writes of another task's open transaction. They must also see every
write whose caller has been told of it in any way (a ConflictError from a check inside a group counts):
a second, read-only connection that saw only committed data was tried, and let a second submission of a
job's Name miss the first one still waiting for its COMMIT (a 409 instead of an update). A second
process (or another connection on the same file) is serialised by SQLite's own file lock and busy timeout.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from bacalhau import sqlite
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
    """One level of transaction() in a task: the outermost, or one nested in it (a savepoint)."""

    owner: SQLiteConnection
    open: bool = True
    # Run once the transaction has committed (never on rollback): what others may now read.
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    # A store call inside failed after writing, and its writes could not be undone on their own:
    # this level must not end as if it had succeeded (see `writing`).
    partial: bool = False


# Transactions sharing one COMMIT at most: bounds how long the first of a long queue waits for it.
MAX_GROUP = 256
# Turns of the event loop a group waits for more members while they keep coming.
MAX_FLUSH_TURNS = 8
# A transaction finishing within this long of the last COMMIT finds the store busy and waits to share
# the next one; after a quieter spell it commits at once (a lone job's steps are milliseconds apart).
BUSY_WINDOW_S = 0.001
# Callbacks ready in one turn of the loop that make a burst: a lone job's steps leave a few at most.
BURST_READY = 8


def _more_ready() -> bool:
    """Whether a burst of callbacks waits to run in this turn of the event loop (requests being handled
    by the dozen, whose transactions would share the next COMMIT). Read from asyncio's own loop; a loop
    that does not show it counts as idle."""
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    return ready is not None and len(ready) >= BURST_READY


@dataclass(eq=False)
class _Group:
    """Transactions whose writes wait in one open SQLite transaction for a shared COMMIT."""

    committed: asyncio.Future[None]
    members: int = 0
    callbacks: list[Callable[[], None]] = field(default_factory=list)
    flush_scheduled: bool = False


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
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, cached_statements=sqlite.CACHED_STATEMENTS
        )
    except sqlite3.Error as exc:
        raise DatastoreError(f"cannot open the job store {path}: {exc}", hint=_OPEN_HINT) from exc
    try:
        schema.configure(conn)
        schema.migrate(conn)
        sqlite.checkpoint_in_background(conn, path)
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
        self._savepoint_depth = 0  # savepoints open now, on this connection
        self._conn: sqlite3.Connection | None = _connect(path)
        self._group: _Group | None = None  # BEGUN, its members' bodies done, not yet committed
        self._flushes: set[asyncio.Task[None]] = set()
        self._last_commit_s = float("-inf")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """An atomic transaction; inside another open one of this connection, joins it as a savepoint.

        Group commit: when the store is busy (a COMMIT less than BUSY_WINDOW_S ago, or BURST_READY
        callbacks waiting in this turn of the loop: requests handled by the dozen, each doing more
        than BUSY_WINDOW_S of work before its transaction, which the time alone missed), transactions of
        the same turns of the event loop, and those queued for the lock, share one COMMIT; a lone one
        on an idle store commits at once. Each runs alone (under the lock), and each but the first of a
        group in a savepoint of the open SQLite transaction, so a failing one undoes only its own writes.
        Every caller returns only once its writes are committed, so nothing is acknowledged that a kill -9
        could take back."""
        if self._joined():
            nested = _Transaction(self)
            token = _ACTIVE.set((*_ACTIVE.get(), nested))
            try:
                with self._savepoint():
                    yield
                    self._refuse_partial(nested)
            finally:
                nested.open = False
                _ACTIVE.reset(token)
            return
        await self._lock.acquire()
        group: _Group | None = None
        try:
            conn = self._connection()
            if self._group is None:
                with self.translated():
                    conn.execute("BEGIN IMMEDIATE")
                self._group = _Group(asyncio.get_running_loop().create_future())
            group = self._group
            tx = _Transaction(self)
            token = _ACTIVE.set((*_ACTIVE.get(), tx))
            try:
                # The first of a group needs no savepoint: if it fails, ROLLBACK ends the SQLite
                # transaction, which holds nothing of anyone else's. A lone write (an idle store) is
                # always the first, and skips two statements.
                with self._savepoint() if group.members else nullcontext():
                    yield
                    self._refuse_partial(tx)
            except BaseException:
                if group.members == 0:  # nothing of anyone else's to keep: end the SQLite transaction
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    self._group = None
                raise
            finally:
                tx.open = False
                _ACTIVE.reset(token)
            group.members += 1
            group.callbacks.extend(tx.on_commit)
            now = time.monotonic()
            busy = now - self._last_commit_s < BUSY_WINDOW_S or _more_ready()
            if group.members >= MAX_GROUP or (group.members == 1 and not busy):
                # Alone, and the store was idle: nobody is likely to join, and a turn of a loop that
                # is busy with other work would only delay this commit.
                self._commit_group()
            elif not group.flush_scheduled:
                group.flush_scheduled = True
                flush = asyncio.create_task(self._flush(group))
                self._flushes.add(flush)
                flush.add_done_callback(self._flushes.discard)
        finally:
            self._lock.release()
        await asyncio.shield(group.committed)

    async def _flush(self, group: _Group) -> None:
        """Commit `group` once no more transactions are joining it.

        It yields to the event loop first: transactions that run in the same turn of the loop (a burst
        of requests) join, and it keeps yielding while they do, up to MAX_FLUSH_TURNS. A lone one costs
        one turn of the loop. Then it takes the lock, behind any queued writers, which join too."""
        for _ in range(MAX_FLUSH_TURNS):
            before = group.members
            await asyncio.sleep(0)
            if group.members == before:
                break
        await self._lock.acquire()
        try:
            if self._group is group:
                self._commit_group()
        finally:
            self._lock.release()

    def _commit_group(self) -> None:
        """COMMIT the open group (the lock is held) and tell its members; a failed COMMIT fails them all."""
        group, self._group = self._group, None
        if group is None:
            return
        try:
            with self.translated():
                self._connection().execute("COMMIT")
        except DatastoreError as exc:
            with suppress(sqlite3.Error):
                self._connection().execute("ROLLBACK")
            group.committed.set_exception(exc)
            return
        self._last_commit_s = time.monotonic()
        group.committed.set_result(None)
        for callback in group.callbacks:
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

    def _refuse_partial(self, tx: _Transaction) -> None:
        if tx.partial:
            raise DatastoreError(
                f"job store {self.path}: a store call failed after writing part of its change, and the"
                " failure was caught inside the transaction; the transaction was rolled back",
                hint="this is a bug: wrap a store call whose failure is handled in its own transaction()",
            )

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        # A nested transaction is a savepoint: if it fails, only its own writes are undone, so an
        # outer transaction that catches the error never commits half of a store call.
        #
        # Named by depth, not by a counter: the sqlite3 module caches 128 compiled statements, and a
        # fresh name per savepoint (about 40 per job) made every SAVEPOINT/RELEASE a new statement
        # that pushed the store's own queries out of that cache, to be compiled again.
        conn = self._connection()
        self._savepoint_depth += 1
        name = f"nested_{self._savepoint_depth}"
        try:
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
        finally:
            self._savepoint_depth -= 1

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[sqlite3.Connection]:
        """The raw connection inside a (possibly joined) transaction, with errors translated.

        Inside an open transaction a store call takes no savepoint of its own (two statements of
        each call; most calls of a job's steps are nested). The store's calls make every check (and
        number their history events) before their first write, so a refused call has nothing to undo.
        One that fails after writing anyway (a storage error) marks the innermost transaction around
        it, which then rolls back whole, even if the failure is caught: it never commits half of a
        store call. A caller that must survive even that nests the call in its own transaction(),
        whose savepoint undoes just that call.
        """
        if not self._joined():
            async with self.transaction():
                with self.translated():
                    yield self._connection()
            return
        conn = self._connection()
        changes = conn.total_changes  # rows written on this connection so far (triggers' included)
        try:
            with self.translated():
                yield conn
        except BaseException:
            # Or the error ended the whole SQLite transaction (disk full, I/O error): nothing must go on
            # as if inside it.
            if conn.total_changes != changes or not conn.in_transaction:
                innermost = next(tx for tx in reversed(_ACTIVE.get()) if tx.owner is self and tx.open)
                innermost.partial = True
            raise

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[sqlite3.Connection]:
        """The raw connection for reads: through the open transaction if any, else under the lock."""
        if self._joined():
            with self.translated():
                yield self._connection()
            return
        await self._lock.acquire()
        try:
            # Others' finished writes are committed before anyone reads them (a read never sees
            # what a failed COMMIT could still take back).
            self._commit_group()
            with self.translated():
                yield self._connection()
        finally:
            self._lock.release()

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
            self._commit_group()
            if self._conn is not None:
                sqlite.close(self._conn)
                self._conn = None

    def _joined(self) -> bool:
        return any(tx.owner is self and tx.open for tx in _ACTIVE.get())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DatastoreError(
                f"job store {self.path} is closed", hint="the store was used after close(); this is a bug"
            )
        return self._conn
