"""Rows of the SQLite store: objects to columns and back, and the lookups the store methods share.

Synchronous functions on a connection the caller has put in the right transaction. They raise
sqlite3.Error untranslated (the connection wrapper translates) and our NotFound/Conflict errors.
"""

from __future__ import annotations

import json
import sqlite3

from bacalhau.models.constants import DEFAULT_NAMESPACE
from bacalhau.models.errors import BadRequestError, ConflictError, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.models.wire import WireModel
from bacalhau.orchestrator.jobstore import schema
from bacalhau.orchestrator.jobstore.base import ExecutionBrief, JobBrief
from bacalhau.orchestrator.jobstore.sqlite_connection import COMPONENT

_ORDER_COLUMNS = {
    "": "create_time",
    "created_at": "create_time",
    "create_time": "create_time",
    "modified_at": "modify_time",
    "modify_time": "modify_time",
}


def dump(model: WireModel) -> str:
    """The model's wire form as compact JSON (WireModel.to_wire_json: any str can be stored)."""
    return model.to_wire_json()


def order_column(order_by: str) -> str:
    """The column for an API order_by value (legacy `create_time`/`modify_time` accepted)."""
    column = _ORDER_COLUMNS.get(order_by.strip().lower())
    if column is None:
        raise BadRequestError(
            f"invalid order_by {order_by!r}", component=COMPONENT, hint="use created_at or modified_at"
        )
    return column


def page(limit: int, offset: int) -> tuple[int, int]:
    """SQLite LIMIT/OFFSET values for a query's limit (0 = none) and offset."""
    return (limit if limit > 0 else -1), max(offset, 0)


# ---- jobs ---------------------------------------------------------------------------------------


_UNIQUE_VIOLATIONS = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


def is_unique_violation(exc: sqlite3.IntegrityError) -> bool:
    """Whether the statement broke a PRIMARY KEY or UNIQUE constraint (not NOT NULL, a foreign key...)."""
    return exc.sqlite_errorname in _UNIQUE_VIOLATIONS


def insert_job(conn: sqlite3.Connection, job: Job) -> None:
    """Insert a new current job. ConflictError if the ID, or its Name in the namespace, is taken.

    The constraints check it (the primary key, the unique Name index): a lookup first would cost two
    statements on every submission; only a refused insert looks up which one it was, for the message."""
    try:
        conn.execute(
            "INSERT INTO jobs (id, namespace, name, state, version, create_time, modify_time, labels, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job.id, *_job_columns(job)),
        )
    except sqlite3.IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job.id,)).fetchone():
            raise ConflictError(f"job {job.id} already exists", component=COMPONENT) from None
        check_name_free(conn, job)
        raise


def replace_job(conn: sqlite3.Connection, job: Job) -> None:
    """Overwrite the current version of an existing job (a state change or a new spec version).
    The caller has checked its Name (`check_name_free`) before its first write."""
    conn.execute(
        "UPDATE jobs SET namespace = ?, name = ?, state = ?, version = ?, create_time = ?, modify_time = ?,"
        " labels = ?, data = ? WHERE id = ?",
        (*_job_columns(job), job.id),
    )


def _job_columns(job: Job) -> tuple[str, str, int, int, int, int, str, str]:
    """The jobs table's columns after `id`, in order: namespace .. data."""
    return (job.namespace, job.name, int(job.state.state_type), job.version, job.create_time, job.modify_time,
            json.dumps(job.labels), dump(job))


def archive_current_version(conn: sqlite3.Connection, job_id: str) -> None:
    """Copy the current version into job_versions before a new spec replaces it."""
    conn.execute(
        "INSERT INTO job_versions (job_id, version, data) SELECT id, version, data FROM jobs WHERE id = ?",
        (job_id,),
    )


def check_name_free(conn: sqlite3.Connection, job: Job) -> None:
    """ConflictError if another job of the namespace has the job's Name (the unique index would refuse
    it too; this names the other job in the message)."""
    if not job.name:
        return
    row = conn.execute(
        "SELECT id FROM jobs WHERE namespace = ? AND name = ? AND name != '' AND id != ?", (job.namespace, job.name, job.id)
    ).fetchone()
    if row is not None:
        raise ConflictError(
            f"job name {job.name!r} is already used by job {row[0]} in namespace {job.namespace!r}",
            component=COMPONENT,
            hint="submitting a job with the same name updates that job; choose another name for a new one",
        )


def load_job(conn: sqlite3.Connection, job_id: str, version: int = 0) -> Job:
    """The job at `version` (0 = current). NotFoundError if the job or the version does not exist."""
    row = conn.execute("SELECT version, data FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"job not found: {job_id}", component=COMPONENT)
    if version in (0, int(row[0])):
        return Job.model_validate_json(row[1])
    old = conn.execute("SELECT data FROM job_versions WHERE job_id = ? AND version = ?", (job_id, version)).fetchone()
    if old is None:
        raise NotFoundError(f"job {job_id} has no version {version}", component=COMPONENT)
    return Job.model_validate_json(old[0])


def job_by_name(conn: sqlite3.Connection, name: str, namespace: str) -> Job | None:
    """The job with this exact Name in the namespace ("" = `default`), or None."""
    row = conn.execute(
        "SELECT data FROM jobs WHERE namespace = ? AND name = ? AND name != ''", (namespace or DEFAULT_NAMESPACE, name)
    ).fetchone()
    return None if row is None else Job.model_validate_json(row[0])


def ids_with_prefix(conn: sqlite3.Connection, prefix: str, limit: int) -> list[str]:
    """Up to `limit` job IDs starting with `prefix`, sorted.

    A range scan on the primary key rather than LIKE: LIKE is case-insensitive and treats `_` and `%`
    as wildcards, and SQLite would not use the index for it.
    """
    if not prefix:
        return []
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    rows = conn.execute("SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?", (prefix, upper, limit))
    return [str(row[0]) for row in rows]


# ---- executions and evaluations -----------------------------------------------------------------


def load_execution(conn: sqlite3.Connection, execution_id: str) -> Execution:
    """The execution by exact ID; NotFoundError if absent."""
    row = conn.execute("SELECT data FROM executions WHERE id = ?", (execution_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"execution not found: {execution_id}", component=COMPONENT)
    return Execution.model_validate_json(row[0])


def load_job_brief(conn: sqlite3.Connection, job_id: str) -> JobBrief | None:
    """The job's namespace, type, priority, state and version from its columns and two JSON fields,
    without parsing the stored job; None if absent."""
    row = conn.execute(
        f"SELECT namespace, {schema.JOB_TYPE}, json_extract(data, '$.Priority'), state, version FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()
    if row is None:
        return None
    return JobBrief(id=job_id, namespace=str(row[0]), type=str(row[1] or ""), priority=int(row[2] or 0),
                    state=JobStateType(row[3]), version=int(row[4]))


def load_execution_brief(conn: sqlite3.Connection, execution_id: str) -> ExecutionBrief | None:
    """The execution's IDs and states from its columns (and one JSON field, the desired state), without
    parsing the stored execution and the job it carries; None if absent."""
    row = conn.execute(
        "SELECT job_id, job_version, node_id, compute_state, json_extract(data, '$.DesiredState.StateType'), "
        "modify_time FROM executions WHERE id = ?",
        (execution_id,),
    ).fetchone()
    if row is None:
        return None
    return ExecutionBrief(
        id=execution_id, job_id=str(row[0]), job_version=int(row[1]), node_id=str(row[2]),
        compute_state=ExecutionStateType(row[3]), desired_state=ExecutionDesiredStateType(row[4] or 0),
        modify_time_ns=int(row[5]),
    )


def insert_execution(conn: sqlite3.Connection, execution: Execution) -> None:
    """Insert a new execution. ConflictError if the ID is taken (the primary key checks it)."""
    try:
        conn.execute(
            "INSERT INTO executions (id, job_id, node_id, compute_state, job_version, create_time, modify_time, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                execution.id,
                execution.job_id,
                execution.node_id,
                int(execution.compute_state.state_type),
                execution.job_version,
                execution.create_time,
                execution.modify_time,
                dump(execution),
            ),
        )
    except sqlite3.IntegrityError as exc:
        if is_unique_violation(exc):
            raise ConflictError(f"execution {execution.id} already exists", component=COMPONENT) from None
        raise


def replace_execution(conn: sqlite3.Connection, execution: Execution) -> None:
    """Overwrite an existing execution."""
    conn.execute(
        "UPDATE executions SET node_id = ?, compute_state = ?, modify_time = ?, data = ? WHERE id = ?",
        (
            execution.node_id,
            int(execution.compute_state.state_type),
            execution.modify_time,
            dump(execution),
            execution.id,
        ),
    )


def load_evaluation(conn: sqlite3.Connection, evaluation_id: str) -> Evaluation:
    """The evaluation by exact ID; NotFoundError if absent."""
    row = conn.execute("SELECT data FROM evaluations WHERE id = ?", (evaluation_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"evaluation not found: {evaluation_id}", component=COMPONENT)
    return Evaluation.model_validate_json(row[0])
