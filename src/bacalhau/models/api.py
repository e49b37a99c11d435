"""Request and response bodies of the /api/v1 routes, with Bacalhau's exact key names."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bacalhau.models.execution import Execution
from bacalhau.models.fields import NoneList, StrMap
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job, SpecConfig
from bacalhau.models.node import NodeState
from bacalhau.models.wire import WireModel


class PutJobRequest(WireModel):
    job: Job | None = Field(None, alias="Job")
    force: bool = Field(False, alias="Force")


class PutJobResponse(WireModel):
    job_id: str = Field("", alias="JobID")
    evaluation_id: str = Field("", alias="EvaluationID")
    warnings: NoneList[str] = Field(default_factory=list, alias="Warnings")


class DiffJobRequest(WireModel):
    """Body of `PUT /jobs/diff`: the spec to compare with the stored job of the same Name."""

    job: Job | None = Field(None, alias="Job")


class DiffJobResponse(WireModel):
    """`Diff` is empty when the spec matches the stored job."""

    diff: str = Field("", alias="Diff")
    warnings: NoneList[str] = Field(default_factory=list, alias="Warnings")


class ListJobsResponse(WireModel):
    items: NoneList[Job] = Field(default_factory=list, alias="Items")
    next_token: str = Field("", alias="NextToken")


class ListHistoryResponse(WireModel):
    items: NoneList[JobHistory] = Field(default_factory=list, alias="Items")
    next_token: str = Field("", alias="NextToken")


class ListExecutionsResponse(WireModel):
    items: NoneList[Execution] = Field(default_factory=list, alias="Items")
    next_token: str = Field("", alias="NextToken")


class ListResultsResponse(WireModel):
    items: NoneList[SpecConfig] = Field(default_factory=list, alias="Items")
    next_token: str = Field("", alias="NextToken")


class GetJobResponse(WireModel):
    job: Job = Field(default_factory=Job, alias="Job")
    history: ListHistoryResponse | None = Field(None, alias="History")
    executions: ListExecutionsResponse | None = Field(None, alias="Executions")


class StopJobRequest(WireModel):
    reason: str = Field("", alias="reason")


class StopJobResponse(WireModel):
    evaluation_id: str = Field("", alias="EvaluationID")


def _json_integer(value: Any) -> Any:
    """A JSON number that is an integer (1 or 1.0, as JSON Schema counts them); `false` or "1" is refused
    (Go decodes the field into a uint64), not read as version 0 or 1."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


class RerunJobRequest(WireModel):
    job_version: Annotated[int, BeforeValidator(_json_integer)] = Field(0, alias="JobVersion")
    reason: str = Field("", alias="Reason")


class RerunJobResponse(WireModel):
    evaluation_id: str = Field("", alias="EvaluationID")
    job_id: str = Field("", alias="JobID")
    job_version: int = Field(0, alias="JobVersion")
    warnings: NoneList[str] = Field(default_factory=list, alias="Warnings")


class ListNodesResponse(WireModel):
    """Bacalhau's Go server says `Nodes`, the official Python client reads `nodes`: we send both."""

    nodes: NoneList[NodeState] = Field(default_factory=list, alias="Nodes")
    next_token: str = Field("", alias="NextToken")

    def to_wire(self) -> dict[str, Any]:
        data = super().to_wire()
        data["nodes"] = data["Nodes"]
        return data


class GetNodeResponse(WireModel):
    node: NodeState = Field(default_factory=NodeState, alias="Node")

    def to_wire(self) -> dict[str, Any]:
        data = super().to_wire()
        data["node"] = data["Node"]
        return data


class AliveResponse(WireModel):
    status: str = Field("OK", alias="Status")


class ErrorResponse(WireModel):
    """Bacalhau's error body for every non-2xx answer."""

    status: int = Field(500, alias="Status")
    message: str = Field("", alias="Message")
    request_id: str = Field("", alias="RequestID")
    code: str = Field("", alias="Code")
    component: str = Field("", alias="Component")
    hint: str = Field("", alias="Hint")
    details: StrMap = Field(default_factory=dict, alias="Details")


class PutNodeRequest(WireModel):
    """`PUT /nodes/:id`: approve, reject or delete a node; ours: drain (cordon) or uncordon it."""

    action: str = Field("", alias="Action")
    message: str = Field("", alias="Message")
    node_id: str = Field("", alias="NodeID")
    # Ours, drain only: a Go duration (`10m`) after which work still on the node is moved off it; empty:
    # never. Omitted from the body when empty, so the other actions send exactly what Bacalhau's CLI does.
    deadline: str = Field("", alias="Deadline")


class PutNodeResponse(WireModel):
    success: bool = Field(False, alias="Success")
    error: str = Field("", alias="Error")
