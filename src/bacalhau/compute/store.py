"""Local execution records that survive restarts and lost links: SQLite at `<DataDir>/compute/executions.db`.

One row per execution the node was offered: its ID, job ID, compute state, the Execution as JSON and
timestamps. State changes are conditional updates naming the states they expect to leave, so a late
writer (a finishing task racing a cancel) cannot overwrite a terminal state::

    BidAccepted (queued) --> Running --> Publishing --> Completed
         |                      |            |
         +----------------------+------------+--------> Failed / Cancelled
    BidRejected (never queued)

Calls are synchronous: each is a sub-millisecond local write in WAL mode, and keeping the single
connection on the event loop's thread avoids sharing it across threads.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bacalhau import sqlite
from bacalhau.models.errors import DatastoreError
from bacalhau.models.execution import Execution
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
"""

_COLUMNS = "id, job_id, state, message, execution, create_time, update_time"
TERMINAL_STATES = frozenset(s for s in ExecutionStateType if s.is_terminal)
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
            self._db.close()
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

    def list_active(self) -> list[ExecutionRecord]:
        """Every execution not yet in a terminal state, oldest first."""
        terminal = ",".join(str(int(s)) for s in TERMINAL_STATES)
        rows = self._run(
            f"SELECT {_COLUMNS} FROM executions WHERE state NOT IN ({terminal}) ORDER BY create_time, id", ()
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
        """How many executions are in `state` now."""
        row = self._run("SELECT COUNT(*) FROM executions WHERE state = ?", (int(state),)).fetchone()
        return int(row[0])

    def update_state(
        self,
        execution_id: str,
        new_state: ExecutionStateType,
        *,
        expected: Iterable[ExecutionStateType],
        message: str = "",
        execution: Execution | None = None,
    ) -> bool:
        """Move to `new_state` only if the current state is one of `expected`; True if it moved.

        `execution`, when given, replaces the stored Execution (e.g. with its RunOutput filled in).
        """
        states = [int(s) for s in expected]
        if not states:
            return False
        marks = ",".join("?" for _ in states)
        sql = f"UPDATE executions SET state = ?, message = ?, update_time = ?{', execution = ?' if execution else ''}"
        params: list[object] = [int(new_state), message, time.time_ns()]
        if execution is not None:
            params.append(execution.model_dump_json(by_alias=True))
        cursor = self._run(f"{sql} WHERE id = ? AND state IN ({marks})", (*params, execution_id, *states))
        return cursor.rowcount == 1

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
