"""SQLiteJobStore: the JobStore on one SQLite file in WAL mode (schema in `schema.py`).

Construction is synchronous and cheap: `SQLiteJobStore(path=..., clock=...)` creates the parent
directories and the file, sets the pragmas and applies pending migrations before returning, so a bad
path fails at startup with a DatastoreError rather than at the first request. `await store.close()`
when done. Locking and transactions are described in `sqlite_connection.py`.

The store fills what only it can know, and never mutates the objects it is given: zero times become
the clock's now, zero Version/Revision become 1, an empty Namespace becomes `default` (jobs) or the
job's (executions), and history events get their SeqNum, Time and Event.Timestamp.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from bacalhau.models import selector
from bacalhau.models.constants import DEFAULT_NAMESPACE
from bacalhau.models.errors import BadRequestError, ConflictError, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job, JobState
from bacalhau.models.state import EvaluationStatus, ExecutionStateType, JobStateType
from bacalhau.orchestrator.jobstore import schema, sqlite_history, sqlite_rows
from bacalhau.orchestrator.jobstore.base import (
    ExecutionBrief,
    ExecutionQuery,
    ExecutionUpdate,
    HistoryQuery,
    JobBrief,
    JobQuery,
)
from bacalhau.orchestrator.jobstore.schema import JOB_TYPE
from bacalhau.orchestrator.jobstore.sqlite_connection import COMPONENT, SQLiteConnection
from bacalhau.orchestrator.jobstore.sqlite_history import EventDefaults

_TERMINAL_EXEC_STATES = tuple(int(s) for s in ExecutionStateType if s.is_terminal)
_AMBIGUOUS_LIST_MAX = 10


def _names(states: frozenset[Any]) -> str:
    return ", ".join(s.name for s in sorted(states)) or "(none)"


# ExecutionUpdate fields and the stored execution's keys they replace.
_EXECUTION_PATCHES = (
    ("compute_state", "ComputeState"), ("desired_state", "DesiredState"),
    ("run_output", "RunOutput"), ("published_result", "PublishedResult"),
)


def _execution_defaults(execution: Execution) -> EventDefaults:
    return EventDefaults(execution.job_id, execution.job_version, execution.id, execution.node_id)


class SQLiteJobStore:
    """JobStore on a SQLite file. See the module docstring for the transaction and locking model."""

    def __init__(self, *, path: Path, clock: Callable[[], int] = time.time_ns) -> None:
        """Open (creating if needed) the store at `path`; `clock` returns Unix nanoseconds.

        Raises DatastoreError if the directory cannot be created, the file is not a usable SQLite
        database, or it was written by a newer schema.
        """
        self._db = SQLiteConnection(path=path)
        self._clock = clock
        self._history_listeners: list[Callable[[str, bool], None]] = []

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    # ---- transactions -------------------------------------------------------------------------

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Group the calls made inside into one atomic transaction; nesting joins the outer one
        (as a savepoint, so a failed inner part can be caught without committing half of it)."""
        return self._db.transaction()

    async def close(self) -> None:
        """Close the file once any transaction in progress has ended. Idempotent."""
        await self._db.close()

    # ---- jobs ---------------------------------------------------------------------------------

    async def create_job(self, job: Job, events: list[JobHistory]) -> None:
        """Store a new job and its events. Zero Version/Revision become 1, zero times become now and an
        empty Namespace becomes `default`. ConflictError if the ID, or Name in the namespace, exists."""
        if not job.id:
            raise BadRequestError("cannot store a job without an ID", component=COMPONENT)
        async with self._db.writing() as conn:
            now = self._clock()
            job = job.model_copy(
                update={
                    "namespace": job.namespace or DEFAULT_NAMESPACE,
                    "version": job.version or 1,
                    "revision": job.revision or 1,
                    "create_time": job.create_time or now,
                    "modify_time": job.modify_time or now,
                }
            )
            write_history = self._history(conn, events, now, EventDefaults(job.id, job.version), new_job=True)
            sqlite_rows.insert_job(conn, job)
            write_history()

    async def update_job_spec(self, job: Job, events: list[JobHistory]) -> None:
        """Make `job` the current version, keeping the previous one. ConflictError unless job.version
        is above the current version; NotFoundError if the job does not exist. Bumps Revision and
        ModifyTime; an unset CreateTime keeps the job's original one."""
        async with self._db.writing() as conn:
            now = self._clock()
            current = sqlite_rows.load_job(conn, job.id)
            if job.version <= current.version:
                raise ConflictError(
                    f"job {job.id} is at version {current.version}; a new spec needs a higher version,"
                    f" got {job.version}",
                    component=COMPONENT,
                )
            job = job.model_copy(
                update={
                    "namespace": job.namespace or DEFAULT_NAMESPACE,
                    "revision": max(job.revision, current.revision + 1),
                    "create_time": job.create_time or current.create_time,
                    "modify_time": now,
                }
            )
            sqlite_rows.check_name_free(conn, job)  # every refusal before the first write
            write_history = self._history(conn, events, now, EventDefaults(job.id, job.version))
            sqlite_rows.archive_current_version(conn, job.id)
            sqlite_rows.replace_job(conn, job)
            write_history()

    async def get_job(self, job_id: str, version: int = 0) -> Job:
        """The job by exact ID, at `version` (0 = current). NotFoundError if either is absent."""
        async with self._db.reading() as conn:
            return sqlite_rows.load_job(conn, job_id, version)

    async def resolve_job(self, id_or_name: str, namespace: str = "") -> Job:
        """By exact ID, then unique ID prefix (`j-` optional), then exact Name in the namespace.

        An ambiguous prefix that is also a job's exact Name resolves to that job, since the user
        evidently meant the name; otherwise it is a BadRequestError listing the candidates.
        """
        text = id_or_name.strip()
        async with self._db.reading() as conn:
            if not text:
                raise NotFoundError("job not found: (empty ID)", component=COMPONENT)
            row = conn.execute("SELECT data FROM jobs WHERE id = ?", (text,)).fetchone()
            if row is not None:
                return Job.model_validate_json(row[0])
            # One more than we list, to know whether to print "...".
            candidates = sqlite_rows.ids_with_prefix(conn, text, _AMBIGUOUS_LIST_MAX + 1)
            if not text.startswith("j-"):
                prefixed = sqlite_rows.ids_with_prefix(conn, "j-" + text, _AMBIGUOUS_LIST_MAX + 1)
                candidates = sorted({*candidates, *prefixed})
            if len(candidates) == 1:
                return sqlite_rows.load_job(conn, candidates[0])
            by_name = sqlite_rows.job_by_name(conn, text, namespace)
            if by_name is not None:
                return by_name
            if candidates:
                shown = ", ".join(candidates[:_AMBIGUOUS_LIST_MAX])
                more = ", ..." if len(candidates) > _AMBIGUOUS_LIST_MAX else ""
                raise BadRequestError(
                    f"multiple jobs match {text!r}: {shown}{more}",
                    component=COMPONENT,
                    hint="use a longer prefix or the full job ID",
                )
            raise NotFoundError(f"job not found: {text}", component=COMPONENT)

    async def job_brief(self, job_id: str) -> JobBrief | None:
        """Columns and two JSON fields (Type, Priority), not the stored job with its whole spec."""
        async with self._db.reading() as conn:
            return sqlite_rows.load_job_brief(conn, job_id)

    async def job_progress(self, job_id: str) -> tuple[JobStateType, int] | None:
        """The job's state column and its newest history SeqNum (the history's primary key), no JSON."""
        async with self._db.reading() as conn:
            row = conn.execute(
                "SELECT state, (SELECT MAX(seq_num) FROM history WHERE job_id = ?1) FROM jobs WHERE id = ?1",
                (job_id,),
            ).fetchone()
        return None if row is None else (JobStateType(row[0]), int(row[1] or 0))

    async def get_job_by_name(self, name: str, namespace: str) -> Job | None:
        """The job with this exact Name in the namespace ("" = `default`), or None."""
        async with self._db.reading() as conn:
            return sqlite_rows.job_by_name(conn, name, namespace)

    async def list_jobs(self, query: JobQuery) -> tuple[list[Job], bool]:
        """A page of jobs (newest first unless query.reverse) and whether more follow it."""
        column = sqlite_rows.order_column(query.order_by)
        selector.validate(query.labels)
        direction = "ASC" if query.reverse else "DESC"
        clauses: list[str] = []
        params: list[object] = []
        if query.namespace not in ("", "*"):
            clauses.append("namespace = ?")
            params.append(query.namespace)
        if query.states:
            clauses.append(f"state IN ({', '.join('?' * len(query.states))})")
            params.extend(query.states)
        if query.job_type:
            clauses.append(f"{JOB_TYPE} = ?")
            params.append(query.job_type.strip().lower())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT labels, data FROM jobs {where} ORDER BY {column} {direction}, rowid {direction}"
        limit, offset = sqlite_rows.page(query.limit, query.offset)
        async with self._db.reading() as conn:
            if not query.labels:
                # Paging in SQL; one extra row tells whether another page exists.
                rows = conn.execute(f"{sql} LIMIT ? OFFSET ?", [*params, limit + 1 if limit > 0 else -1, offset])
                page = [row[1] for row in rows]
            else:
                # Label selectors run in Python, so paging has to follow the filter.
                matching = (
                    d for labels, d in conn.execute(sql, params) if selector.matches(json.loads(labels), query.labels)
                )
                page = []
                for index, data in enumerate(matching):
                    if index >= offset:
                        page.append(data)
                    if limit > 0 and len(page) > limit:
                        break
            has_more = limit > 0 and len(page) > limit
            return [Job.model_validate_json(d) for d in (page[:limit] if has_more else page)], has_more

    async def job_counts(self, completed_since_ns: int, bucket_ns: int) -> tuple[dict[int, int], dict[int, int]]:
        """Jobs by state (kept by triggers: schema v6), and when each job completed since
        `completed_since_ns` (its last modification: a completed job is not modified again)."""
        async with self._db.reading() as conn:
            counts = {int(state): int(n) for state, n in conn.execute("SELECT state, n FROM job_state_counts") if n}
            # Counted inside SQLite over the (state, modify_time) index: no row leaves the database.
            buckets = {
                int(bucket): int(n) for bucket, n in conn.execute(
                    "SELECT (modify_time - ?) / ?, COUNT(*) FROM jobs WHERE state = ? AND modify_time >= ? "
                    "GROUP BY 1",
                    (completed_since_ns, max(1, bucket_ns), int(JobStateType.Completed), completed_since_ns),
                )
            }
        return counts, buckets

    async def list_job_versions(self, job_id: str) -> list[Job]:
        """Every version of the job, oldest first. NotFoundError if the job does not exist."""
        async with self._db.reading() as conn:
            current = sqlite_rows.load_job(conn, job_id)
            rows = conn.execute("SELECT data FROM job_versions WHERE job_id = ? ORDER BY version", (job_id,))
            return [*(Job.model_validate_json(r[0]) for r in rows), current]

    async def update_job_state(
        self,
        job_id: str,
        new_state: JobStateType,
        message: str,
        *,
        expected: frozenset[JobStateType],
        events: list[JobHistory],
        details: dict[str, str] | None = None,
    ) -> None:
        """Move the job to new_state if it is in one of `expected` (an empty set matches nothing, so a
        forgotten expectation cannot resurrect a finished job). ConflictError names the actual state.

        The stored job is patched in SQL (its State, Revision, ModifyTime), never read into a model: a
        job carries its whole spec (inline modules too), and every job changes state at least twice.
        """
        async with self._db.writing() as conn:
            now = self._clock()
            row = conn.execute("SELECT state, version FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"job not found: {job_id}", component=COMPONENT)
            actual = JobStateType(row[0])
            if actual not in expected:
                raise ConflictError(
                    f"job {job_id} is {actual.name}, expected one of {_names(expected)}",
                    component=COMPONENT,
                    details={"JobID": job_id, "State": actual.name},
                )
            write_history = self._history(
                conn, events, now, EventDefaults(job_id, int(row[1])), ends_job=new_state.is_terminal
            )
            state = JobState(state_type=new_state, message=message, details=details or {})
            conn.execute(
                "UPDATE jobs SET state = ?, modify_time = ?, data = json_set(data, '$.State', json(?), "
                "'$.Revision', json_extract(data, '$.Revision') + 1, '$.ModifyTime', ?) WHERE id = ?",
                (int(new_state), now, sqlite_rows.dump(state), now, job_id),
            )
            write_history()

    # ---- executions ---------------------------------------------------------------------------

    async def create_execution(self, execution: Execution, events: list[JobHistory]) -> Execution:
        """Store a new execution of an existing job (NotFoundError otherwise) and its events.

        Zero times become now, Revision 0 becomes 1, JobVersion 0 the job's current version, an
        empty Namespace the job's. ConflictError if the ID exists. Returns the execution as stored.
        """
        if not execution.id:
            raise BadRequestError("cannot store an execution without an ID", component=COMPONENT)
        async with self._db.writing() as conn:
            now = self._clock()
            row = conn.execute("SELECT version, namespace FROM jobs WHERE id = ?", (execution.job_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"job not found: {execution.job_id}", component=COMPONENT)
            execution = execution.model_copy(
                update={
                    "job_version": execution.job_version or int(row[0]),
                    "namespace": execution.namespace or str(row[1]),
                    "revision": execution.revision or 1,
                    "create_time": execution.create_time or now,
                    "modify_time": execution.modify_time or now,
                }
            )
            write_history = self._history(conn, events, now, _execution_defaults(execution))
            sqlite_rows.insert_execution(conn, execution)
            write_history()
        return execution

    async def update_execution(self, update: ExecutionUpdate) -> None:
        """Apply a conditional update (empty expected_states = no check).

        Checked on the indexed state column and the stored desired state, and written as a patch of the
        stored execution in SQL (the fields given, Revision, ModifyTime): an execution carries a copy of
        its job, and each one is updated four or more times.
        """
        async with self._db.writing() as conn:
            now = self._clock()
            current = sqlite_rows.load_execution_brief(conn, update.execution_id)
            if current is None:
                raise NotFoundError(f"execution not found: {update.execution_id}", component=COMPONENT)
            actual = current.compute_state
            if update.expected_states and actual not in update.expected_states:
                raise ConflictError(
                    f"execution {update.execution_id} is {actual.name}, expected one of {_names(update.expected_states)}",
                    component=COMPONENT,
                    details={"ExecutionID": update.execution_id, "State": actual.name},
                )
            desired = current.desired_state
            if update.expected_desired_states and desired not in update.expected_desired_states:
                raise ConflictError(
                    f"execution {update.execution_id} is desired {desired.name},"
                    f" expected one of {_names(update.expected_desired_states)}",
                    component=COMPONENT,
                    details={"ExecutionID": update.execution_id, "DesiredState": desired.name},
                )
            paths = ["'$.Revision', json_extract(data, '$.Revision') + 1", "'$.ModifyTime', ?"]
            values: list[Any] = [now]
            for name, key in _EXECUTION_PATCHES:
                value = getattr(update, name)
                if value is not None:
                    paths.append(f"'$.{key}', json(?)")
                    values.append(sqlite_rows.dump(value))
            state = update.compute_state.state_type if update.compute_state is not None else actual
            defaults = EventDefaults(current.job_id, current.job_version, update.execution_id, current.node_id)
            write_history = self._history(conn, update.events, now, defaults)
            conn.execute(
                f"UPDATE executions SET compute_state = ?, modify_time = ?, data = json_set(data, {', '.join(paths)}) "
                "WHERE id = ?",
                (int(state), now, *values, update.execution_id),
            )
            write_history()

    async def get_execution(self, execution_id: str) -> Execution:
        """The execution by exact ID; NotFoundError if absent."""
        async with self._db.reading() as conn:
            return sqlite_rows.load_execution(conn, execution_id)

    async def execution_brief(self, execution_id: str) -> ExecutionBrief | None:
        """Columns and one JSON field (the desired state), not the stored execution with its job."""
        async with self._db.reading() as conn:
            return sqlite_rows.load_execution_brief(conn, execution_id)

    async def list_executions(self, job_id: str, query: ExecutionQuery | None = None) -> list[Execution]:
        """A job's executions, oldest first unless query.reverse; only the query's job version (0 =
        the current one) unless query.all_versions. NotFoundError if the job does not exist."""
        query = query or ExecutionQuery()
        column = sqlite_rows.order_column(query.order_by)
        direction = "DESC" if query.reverse else "ASC"
        async with self._db.reading() as conn:
            where = "job_id = ?"
            params: list[Any] = [job_id]
            if not query.all_versions:
                condition, values = sqlite_history.version_filter(job_id, query.job_version)
                where += f" AND {condition}"
                params += values
            data = "data" if query.with_job else "json_remove(data, '$.Job')"
            sql = f"SELECT {data} FROM executions WHERE {where} ORDER BY {column} {direction}, rowid {direction}"
            rows = conn.execute(f"{sql} LIMIT ? OFFSET ?", [*params, *sqlite_rows.page(query.limit, query.offset)])
            executions = [Execution.model_validate_json(row[0]) for row in rows]
            if not executions:
                sqlite_history.job_version_of(conn, job_id)  # NotFoundError for a job that does not exist
            return executions

    async def execution_counts(self, job_ids: list[str]) -> dict[str, dict[int, int]]:
        """One grouped query over the executions_job index for a page of jobs."""
        if not job_ids:
            return {}
        marks = ", ".join("?" * len(job_ids))
        sql = (
            "SELECT e.job_id, e.compute_state, COUNT(*) FROM executions e JOIN jobs j ON j.id = e.job_id "
            f"WHERE e.job_id IN ({marks}) AND e.job_version = j.version GROUP BY e.job_id, e.compute_state"
        )
        counts: dict[str, dict[int, int]] = {}
        async with self._db.reading() as conn:
            for job_id, state, n in conn.execute(sql, job_ids):
                counts.setdefault(str(job_id), {})[int(state)] = int(n)
        return counts

    async def recent_executions_on_node(self, node_id: str, limit: int) -> list[Execution]:
        """The node's newest `limit` executions, newest first (the executions_node index, then a sort)."""
        async with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT data FROM executions WHERE node_id = ? ORDER BY create_time DESC, rowid DESC LIMIT ?",
                (node_id, max(1, limit)),
            )
            return [Execution.model_validate_json(row[0]) for row in rows]

    async def list_executions_on_node(self, node_id: str, *, active_only: bool = True) -> list[Execution]:
        """Executions placed on a node, oldest first; with active_only, those not in a terminal state."""
        sql = "SELECT data FROM executions WHERE node_id = ?"
        if active_only:
            sql += f" AND compute_state NOT IN ({', '.join('?' * len(_TERMINAL_EXEC_STATES))})"
        async with self._db.reading() as conn:
            rows = conn.execute(
                f"{sql} ORDER BY create_time, rowid", (node_id, *(_TERMINAL_EXEC_STATES if active_only else ()))
            )
            return [Execution.model_validate_json(row[0]) for row in rows]

    async def remember_result(self, fingerprint: str, job_id: str, execution_id: str) -> None:
        """See JobStore.remember_result: one row per fingerprint, the newest wins."""
        async with self._db.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO result_cache (fingerprint, job_id, execution_id, time_ns) VALUES (?, ?, ?, ?)",
                (fingerprint, job_id, execution_id, self._clock()),
            )

    async def find_result(self, fingerprint: str) -> Execution | None:
        """See JobStore.find_result: joined with the execution, which must still be Completed."""
        sql = (
            "SELECT e.data FROM result_cache r JOIN executions e ON e.id = r.execution_id "
            "WHERE r.fingerprint = ? AND e.compute_state = ?"
        )
        async with self._db.reading() as conn:
            row = conn.execute(sql, (fingerprint, int(ExecutionStateType.Completed))).fetchone()
        return Execution.model_validate_json(row[0]) if row is not None else None

    async def active_job_ids(self, job_type: str) -> list[str]:
        """IDs of the jobs of `job_type` not in a terminal state, from the partial index on type."""
        sql = f"SELECT id FROM jobs WHERE {schema.JOB_TYPE} = ? AND {schema.ACTIVE_JOB} ORDER BY id"
        async with self._db.reading() as conn:
            return [str(row[0]) for row in conn.execute(sql, (job_type,))]

    async def active_jobs_by_node(self) -> dict[str, set[str]]:
        """Node ID -> IDs of jobs with a non-terminal execution there (read from a partial index)."""
        # The condition is the index's own text, so SQLite answers from the small partial index alone.
        sql = f"SELECT DISTINCT node_id, job_id FROM executions WHERE {schema.ACTIVE_EXECUTION}"
        placements: dict[str, set[str]] = {}
        async with self._db.reading() as conn:
            for node_id, job_id in conn.execute(sql):
                placements.setdefault(str(node_id), set()).add(str(job_id))
        return placements

    # ---- history ------------------------------------------------------------------------------

    def add_history_listener(self, listener: Callable[[str, bool], None]) -> None:
        """Call `listener(job_id, ended)` (synchronously, on the event loop) whenever events of that job
        have been committed, `ended` when one of them moved the job to a terminal state: how a waiting
        API call learns of them without reading the store again."""
        self._history_listeners.append(listener)

    def _history(
        self, conn: sqlite3.Connection, events: list[JobHistory], now: int, defaults: EventDefaults | None = None,
        *, new_job: bool = False, ends_job: bool = False,
    ) -> Callable[[], None]:
        """Check and number `events` now, before the calling method's first write, and return what writes
        them (call it after that method's own writes) and, after the commit, tells the listeners.

        Every refusal of an event (an unknown job, no JobID) thus comes before anything is written: a
        failed store call leaves nothing to undo, and inside a transaction it takes no savepoint.
        `new_job`: the defaults' job is inserted by the same call. `ends_job`: the write they come with
        moved the defaults' job to a terminal state (whatever the events say).
        """
        rows = sqlite_history.prepare(conn, events, now, defaults,
                                      new_job_id=defaults.job_id if new_job and defaults else "")

        def write() -> None:
            sqlite_history.insert(conn, rows)
            self._notify_after_commit(events, defaults, ends_job=ends_job)

        return write

    def _notify_after_commit(
        self, events: list[JobHistory], defaults: EventDefaults | None, *, ends_job: bool = False
    ) -> None:
        if not self._history_listeners or not events:
            return
        ended: dict[str, bool] = {}
        for event in events:
            job_id = event.job_id or (defaults.job_id if defaults else "")
            if job_id:
                ends = event.job_state is not None and event.job_state.new.is_terminal
                ended[job_id] = ended.get(job_id, False) or ends
        if ends_job and defaults is not None and defaults.job_id:
            ended[defaults.job_id] = True
        listeners = tuple(self._history_listeners)

        def notify() -> None:
            for job_id, job_ended in ended.items():
                for listener in listeners:
                    listener(job_id, job_ended)

        self._db.after_commit(notify)

    async def add_history(self, events: list[JobHistory]) -> None:
        """Append events (each names its JobID); SeqNum, Time and an empty Event.Timestamp are filled."""
        async with self._db.writing() as conn:
            self._history(conn, events, self._clock())()

    async def list_history(self, job_id: str, query: HistoryQuery | None = None) -> list[JobHistory]:
        """A job's events in SeqNum order, filtered by the query. NotFoundError if the job is unknown."""
        async with self._db.reading() as conn:
            return sqlite_history.select(conn, job_id, query or HistoryQuery())

    # ---- evaluations --------------------------------------------------------------------------

    async def create_evaluation(self, evaluation: Evaluation) -> None:
        """Store a new evaluation (zero times become now). ConflictError if the ID exists."""
        if not evaluation.id:
            raise BadRequestError("cannot store an evaluation without an ID", component=COMPONENT)
        async with self._db.writing() as conn:
            now = self._clock()
            evaluation = evaluation.model_copy(
                update={"create_time": evaluation.create_time or now, "modify_time": evaluation.modify_time or now}
            )
            try:  # the primary key refuses a taken ID: no lookup first
                conn.execute(
                    "INSERT INTO evaluations (id, job_id, status, create_time, data) VALUES (?, ?, ?, ?, ?)",
                    (
                        evaluation.id,
                        evaluation.job_id,
                        str(evaluation.status),
                        evaluation.create_time,
                        sqlite_rows.dump(evaluation),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if sqlite_rows.is_unique_violation(exc):
                    raise ConflictError(f"evaluation {evaluation.id} already exists", component=COMPONENT) from None
                raise

    async def get_evaluation(self, evaluation_id: str) -> Evaluation:
        """The evaluation by exact ID; NotFoundError if absent."""
        async with self._db.reading() as conn:
            return sqlite_rows.load_evaluation(conn, evaluation_id)

    async def update_evaluation_status(self, evaluation_id: str, status: EvaluationStatus, comment: str = "") -> None:
        """Set the status (and the comment, when one is given); NotFoundError if absent. Patched in SQL."""
        async with self._db.writing() as conn:
            comment_path = ", '$.Comment', ?" if comment else ""
            cursor = conn.execute(
                f"UPDATE evaluations SET status = ?, data = json_set(data, '$.Status', ?, '$.ModifyTime', ?{comment_path}) "
                "WHERE id = ?",
                (str(status), str(status), self._clock(), *((comment,) if comment else ()), evaluation_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"evaluation not found: {evaluation_id}", component=COMPONENT)

    async def list_evaluations(self, *, statuses: frozenset[EvaluationStatus]) -> list[Evaluation]:
        """Evaluations in any of `statuses` (empty = every status), oldest first."""
        sql, params = "SELECT data FROM evaluations", [str(s) for s in statuses]
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' * len(params))})"
        async with self._db.reading() as conn:
            rows = conn.execute(f"{sql} ORDER BY create_time, rowid", params)
            return [Evaluation.model_validate_json(row[0]) for row in rows]
