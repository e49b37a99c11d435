"""The job history table of the SQLite store: append with per-job sequence numbers, and filtered reads.

Functions here run on a connection the store has already put in the right transaction; they raise
sqlite3.Error untranslated (the store translates) and our own NotFound/BadRequest errors.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from bacalhau.models.clock import parse_rfc3339_ns, rfc3339, rfc3339_nano
from bacalhau.models.errors import BadRequestError, NotFoundError
from bacalhau.models.history import JobHistory
from bacalhau.models.state import JobHistoryType
from bacalhau.orchestrator.jobstore.base import HistoryQuery

_NS_PER_S = 1_000_000_000
_EVENT_TYPES = {
    "": None,
    "all": None,
    "job": JobHistoryType.JobLevel,
    "execution": JobHistoryType.ExecutionLevel,
}


@dataclass(frozen=True)
class EventDefaults:
    """What the store knows about the events' subject, filled into events that left it empty."""

    job_id: str = ""
    job_version: int = 0
    execution_id: str = ""  # only for ExecutionLevel events
    node_id: str = ""  # only for ExecutionLevel events


def job_version_of(conn: sqlite3.Connection, job_id: str) -> int:
    """The current version of a job; NotFoundError if there is no such job."""
    row = conn.execute("SELECT version FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise _not_found(job_id)
    return int(row[0])


def version_filter(job_id: str, job_version: int) -> tuple[str, list[Any]]:
    """The condition selecting one version of a job's rows: `job_version`, else the job's current one.

    The current version is a subquery of the same statement (a job's page of events or executions is
    read with one statement, not a lookup first). The query finds nothing for a job that does not
    exist: call `job_version_of` then, for its NotFoundError."""
    if job_version:
        return "job_version = ?", [job_version]
    return "job_version = (SELECT version FROM jobs WHERE id = ?)", [job_id]


def _not_found(job_id: str) -> NotFoundError:
    return NotFoundError(f"job not found: {job_id}", component="JobStore")


# One history row, as inserted: job_id, seq_num, type, job_version, execution_id, node_id, time_ns, data.
HistoryRow = tuple[str, int, int, int, str, str, int, str]


def prepare(
    conn: sqlite3.Connection, events: list[JobHistory], now_ns: int, defaults: EventDefaults | None = None,
    *, new_job_id: str = "",
) -> list[HistoryRow]:
    """The rows for `events`, each job's next SeqNum (1, 2, 3...) assigned and empty times filled, or
    NotFoundError / BadRequestError. It writes nothing: a store call prepares its events before its
    first write, so that a refused event never leaves the call's other writes behind (see `writing` in
    sqlite_connection). `new_job_id` is a job the same call is about to insert (defaults give its
    version; its first SeqNum is 1).

    A SeqNum set by the caller is ignored: only the store, inside the write transaction, knows the
    next free number. Events are written as given otherwise, and never changed afterwards.
    """
    defaults = defaults or EventDefaults()
    next_seq: dict[str, int] = {}
    current_version: dict[str, int] = {}
    rows: list[HistoryRow] = []
    for event in events:
        job_id = event.job_id or defaults.job_id
        if not job_id:
            raise BadRequestError("a history event has no JobID", component="JobStore")
        if job_id not in next_seq:
            if job_id == new_job_id:
                current_version[job_id], next_seq[job_id] = defaults.job_version, 1
            else:
                found = conn.execute(
                    "SELECT version, (SELECT COALESCE(MAX(seq_num), 0) FROM history WHERE job_id = ?1) FROM jobs"
                    " WHERE id = ?1",
                    (job_id,),
                ).fetchone()
                if found is None:
                    raise _not_found(job_id)
                current_version[job_id], next_seq[job_id] = int(found[0]), int(found[1]) + 1
        stored = _complete(event, job_id, next_seq[job_id], now_ns, defaults, current_version[job_id])
        next_seq[job_id] += 1
        # Only a caller-supplied Time needs parsing: a filled one is `now_ns` itself.
        time_ns = _time_ns(event.time, now_ns) if event.time else now_ns
        rows.append((job_id, stored.seq_num, int(stored.type), stored.job_version, stored.execution_id,
                     stored.node_id, time_ns, stored.to_wire_json()))
    return rows


def insert(conn: sqlite3.Connection, rows: list[HistoryRow]) -> None:
    """Write rows made by `prepare` (in the same transaction, with no history written in between)."""
    for row in rows:
        conn.execute(
            "INSERT INTO history (job_id, seq_num, type, job_version, execution_id, node_id, time_ns, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )


def _time_ns(text: str, now_ns: int) -> int:
    # The indexed time behind `since` filters. A caller-supplied Time we cannot read is kept as
    # written in the event, and indexed at the moment it was recorded.
    try:
        return parse_rfc3339_ns(text) or now_ns
    except ValueError:
        return now_ns


def _complete(
    event: JobHistory, job_id: str, seq_num: int, now_ns: int, defaults: EventDefaults, current_version: int
) -> JobHistory:
    changes: dict[str, Any] = {"job_id": job_id, "seq_num": seq_num}
    if not event.job_version:
        same_job = job_id == defaults.job_id and defaults.job_version
        changes["job_version"] = defaults.job_version if same_job else current_version
    if event.type is JobHistoryType.ExecutionLevel:
        if not event.execution_id and defaults.execution_id:
            changes["execution_id"] = defaults.execution_id
        if not event.node_id and defaults.node_id:
            changes["node_id"] = defaults.node_id
    if not event.time:
        changes["time"] = rfc3339_nano(now_ns)
    if not event.event.timestamp:
        changes["event"] = event.event.model_copy(update={"timestamp": rfc3339(now_ns)})
    return event.model_copy(update=changes)


def select(conn: sqlite3.Connection, job_id: str, query: HistoryQuery) -> list[JobHistory]:
    """A job's events in SeqNum order, filtered by `query` (see HistoryQuery)."""
    where = ["job_id = ?"]
    params: list[Any] = [job_id]
    if not query.all_versions:
        condition, values = version_filter(job_id, query.job_version)
        where.append(condition)
        params += values
    event_type = query.event_type.strip().lower()
    if event_type not in _EVENT_TYPES:
        raise BadRequestError(
            f"invalid event type {query.event_type!r}",
            component="JobStore",
            hint="use one of: all, job, execution",
        )
    level = _EVENT_TYPES[event_type]
    if level is not None:
        where.append("type = ?")
        params.append(int(level))
    if query.execution_id:
        # Tables show short IDs (e-1234abcd), so a prefix selects the execution as the full ID does.
        where.append("execution_id >= ? AND execution_id < ?")
        params += [query.execution_id, query.execution_id + "\U0010ffff"]
    if query.node_id:
        where.append("node_id = ?")
        params.append(query.node_id)
    if query.since_unix_s > 0:
        where.append("time_ns >= ?")
        params.append(query.since_unix_s * _NS_PER_S)
    if query.after_seq > 0:
        where.append("seq_num > ?")
        params.append(query.after_seq)
    sql = f"SELECT data FROM history WHERE {' AND '.join(where)} ORDER BY seq_num {'DESC' if query.reverse else 'ASC'} LIMIT ? OFFSET ?"
    params += [query.limit if query.limit > 0 else -1, max(query.offset, 0)]
    events = [JobHistory.model_validate_json(row[0]) for row in conn.execute(sql, params)]
    if not events:
        job_version_of(conn, job_id)  # NotFoundError for a job that does not exist
    return events
