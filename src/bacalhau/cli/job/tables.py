"""Table columns for jobs, executions and history events, shared by the job verbs, and the history
event texts `job run`'s progress lines share with them.

Columns over the protocols of cli/shapes.py work on the pydantic models and on the JSON views alike
(`job list` renders views); the models are imported for typing only, so `job list` never imports them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bacalhau.cli.output import Column, format_time, ns_to_datetime, parse_rfc3339

if TYPE_CHECKING:
    from bacalhau.cli.shapes import HistoryLike, JobLike
    from bacalhau.models.execution import Execution
    from bacalhau.models.job import Job, SpecConfig


def engine_summary(job: Job) -> str:
    """`docker ubuntu echo hi` / `wasm main.wasm`: what the job runs, for the JOB column."""
    if not job.tasks:
        return ""
    engine = job.task.engine
    parts = [engine.type]
    main = engine.param("Image") or engine.param("EntryModule")
    if isinstance(main, str) and main:
        parts.append(main)
    for key in ("Entrypoint", "Parameters"):
        value = engine.param(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
    return " ".join(parts)


def event_moment(item: HistoryLike) -> datetime | None:
    """When an event happened: its Time, else its event's Timestamp (older servers set only that)."""
    return parse_rfc3339(item.time) or parse_rfc3339(item.event.timestamp)


def _history_time(item: HistoryLike) -> str:
    return format_time(event_moment(item), wide=True)


def _history_level(item: HistoryLike) -> str:
    return "Execution" if item.execution_id else "Job"


def history_state(item: HistoryLike) -> str:
    """The state an event moved its job or execution to ("" for events that changed none)."""
    if item.job_state is not None:
        return item.job_state.new.name
    if item.execution_state is not None:
        return item.execution_state.new.name
    return ""


def event_text(item: HistoryLike, *, fallback: str = "") -> str:
    """An event's message (or `fallback` when it has none) followed by its hint in parentheses."""
    text = item.event.message or fallback
    hint = item.event.details.get("Hint")
    return f"{text} ({hint})" if hint else text


JOB_COLUMNS: list[Column[JobLike]] = [
    Column("Created", lambda j: format_time(ns_to_datetime(j.create_time))),
    Column("ID", lambda j: j.id, is_id=True),
    Column("Name", lambda j: j.name),
    Column("Job", lambda j: j.tasks[0].engine.type if j.tasks else ""),
    Column("Type", lambda j: j.type),
    Column("State", lambda j: j.state.state_type.name),
]

VERSION_COLUMNS: list[Column[Job]] = [
    Column("Version", lambda j: str(j.version)),
    Column("Revision", lambda j: str(j.revision)),
    Column("State", lambda j: j.state.state_type.name),
    Column("Created", lambda j: format_time(ns_to_datetime(j.create_time), wide=True)),
    Column("Modified", lambda j: format_time(ns_to_datetime(j.modify_time), wide=True)),
    Column("Job", engine_summary),
]

EXECUTION_COLUMNS: list[Column[Execution]] = [
    Column("Created", lambda e: format_time(ns_to_datetime(e.create_time))),
    Column("Modified", lambda e: format_time(ns_to_datetime(e.modify_time))),
    Column("ID", lambda e: e.id, is_id=True),
    Column("Node ID", lambda e: e.node_id, is_id=True),
    Column("Rev.", lambda e: str(e.revision)),
    Column("State", lambda e: e.compute_state.state_type.name),
    Column("Desired", lambda e: e.desired_state.state_type.name),
    Column("Job Version", lambda e: str(e.job_version)),
    Column("Comment", lambda e: e.compute_state.message, truncate=True),
]

HISTORY_COLUMNS: list[Column[HistoryLike]] = [
    Column("Time", _history_time),
    Column("Level", _history_level),
    Column("Job Version", lambda h: str(h.job_version)),
    Column("Exec. ID", lambda h: h.execution_id, is_id=True),
    Column("Topic", lambda h: h.event.topic),
    Column("Event", event_text, truncate=False),
]

# In `job describe` each table is already about one job or one execution.
DESCRIBE_HISTORY_COLUMNS: list[Column[HistoryLike]] = [
    Column("Time", _history_time),
    Column("State", history_state),
    Column("Topic", lambda h: h.event.topic),
    Column("Event", event_text, truncate=False),
]


def result_location(result: SpecConfig) -> str:
    """Where a published result is, as a user would type it: `ipfs://CID`, `s3://bucket/key`, a URL."""
    if result.param("CID"):
        return f"ipfs://{result.param('CID')}"
    if result.param("Bucket"):
        where = f"s3://{result.param('Bucket')}/{result.param('Key') or ''}"
        endpoint = result.param("Endpoint")
        return f"{where} (endpoint {endpoint})" if endpoint else where
    for key in ("URL", "PreSignedURL"):
        if isinstance(result.param(key), str):
            return str(result.param(key))
    return ", ".join(f"{k}={v}" for k, v in sorted(result.params.items())) or "(no location)"
