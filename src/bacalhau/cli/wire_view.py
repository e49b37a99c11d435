"""Views over the server's JSON for jobs, executions and history events (the shapes of cli/shapes.py).

`bacalhau job list` and the waiting of `wasm run`/`docker run`/`job run` read the answers through these
instead of the pydantic models (~150 ms of imports and schema building, most of such a command's time).
Rendering is written against cli/shapes.py, which the models satisfy too: one rendering, two sources,
nothing printed differently whichever one is used.

A view reads a key the way the model's field does: by its wire name, missing or null meaning the
field's default, states read by the models' own parser (models/state_types.py). Only the fields the
CLI shows are read; anything else stays in the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from bacalhau.models.state_types import ExecutionStateType, JobStateType, enum_parser

_job_state = enum_parser(JobStateType, JobStateType.Undefined)  # unknown names read as Undefined, as in Go
_execution_state = enum_parser(ExecutionStateType, None)  # unknown values refused, as the model does


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return 0 if value is None or value == "" else int(value)


def _strmap(data: Mapping[str, Any], key: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _object(data.get(key)).items()}


class _View:
    """A read-only view of one JSON object."""

    __slots__ = ("_data",)

    def __init__(self, data: Any) -> None:
        self._data: Mapping[str, Any] = _object(data)


class SpecView(_View):
    """SpecLike over `{Type, Params}`."""

    @property
    def type(self) -> str:
        """The spec's `Type` (the engine's or publisher's name), stripped."""
        return _str(self._data, "Type").strip()  # SpecConfig strips it too


class TaskView(_View):
    """TaskLike over a task's JSON."""

    @property
    def engine(self) -> SpecView:
        """The task's `Engine` spec."""
        return SpecView(self._data.get("Engine"))

    @property
    def publisher(self) -> SpecView:
        """The task's `Publisher` spec."""
        return SpecView(self._data.get("Publisher"))


class JobStateView(_View):
    """JobStateLike over `{StateType, Message, Details}`."""

    @property
    def state_type(self) -> JobStateType:
        """The job's state; a missing or unknown name reads as Undefined."""
        return cast(JobStateType, _job_state(self._data.get("StateType")))

    @property
    def message(self) -> str:
        """The state's `Message` ("" when missing)."""
        return _str(self._data, "Message")

    @property
    def details(self) -> dict[str, str]:
        """The state's `Details`, keys and values as strings."""
        return _strmap(self._data, "Details")


class JobView(_View):
    """JobLike over a job's JSON (`Job`, or an entry of `Items`)."""

    @property
    def id(self) -> str:
        """The job's ID."""
        return _str(self._data, "ID")

    @property
    def name(self) -> str:
        """The job's name."""
        return _str(self._data, "Name")

    @property
    def namespace(self) -> str:
        """The job's namespace."""
        return _str(self._data, "Namespace")

    @property
    def type(self) -> str:
        """The job's type (batch, service, ops, daemon), as the server sent it."""
        return _str(self._data, "Type")

    @property
    def version(self) -> int:
        """The job's version (0 when missing)."""
        return _int(self._data, "Version")

    @property
    def create_time(self) -> int:
        """When the job was created, in Unix nanoseconds (0 when missing)."""
        return _int(self._data, "CreateTime")

    @property
    def state(self) -> JobStateView:
        """The job's current state."""
        return JobStateView(self._data.get("State"))

    @property
    def tasks(self) -> list[TaskView]:
        """The job's tasks (none when `Tasks` is null or missing)."""
        return [TaskView(task) for task in self._data.get("Tasks") or []]


class EventView(_View):
    """EventLike over `{Message, Topic, Timestamp, Details}`."""

    @property
    def message(self) -> str:
        """The event's `Message`."""
        return _str(self._data, "Message")

    @property
    def topic(self) -> str:
        """The event's `Topic` (Submission, Scheduling, Execution, ...)."""
        return _str(self._data, "Topic")

    @property
    def timestamp(self) -> str:
        """The event's `Timestamp`, as the server sent it."""
        return _str(self._data, "Timestamp")

    @property
    def details(self) -> dict[str, str]:
        """The event's `Details`, keys and values as strings."""
        return _strmap(self._data, "Details")


class JobStateChangeView(_View):
    """JobStateChangeLike over `{Previous, New}`."""

    @property
    def new(self) -> JobStateType:
        """The job state the change led to; a missing or unknown name reads as Undefined."""
        return cast(JobStateType, _job_state(self._data.get("New")))


class ExecutionStateChangeView(_View):
    """ExecutionStateChangeLike over `{Previous, New}` (integers on the wire)."""

    @property
    def new(self) -> ExecutionStateType:
        """The execution state the change led to (Undefined when missing; unknown values refused)."""
        return cast(ExecutionStateType, _execution_state(self._data.get("New", 0)))


class HistoryView(_View):
    """HistoryLike over one history event's JSON."""

    @property
    def seq_num(self) -> int:
        """The event's sequence number (`SeqNum`)."""
        return _int(self._data, "SeqNum")

    @property
    def job_version(self) -> int:
        """The job version the event belongs to."""
        return _int(self._data, "JobVersion")

    @property
    def execution_id(self) -> str:
        """The execution the event is about ("" for a job-level event)."""
        return _str(self._data, "ExecutionID")

    @property
    def time(self) -> str:
        """When the event happened (RFC3339Nano, as Bacalhau emits it)."""
        return _str(self._data, "Time")

    @property
    def event(self) -> EventView:
        """The event itself: message, topic, timestamp and details."""
        return EventView(self._data.get("Event"))

    @property
    def job_state(self) -> JobStateChangeView | None:
        """The job's state change, or None when the event carries none."""
        found = self._data.get("JobState")
        return None if found is None else JobStateChangeView(found)

    @property
    def execution_state(self) -> ExecutionStateChangeView | None:
        """The execution's state change, or None when the event carries none."""
        found = self._data.get("ExecutionState")
        return None if found is None else ExecutionStateChangeView(found)


class ExecutionStateView(_View):
    """ExecutionStateLike over `{StateType, Message, Details}`."""

    @property
    def state_type(self) -> ExecutionStateType:
        """The execution's state (Undefined when missing; unknown values refused)."""
        return cast(ExecutionStateType, _execution_state(self._data.get("StateType", 0)))

    @property
    def message(self) -> str:
        """The state's `Message` ("" when missing)."""
        return _str(self._data, "Message")


class RunOutputView(_View):
    """RunOutputLike over `RunOutput` (note Bacalhau's lower-case `stderr` key)."""

    @property
    def stdout(self) -> str:
        """What the task wrote to stdout, as far as it was kept."""
        return _str(self._data, "Stdout")

    @property
    def stderr(self) -> str:
        """What the task wrote to stderr, as far as it was kept (the lower-case `stderr` key)."""
        return _str(self._data, "stderr")

    @property
    def stdout_truncated(self) -> bool:
        """Whether stdout was cut short."""
        return bool(self._data.get("StdoutTruncated"))

    @property
    def stderr_truncated(self) -> bool:
        """Whether stderr was cut short."""
        return bool(self._data.get("StderrTruncated"))

    @property
    def error_msg(self) -> str:
        """The error that ended the run ("" when none)."""
        return _str(self._data, "ErrorMsg")


class ExecutionView(_View):
    """ExecutionLike over an execution's JSON."""

    @property
    def id(self) -> str:
        """The execution's ID."""
        return _str(self._data, "ID")

    @property
    def node_id(self) -> str:
        """The ID of the compute node the execution runs on."""
        return _str(self._data, "NodeID")

    @property
    def job_id(self) -> str:
        """The ID of the execution's job."""
        return _str(self._data, "JobID")

    @property
    def partition_index(self) -> int:
        """The partition of the job the execution runs (0 when missing)."""
        return _int(self._data, "PartitionIndex")

    @property
    def create_time(self) -> int:
        """When the execution was created, in Unix nanoseconds (0 when missing)."""
        return _int(self._data, "CreateTime")

    @property
    def compute_state(self) -> ExecutionStateView:
        """The execution's state on its compute node."""
        return ExecutionStateView(self._data.get("ComputeState"))

    @property
    def run_output(self) -> RunOutputView | None:
        """What the task printed, or None when there is no `RunOutput` yet."""
        found = self._data.get("RunOutput")
        return None if found is None else RunOutputView(found)


def items_of(page: Any) -> list[Any]:
    """The `Items` of a list answer (null or missing: none), as the models' NoneList reads them."""
    return list(_object(page).get("Items") or [])


def next_token_of(page: Any) -> str:
    """The `NextToken` of a list answer ("" when there is none)."""
    return _str(_object(page), "NextToken")
