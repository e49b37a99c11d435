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
    def type(self) -> str: ...


class TaskLike(Protocol):
    """The parts of a task the CLI shows (models.job.Task)."""

    @property
    def engine(self) -> SpecLike: ...

    @property
    def publisher(self) -> SpecLike: ...


class JobStateLike(Protocol):
    """models.job.JobState."""

    @property
    def state_type(self) -> JobStateType: ...

    @property
    def message(self) -> str: ...

    @property
    def details(self) -> Mapping[str, str]: ...


class JobLike(Protocol):
    """The parts of a job the CLI shows (models.job.Job)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def create_time(self) -> int: ...

    @property
    def state(self) -> JobStateLike: ...

    @property
    def tasks(self) -> Sequence[TaskLike]: ...


class EventLike(Protocol):
    """models.history.Event."""

    @property
    def message(self) -> str: ...

    @property
    def topic(self) -> str: ...

    @property
    def timestamp(self) -> str: ...

    @property
    def details(self) -> Mapping[str, str]: ...


class JobStateChangeLike(Protocol):
    """models.history.JobStateChange."""

    @property
    def new(self) -> JobStateType: ...


class ExecutionStateChangeLike(Protocol):
    """models.history.ExecutionStateChange."""

    @property
    def new(self) -> ExecutionStateType: ...


class HistoryLike(Protocol):
    """One history event (models.history.JobHistory)."""

    @property
    def seq_num(self) -> int: ...

    @property
    def job_version(self) -> int: ...

    @property
    def execution_id(self) -> str: ...

    @property
    def time(self) -> str: ...

    @property
    def event(self) -> EventLike: ...

    @property
    def job_state(self) -> JobStateChangeLike | None: ...

    @property
    def execution_state(self) -> ExecutionStateChangeLike | None: ...


class ExecutionStateLike(Protocol):
    """models.execution.ExecutionState."""

    @property
    def state_type(self) -> ExecutionStateType: ...

    @property
    def message(self) -> str: ...


class RunOutputLike(Protocol):
    """What a task printed (models.execution.RunCommandResult)."""

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...

    @property
    def stdout_truncated(self) -> bool: ...

    @property
    def stderr_truncated(self) -> bool: ...

    @property
    def error_msg(self) -> str: ...


class ExecutionLike(Protocol):
    """The parts of an execution the run verbs show (models.execution.Execution)."""

    @property
    def id(self) -> str: ...

    @property
    def node_id(self) -> str: ...

    @property
    def job_id(self) -> str: ...

    @property
    def partition_index(self) -> int: ...

    @property
    def create_time(self) -> int: ...

    @property
    def compute_state(self) -> ExecutionStateLike: ...

    @property
    def run_output(self) -> RunOutputLike | None: ...
