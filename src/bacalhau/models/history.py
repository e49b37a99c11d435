"""The job history: the permanent audit log of every job and execution state change."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_serializer

from bacalhau.models.fields import StrMap
from bacalhau.models.state import (
    ExecutionStateType,
    ExecutionStateWire,
    JobHistoryType,
    JobHistoryTypeWire,
    JobStateType,
    JobStateWire,
)
from bacalhau.models.wire import WireModel

TOPIC_SUBMISSION = "Submission"
TOPIC_STATE_UPDATE = "State Update"
TOPIC_SCHEDULING = "Scheduling"
TOPIC_QUEUEING = "Queueing"
TOPIC_EXEC_TIMEOUT = "Exec Timeout"
TOPIC_JOB_TIMEOUT = "Job Timeout"
TOPIC_EXECUTION = "Execution"


class Event(WireModel):
    message: str = Field("", alias="Message")
    topic: str = Field("", alias="Topic")
    timestamp: str = Field("", alias="Timestamp")
    details: StrMap = Field(default_factory=dict, alias="Details")


class JobStateChange(WireModel):
    previous: JobStateWire = Field(JobStateType.Undefined, alias="Previous")
    new: JobStateWire = Field(JobStateType.Undefined, alias="New")


class ExecutionStateChange(WireModel):
    previous: ExecutionStateWire = Field(ExecutionStateType.Undefined, alias="Previous")
    new: ExecutionStateWire = Field(ExecutionStateType.Undefined, alias="New")


class JobHistory(WireModel):
    seq_num: int = Field(0, alias="SeqNum")
    type: JobHistoryTypeWire = Field(JobHistoryType.JobLevel, alias="Type")
    job_id: str = Field("", alias="JobID")
    job_version: int = Field(0, alias="JobVersion")
    node_id: str = Field("", alias="NodeID")
    execution_id: str = Field("", alias="ExecutionID")
    job_state: JobStateChange | None = Field(None, alias="JobState")
    execution_state: ExecutionStateChange | None = Field(None, alias="ExecutionState")
    event: Event = Field(default_factory=Event, alias="Event")
    # RFC3339Nano, as Bacalhau emits it.
    time: str = Field("", alias="Time")

    @field_serializer("job_state", "execution_state")
    def _drop_empty(self, value: Any) -> Any:
        return None if value is None else value.model_dump(by_alias=True, mode="json")
