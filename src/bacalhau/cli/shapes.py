"""The shapes of jobs, executions and history events the CLI reads: Protocols, for typing only.

Rendering (job tables, progress lines, task output, failure messages) is written against these. The
pydantic models (models/job.py, execution.py, history.py) satisfy them as they are, and so do the views
of cli/wire_view.py, which read the server's JSON without pydantic. Imported under TYPE_CHECKING only:
at run time nothing here is needed, and the fast commands do not pay for creating these classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from bacalhau.models.state_types import ExecutionStateType, JobStateType


class SpecLike(Protocol):
    """An engine, publisher or source reference (models.job.SpecConfig)."""

    @property
    def type(self) -> str:
        """The plug-in's type name, e.g. `docker`, `wasm` or `local`."""
        ...


class TaskLike(Protocol):
    """The parts of a task the CLI shows (models.job.Task)."""

    @property
    def engine(self) -> SpecLike:
        """What runs the task."""
        ...

    @property
    def publisher(self) -> SpecLike:
        """Where the task's results are published."""
        ...


class JobStateLike(Protocol):
    """models.job.JobState."""

    @property
    def state_type(self) -> JobStateType:
        """The job's state."""
        ...

    @property
    def message(self) -> str:
        """Why the job is in this state ("" when nothing was said)."""
        ...

    @property
    def details(self) -> Mapping[str, str]:
        """More about the state, as string pairs."""
        ...


class JobLike(Protocol):
    """The parts of a job the CLI shows (models.job.Job)."""

    @property
    def id(self) -> str:
        """The job's ID."""
        ...

    @property
    def name(self) -> str:
        """The job's name."""
        ...

    @property
    def type(self) -> str:
        """The job's type (batch, service, ops, daemon)."""
        ...

    @property
    def version(self) -> int:
        """The job's current version."""
        ...

    @property
    def create_time(self) -> int:
        """When the job was created, in Unix nanoseconds."""
        ...

    @property
    def state(self) -> JobStateLike:
        """The job's current state."""
        ...

    @property
    def tasks(self) -> Sequence[TaskLike]:
        """The job's tasks."""
        ...


class EventLike(Protocol):
    """models.history.Event."""

    @property
    def message(self) -> str:
        """What happened, in words."""
        ...

    @property
    def topic(self) -> str:
        """The kind of event (Submission, Scheduling, Execution, ...)."""
        ...

    @property
    def timestamp(self) -> str:
        """When the event was recorded, as the server wrote it."""
        ...

    @property
    def details(self) -> Mapping[str, str]:
        """More about the event, as string pairs."""
        ...


class JobStateChangeLike(Protocol):
    """models.history.JobStateChange."""

    @property
    def new(self) -> JobStateType:
        """The job state the change led to."""
        ...


class ExecutionStateChangeLike(Protocol):
    """models.history.ExecutionStateChange."""

    @property
    def new(self) -> ExecutionStateType:
        """The execution state the change led to."""
        ...


class HistoryLike(Protocol):
    """One history event (models.history.JobHistory)."""

    @property
    def seq_num(self) -> int:
        """The event's sequence number (SeqNum)."""
        ...

    @property
    def job_version(self) -> int:
        """The job version the event belongs to."""
        ...

    @property
    def execution_id(self) -> str:
        """The execution the event is about ("" for a job-level event)."""
        ...

    @property
    def time(self) -> str:
        """When the event happened (RFC3339Nano)."""
        ...

    @property
    def event(self) -> EventLike:
        """What happened: message, topic, timestamp and details."""
        ...

    @property
    def job_state(self) -> JobStateChangeLike | None:
        """The job's state change, or None when the event carries none."""
        ...

    @property
    def execution_state(self) -> ExecutionStateChangeLike | None:
        """The execution's state change, or None when the event carries none."""
        ...


class ExecutionStateLike(Protocol):
    """models.execution.ExecutionState."""

    @property
    def state_type(self) -> ExecutionStateType:
        """The execution's state on its compute node."""
        ...

    @property
    def message(self) -> str:
        """Why the execution is in this state ("" when nothing was said)."""
        ...


class RunOutputLike(Protocol):
    """What a task printed (models.execution.RunCommandResult)."""

    @property
    def stdout(self) -> str:
        """What the task wrote to stdout, as far as it was kept."""
        ...

    @property
    def stderr(self) -> str:
        """What the task wrote to stderr, as far as it was kept."""
        ...

    @property
    def stdout_truncated(self) -> bool:
        """Whether stdout was cut short."""
        ...

    @property
    def stderr_truncated(self) -> bool:
        """Whether stderr was cut short."""
        ...

    @property
    def error_msg(self) -> str:
        """The error that ended the run ("" when none)."""
        ...


class ExecutionLike(Protocol):
    """The parts of an execution the run verbs show (models.execution.Execution)."""

    @property
    def id(self) -> str:
        """The execution's ID."""
        ...

    @property
    def node_id(self) -> str:
        """The ID of the compute node the execution runs on."""
        ...

    @property
    def job_id(self) -> str:
        """The ID of the execution's job."""
        ...

    @property
    def partition_index(self) -> int:
        """The partition of the job the execution runs."""
        ...

    @property
    def create_time(self) -> int:
        """When the execution was created, in Unix nanoseconds."""
        ...

    @property
    def compute_state(self) -> ExecutionStateLike:
        """The execution's state on its compute node."""
        ...

    @property
    def run_output(self) -> RunOutputLike | None:
        """What the task printed, or None when it has not run yet."""
        ...
