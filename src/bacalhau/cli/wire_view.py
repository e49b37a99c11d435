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
        return _str(self._data, "Type").strip()  # SpecConfig strips it too


class TaskView(_View):
    """TaskLike over a task's JSON."""

    @property
    def engine(self) -> SpecView:
        return SpecView(self._data.get("Engine"))

    @property
    def publisher(self) -> SpecView:
        return SpecView(self._data.get("Publisher"))


class JobStateView(_View):
    """JobStateLike over `{StateType, Message, Details}`."""

    @property
    def state_type(self) -> JobStateType:
        return cast(JobStateType, _job_state(self._data.get("StateType")))

    @property
    def message(self) -> str:
        return _str(self._data, "Message")

    @property
    def details(self) -> dict[str, str]:
        return _strmap(self._data, "Details")


class JobView(_View):
    """JobLike over a job's JSON (`Job`, or an entry of `Items`)."""

    @property
    def id(self) -> str:
        return _str(self._data, "ID")

    @property
    def name(self) -> str:
        return _str(self._data, "Name")

    @property
    def namespace(self) -> str:
        return _str(self._data, "Namespace")

    @property
    def type(self) -> str:
        return _str(self._data, "Type")

    @property
    def version(self) -> int:
        return _int(self._data, "Version")

    @property
    def create_time(self) -> int:
        return _int(self._data, "CreateTime")

    @property
    def state(self) -> JobStateView:
        return JobStateView(self._data.get("State"))

    @property
    def tasks(self) -> list[TaskView]:
        return [TaskView(task) for task in self._data.get("Tasks") or []]


class EventView(_View):
    """EventLike over `{Message, Topic, Timestamp, Details}`."""

    @property
    def message(self) -> str:
        return _str(self._data, "Message")

    @property
    def topic(self) -> str:
        return _str(self._data, "Topic")

    @property
    def timestamp(self) -> str:
        return _str(self._data, "Timestamp")

    @property
    def details(self) -> dict[str, str]:
        return _strmap(self._data, "Details")


class JobStateChangeView(_View):
    """JobStateChangeLike over `{Previous, New}`."""

    @property
    def new(self) -> JobStateType:
        return cast(JobStateType, _job_state(self._data.get("New")))


class ExecutionStateChangeView(_View):
    """ExecutionStateChangeLike over `{Previous, New}` (integers on the wire)."""

    @property
    def new(self) -> ExecutionStateType:
        return cast(ExecutionStateType, _execution_state(self._data.get("New", 0)))


class HistoryView(_View):
    """HistoryLike over one history event's JSON."""

    @property
    def seq_num(self) -> int:
        return _int(self._data, "SeqNum")

    @property
    def job_version(self) -> int:
        return _int(self._data, "JobVersion")

    @property
    def execution_id(self) -> str:
        return _str(self._data, "ExecutionID")

    @property
    def time(self) -> str:
        return _str(self._data, "Time")

    @property
    def event(self) -> EventView:
        return EventView(self._data.get("Event"))

    @property
    def job_state(self) -> JobStateChangeView | None:
        found = self._data.get("JobState")
        return None if found is None else JobStateChangeView(found)

    @property
    def execution_state(self) -> ExecutionStateChangeView | None:
        found = self._data.get("ExecutionState")
        return None if found is None else ExecutionStateChangeView(found)


class ExecutionStateView(_View):
    """ExecutionStateLike over `{StateType, Message, Details}`."""

    @property
    def state_type(self) -> ExecutionStateType:
        return cast(ExecutionStateType, _execution_state(self._data.get("StateType", 0)))

    @property
    def message(self) -> str:
        return _str(self._data, "Message")


class RunOutputView(_View):
    """RunOutputLike over `RunOutput` (note Bacalhau's lower-case `stderr` key)."""

    @property
    def stdout(self) -> str:
        return _str(self._data, "Stdout")

    @property
    def stderr(self) -> str:
        return _str(self._data, "stderr")

    @property
    def stdout_truncated(self) -> bool:
        return bool(self._data.get("StdoutTruncated"))

    @property
    def stderr_truncated(self) -> bool:
        return bool(self._data.get("StderrTruncated"))

    @property
    def error_msg(self) -> str:
        return _str(self._data, "ErrorMsg")


class ExecutionView(_View):
    """ExecutionLike over an execution's JSON."""

    @property
    def id(self) -> str:
        return _str(self._data, "ID")

    @property
    def node_id(self) -> str:
        return _str(self._data, "NodeID")

    @property
    def job_id(self) -> str:
        return _str(self._data, "JobID")

    @property
    def partition_index(self) -> int:
        return _int(self._data, "PartitionIndex")

    @property
    def create_time(self) -> int:
        return _int(self._data, "CreateTime")

    @property
    def compute_state(self) -> ExecutionStateView:
        return ExecutionStateView(self._data.get("ComputeState"))

    @property
    def run_output(self) -> RunOutputView | None:
        found = self._data.get("RunOutput")
        return None if found is None else RunOutputView(found)


def items_of(page: Any) -> list[Any]:
    """The `Items` of a list answer (null or missing: none), as the models' NoneList reads them."""
    return list(_object(page).get("Items") or [])


def next_token_of(page: Any) -> str:
    """The `NextToken` of a list answer ("" when there is none)."""
    return _str(_object(page), "NextToken")
