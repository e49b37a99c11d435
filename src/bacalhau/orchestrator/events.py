"""Builders of job history events, with Bacalhau's topics and messages.

Every state change of a job or an execution produces one of these, stored in the same transaction
as the change itself.
"""

from __future__ import annotations

from typing import Protocol

from bacalhau.models.execution import Execution
from bacalhau.models.history import (
    TOPIC_EXECUTION,
    TOPIC_STATE_UPDATE,
    Event,
    ExecutionStateChange,
    JobHistory,
    JobStateChange,
)
from bacalhau.models.job import Job
from bacalhau.models.state import ExecutionStateType, JobHistoryType, JobStateType


def short_id(full_id: str) -> str:
    """`j-1234abcd` from `j-1234abcd-....`: the prefix plus 8 characters, as Bacalhau shortens IDs."""
    prefix, sep, rest = full_id.partition("-")
    if sep and len(prefix) <= 2:
        return f"{prefix}-{rest[:8]}"
    return full_id[:8]


def job_event(job: Job, message: str, topic: str, details: dict[str, str] | None = None) -> JobHistory:
    """A job-level event that does not change state (e.g. "Job submitted")."""
    return JobHistory(
        Type=JobHistoryType.JobLevel,
        JobID=job.id,
        JobVersion=job.version,
        Event=Event(Message=message, Topic=topic, Details=details or {}),
    )


def job_state_event(
    job: Job, previous: JobStateType, new: JobStateType, message: str = "", details: dict[str, str] | None = None
) -> JobHistory:
    """A job state change: Event.Message is the new state name, plus the reason when there is one."""
    text = new.name + (f". {message}" if message else "")
    return JobHistory(
        Type=JobHistoryType.JobLevel,
        JobID=job.id,
        JobVersion=job.version,
        JobState=JobStateChange(Previous=previous, New=new),
        Event=Event(Message=text, Topic=TOPIC_STATE_UPDATE, Details={"NewState": new.name, **(details or {})}),
    )


class ExecutionRef(Protocol):
    """What an execution event names: an Execution, or the store's ExecutionBrief of one."""

    @property
    def id(self) -> str:
        """The execution's ID."""
    @property
    def job_id(self) -> str:
        """Its job's ID."""
    @property
    def job_version(self) -> int:
        """The version of its job it runs."""
    @property
    def node_id(self) -> str:
        """The node it is placed on."""


def execution_event(
    execution: ExecutionRef,
    previous: ExecutionStateType,
    new: ExecutionStateType,
    message: str,
    *,
    topic: str = TOPIC_EXECUTION,
    details: dict[str, str] | None = None,
) -> JobHistory:
    """An execution state change with the reason a user reads in `job history`."""
    return JobHistory(
        Type=JobHistoryType.ExecutionLevel,
        JobID=execution.job_id,
        JobVersion=execution.job_version,
        NodeID=execution.node_id,
        ExecutionID=execution.id,
        ExecutionState=ExecutionStateChange(Previous=previous, New=new),
        Event=Event(Message=message or new.name, Topic=topic, Details={"NewState": new.name, **(details or {})}),
    )


def execution_note(
    execution: Execution, message: str, *, topic: str = TOPIC_EXECUTION, details: dict[str, str] | None = None
) -> JobHistory:
    """An execution-level event that changes no state (e.g. a late result that was discarded)."""
    return JobHistory(
        Type=JobHistoryType.ExecutionLevel,
        JobID=execution.job_id,
        JobVersion=execution.job_version,
        NodeID=execution.node_id,
        ExecutionID=execution.id,
        Event=Event(Message=message, Topic=topic, Details=details or {}),
    )
