"""An evaluation: a request to reconsider where a job's executions should run."""

from __future__ import annotations

from pydantic import Field

from bacalhau.models.state import EvaluationStatus, EvaluationTrigger
from bacalhau.models.wire import WireModel


class Evaluation(WireModel):
    id: str = Field("", alias="ID")
    namespace: str = Field("", alias="Namespace")
    job_id: str = Field("", alias="JobID")
    triggered_by: EvaluationTrigger = Field(EvaluationTrigger.JobRegister, alias="TriggeredBy")
    priority: int = Field(0, alias="Priority")
    type: str = Field("", alias="Type")
    status: EvaluationStatus = Field(EvaluationStatus.Pending, alias="Status")
    comment: str = Field("", alias="Comment")
    # Unix nanoseconds before which the evaluation must not run (delayed re-evaluation of queued jobs).
    wait_until: int = Field(0, alias="WaitUntil")
    create_time: int = Field(0, alias="CreateTime")
    modify_time: int = Field(0, alias="ModifyTime")
