"""An execution: one attempt at running a job's task on one compute node (CONTRACT.md section 2.4)."""

from __future__ import annotations

from pydantic import Field

from bacalhau.models.fields import StrMap
from bacalhau.models.job import Job, SpecConfig
from bacalhau.models.resources import Resources
from bacalhau.models.state import (
    DesiredStateWire,
    ExecutionDesiredStateType,
    ExecutionStateType,
    ExecutionStateWire,
)
from bacalhau.models.wire import WireModel


class ExecutionState(WireModel):
    state_type: ExecutionStateWire = Field(ExecutionStateType.Undefined, alias="StateType")
    message: str = Field("", alias="Message")
    details: StrMap = Field(default_factory=dict, alias="Details")


class DesiredState(WireModel):
    state_type: DesiredStateWire = Field(ExecutionDesiredStateType.Pending, alias="StateType")
    message: str = Field("", alias="Message")
    details: StrMap = Field(default_factory=dict, alias="Details")


class RunCommandResult(WireModel):
    """What the task printed and how it exited. Note Bacalhau's lower-case `stderr` key."""

    stdout: str = Field("", alias="Stdout")
    stdout_truncated: bool = Field(False, alias="StdoutTruncated")
    stderr: str = Field("", alias="stderr")
    stderr_truncated: bool = Field(False, alias="StderrTruncated")
    exit_code: int = Field(-1, alias="ExitCode")
    error_msg: str = Field("", alias="ErrorMsg")


class AllocatedResources(WireModel):
    tasks: dict[str, Resources] = Field(default_factory=dict, alias="Tasks")


class Execution(WireModel):
    id: str = Field("", alias="ID")
    namespace: str = Field("", alias="Namespace")
    eval_id: str = Field("", alias="EvalID")
    name: str = Field("", alias="Name")
    node_id: str = Field("", alias="NodeID")
    job_id: str = Field("", alias="JobID")
    job: Job | None = Field(None, alias="Job")
    job_version: int = Field(0, alias="JobVersion")
    allocated_resources: AllocatedResources = Field(default_factory=AllocatedResources, alias="AllocatedResources")
    desired_state: DesiredState = Field(default_factory=DesiredState, alias="DesiredState")
    compute_state: ExecutionState = Field(default_factory=ExecutionState, alias="ComputeState")
    published_result: SpecConfig | None = Field(None, alias="PublishedResult")
    run_output: RunCommandResult | None = Field(None, alias="RunOutput")
    previous_execution: str = Field("", alias="PreviousExecution")
    next_execution: str = Field("", alias="NextExecution")
    followup_eval_id: str = Field("", alias="FollowupEvalID")
    partition_index: int = Field(0, alias="PartitionIndex")
    revision: int = Field(0, alias="Revision")
    create_time: int = Field(0, alias="CreateTime")
    modify_time: int = Field(0, alias="ModifyTime")


class ExecutionLog(WireModel):
    """One line of a task's output: Type 1 is stdout, 2 is stderr."""

    type: int = Field(1, alias="Type")
    line: str = Field("", alias="Line")


__all__ = [
    "AllocatedResources",
    "DesiredState",
    "Execution",
    "ExecutionLog",
    "ExecutionState",
    "RunCommandResult",
]
