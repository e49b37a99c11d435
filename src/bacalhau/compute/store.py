"""Local execution records that survive restarts and lost links: SQLite at `<DataDir>/compute/executions.db`.

One row per execution the node was offered: its ID, job ID, compute state, the Execution as JSON and
timestamps. State changes are conditional updates naming the states they expect to leave, so a late
writer (a finishing task racing a cancel) cannot overwrite a terminal state::

    BidAccepted (queued) --> Running --> Publishing --> Completed    (Publishing: tasks with a publisher)
         |                      |            |
         +----------------------+------------+--------> Failed / Cancelled
    BidRejected (never queued)

Calls are synchronous: each is a sub-millisecond local write in WAL mode, and keeping the single
connection on the event loop's thread avoids sharing it across threads.

Results retention (retention.py) prunes the records of executions that ended long ago, a batch per
call (`ended_before`, `delete_ended`), and counts them per state in `pruned`, so that `count` of a
terminal state never goes down. Schema changes are additive (`IF NOT EXISTS`), applied at every open:
a store written by an earlier version gains the indexes and the table on its first open.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bacalhau import sqlite
from bacalhau.models.errors import DatastoreError
from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.job import SpecConfig
from bacalhau.models.state import ExecutionStateType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    state       INTEGER NOT NULL,
    message     TEXT NOT NULL DEFAULT '',
    execution   TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_state ON executions (state);
CREATE INDEX IF NOT EXISTS executions_update_time ON executions (update_time, id);
CREATE INDEX IF NOT EXISTS executions_published_cid ON executions (json_extract(execution, '$.PublishedResult.Params.CID'));
CREATE TABLE IF NOT EXISTS pruned (
    state INTEGER PRIMARY KEY,
    count INTEGER NOT NULL
);
"""

_COLUMNS = "id, job_id, state, message, execution, create_time, update_time"
# The CID an ipfs PublishedResult names (Bacalhau's one param); written exactly as the index above, so
# that queries use the index.
_PUBLISHED_CID = "json_extract(execution, '$.PublishedResult.Params.CID')"
TERMINAL_STATES = frozenset(s for s in ExecutionStateType if s.is_terminal)
_TERMINAL = ",".join(str(int(s)) for s in sorted(TERMINAL_STATES))
# Bound parameters per query, well under SQLite's limit on host parameters.
_IDS_PER_QUERY = 500


@dataclass(frozen=True)
class ExecutionRecord:
    """What the node remembers about one execution. Times are Unix nanoseconds."""

    execution_id: str
    job_id: str
    state: ExecutionStateType
    message: str
    execution: Execution
    create_time_ns: int
    update_time_ns: int


@dataclass(frozen=True)
class EndedRecord:
    """An execution in a terminal state, as retention needs it: when it ended (Unix ns) and where its
    results were published (None when they were not)."""

    execution_id: str
    state: ExecutionStateType
    end_time_ns: int
    published_result: SpecConfig | None


class ExecutionStore:
    """The compute node's execution records. Open before use; close when the node stops."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> bool:
        """Open (creating if needed) the database; return True if it already existed. Idempotent."""
        existed = self.path.exists()
        if self._db is not None:
            return existed
        try:
            db = sqlite.connect(self.path)
            db.executescript(_SCHEMA)
            sqlite.checkpoint_in_background(db, self.path)
        except sqlite3.Error as exc:
            raise DatastoreError(
                f"cannot open the compute execution store {self.path}: {exc}",
                component="ComputeStore",
                hint="check that the DataDir is writable and not used by another node process",
            ) from exc
        self._db = db
        return existed

    def close(self) -> None:
        """Close the database. Idempotent."""
        if self._db is not None:
            sqlite.close(self._db)
            self._db = None

    def create(self, execution: Execution, state: ExecutionStateType, message: str = "") -> bool:
        """Record a new execution; False (and no change) if the ID is already known."""
        now = time.time_ns()
        cursor = self._run(
            f"INSERT OR IGNORE INTO executions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (execution.id, execution.job_id, int(state), message, execution.model_dump_json(by_alias=True), now, now),
        )
        return cursor.rowcount == 1

    def get(self, execution_id: str) -> ExecutionRecord | None:
        """The record of an execution, or None."""
        row = self._run(f"SELECT {_COLUMNS} FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return None if row is None else _record(row)

    def state_of(self, execution_id: str) -> ExecutionStateType | None:
        """The execution's state (its column: nothing parsed), or None for an unknown execution."""
        row = self._run("SELECT state FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return None if row is None else ExecutionStateType(row[0])

    def job_type(self, execution_id: str) -> str | None:
        """The type of the execution's job ("" when it carries no job), None for an unknown execution.

        Read by SQLite from the stored JSON: every report names it, and parsing the whole execution
        (with its job) once per report cost more than the report."""
        row = self._run("SELECT json_extract(execution, '$.Job.Type') FROM executions WHERE id = ?", (execution_id,))
        found = row.fetchone()
        return None if found is None else str(found[0] or "")

    def list_active(self) -> list[ExecutionRecord]:
        """Every execution not yet in a terminal state, oldest first."""
        rows = self._run(
            f"SELECT {_COLUMNS} FROM executions WHERE state NOT IN ({_TERMINAL}) ORDER BY create_time, id", ()
        )
        return [_record(row) for row in rows.fetchall()]

    def end_times(self, execution_ids: Iterable[str]) -> dict[str, int | None]:
        """For each of `execution_ids` the store knows: when it reached a terminal state (Unix ns), or
        None while it is still active. IDs the store does not know are left out."""
        ids = list(execution_ids)
        out: dict[str, int | None] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            marks = ",".join("?" for _ in chunk)
            rows = self._run(f"SELECT id, state, update_time FROM executions WHERE id IN ({marks})", tuple(chunk))
            for execution_id, state, update_time in rows.fetchall():
                ended = ExecutionStateType(int(state)) in TERMINAL_STATES
                out[str(execution_id)] = int(update_time) if ended else None
        return out

    def count(self, state: ExecutionStateType) -> int:
        """How many executions are in `state` now, those of it pruned included (a terminal state is final,
        so that `jobsCompleted` does not go down as records expire)."""
        row = self._run(
            "SELECT (SELECT COUNT(*) FROM executions WHERE state = ?)"
            " + COALESCE((SELECT count FROM pruned WHERE state = ?), 0)",
            (int(state), int(state)),
        ).fetchone()
        return int(row[0])

    def record_count(self) -> int:
        """How many execution records the store holds now."""
        return int(self._run("SELECT COUNT(*) FROM executions", ()).fetchone()[0])

    def pruned_count(self) -> int:
        """How many records `delete_ended` has deleted, ever."""
        return int(self._run("SELECT COALESCE(SUM(count), 0) FROM pruned", ()).fetchone()[0])

    def ended_before(
        self, cutoff_ns: int, *, after: tuple[int, str] | None = None, limit: int = _IDS_PER_QUERY
    ) -> list[EndedRecord]:
        """Up to `limit` executions that reached a terminal state at or before `cutoff_ns`, in the order
        they ended, starting after `after` (the end time and ID of the last one a previous call gave)."""
        since_ns, since_id = after or (-1, "")
        rows = self._run(
            "SELECT id, state, update_time, json_extract(execution, '$.PublishedResult') FROM executions"
            f" WHERE state IN ({_TERMINAL}) AND update_time <= ? AND (update_time, id) > (?, ?)"
            " ORDER BY update_time, id LIMIT ?",
            (cutoff_ns, since_ns, since_id, limit),
        )
        return [
            EndedRecord(
                execution_id=str(execution_id),
                state=ExecutionStateType(int(state)),
                end_time_ns=int(update_time),
                published_result=SpecConfig.model_validate_json(published) if published else None,
            )
            for execution_id, state, update_time, published in rows.fetchall()
        ]

    def delete_ended(self, execution_ids: Collection[str], *, cutoff_ns: int) -> int:
        """Delete the records of `execution_ids` that reached a terminal state at or before `cutoff_ns`
        (an active record is never deleted) and count them in `pruned`; return how many went.

        One short write transaction per _IDS_PER_QUERY IDs, so that a large prune never holds the
        write lock for long.
        """
        ids = list(dict.fromkeys(execution_ids))
        deleted = 0
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            where = f"id IN ({','.join('?' for _ in chunk)}) AND state IN ({_TERMINAL}) AND update_time <= ?"
            params = (*chunk, cutoff_ns)
            with self._transaction():
                counts = self._run(f"SELECT state, COUNT(*) FROM executions WHERE {where} GROUP BY state", params)
                by_state = [(int(state), int(n)) for state, n in counts.fetchall()]
                self._run(f"DELETE FROM executions WHERE {where}", params)
                for state, n in by_state:
                    self._run(
                        "INSERT INTO pruned (state, count) VALUES (?, ?)"
                        " ON CONFLICT (state) DO UPDATE SET count = count + excluded.count",
                        (state, n),
                    )
            deleted += sum(n for _, n in by_state)
        return deleted

    def published_cids_in_use(self, cids: Collection[str], *, excluding: Collection[str]) -> set[str]:
        """Of `cids`, those named as the published CID of an execution whose ID is not in `excluding`."""
        named = self._published_cid_counts("WHERE " + _PUBLISHED_CID + " IN ({marks})", cids)
        among_excluded = self._published_cid_counts("WHERE id IN ({marks})", excluding)
        wanted = set(cids)
        return {cid for cid, n in named.items() if cid in wanted and n > among_excluded.get(cid, 0)}

    def published_cid_count(self) -> int:
        """How many distinct CIDs the executions on record published (what their IPFS pins hold)."""
        sql = f"SELECT COUNT(DISTINCT {_PUBLISHED_CID}) FROM executions WHERE {_PUBLISHED_CID} IS NOT NULL"
        return int(self._run(sql, ()).fetchone()[0])

    def update_state(
        self,
        execution_id: str,
        new_state: ExecutionStateType,
        *,
        expected: Iterable[ExecutionStateType],
        message: str = "",
        run_output: RunCommandResult | None = None,
        published_result: SpecConfig | None = None,
    ) -> bool:
        """Move to `new_state` only if the current state is one of `expected`; True if it moved.

        `run_output` and `published_result`, when given, are written into the stored Execution as a
        patch in SQL (its RunOutput, PublishedResult): the Execution carries its whole job, which is
        not serialised again for the two fields a finished run adds.
        """
        states = [int(s) for s in expected]
        if not states:
            return False
        marks = ",".join("?" for _ in states)
        params: list[object] = [int(new_state), message, time.time_ns()]
        patches = []
        for key, value in (("RunOutput", run_output), ("PublishedResult", published_result)):
            if value is not None:
                patches.append(f"'$.{key}', json(?)")
                params.append(value.model_dump_json(by_alias=True))
        patch = f", execution = json_set(execution, {', '.join(patches)})" if patches else ""
        cursor = self._run(
            f"UPDATE executions SET state = ?, message = ?, update_time = ?{patch} WHERE id = ? AND state IN ({marks})",
            (*params, execution_id, *states),
        )
        return cursor.rowcount == 1

    def _published_cid_counts(self, where: str, values: Collection[str]) -> dict[str, int]:
        """{CID: how many executions name it} over the rows `where` selects, `{marks}` bound to `values`."""
        items = list(dict.fromkeys(values))
        counts: dict[str, int] = {}
        for start in range(0, len(items), _IDS_PER_QUERY):
            chunk = items[start : start + _IDS_PER_QUERY]
            clause = where.format(marks=",".join("?" for _ in chunk))
            rows = self._run(
                f"SELECT {_PUBLISHED_CID}, COUNT(*) FROM executions {clause} AND {_PUBLISHED_CID} IS NOT NULL"
                f" GROUP BY {_PUBLISHED_CID}",
                tuple(chunk),
            )
            for cid, n in rows.fetchall():
                counts[str(cid)] = counts.get(str(cid), 0) + int(n)
        return counts

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._run("BEGIN IMMEDIATE", ())
        try:
            yield
        except BaseException:
            self._run("ROLLBACK", ())
            raise
        self._run("COMMIT", ())

    def _run(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        if self._db is None:
            raise DatastoreError("the compute execution store is not open", component="ComputeStore")
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise DatastoreError(f"compute execution store: {exc}", component="ComputeStore") from exc


def _record(row: tuple[object, ...]) -> ExecutionRecord:
    execution_id, job_id, state, message, execution_json, create_time, update_time = row
    return ExecutionRecord(
        execution_id=str(execution_id),
        job_id=str(job_id),
        state=ExecutionStateType(int(str(state))),
        message=str(message),
        execution=Execution.model_validate_json(str(execution_json)),
        create_time_ns=int(str(create_time)),
        update_time_ns=int(str(update_time)),
    )
