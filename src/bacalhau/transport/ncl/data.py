"""Data-plane payloads: execution traffic, delivered in order with an ack per message.

Structs in `pkg/models/messages/{bidding,execution,base,managed_publisher}.go` have no JSON tags, so the
keys are the Go field names; the embedded `BaseRequest {Events}` and `BaseResponse {ExecutionID, JobID,
JobType, Events}` are flattened into the object, first. Direction and subject::

    orchestrator -> compute   bacalhau.global.compute.<id>.in.msgs
        AskForBid (full Execution with Job), BidAccepted, BidRejected, CancelExecution
    compute -> orchestrator   bacalhau.global.compute.<id>.out.msgs
        BidResult, RunResult, ComputeError (its error text is Events[0].Message)
    compute -> orchestrator   bacalhau.global.compute.<id>.out.requests   (request/reply)
        managedPublisher.PreSignURLRequest -> managedPublisher.PreSignURLResponse
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.fields import NoneList
from bacalhau.models.job import SpecConfig
from bacalhau.transport.ncl.event import Event
from bacalhau.transport.ncl.payload import NclPayload
from bacalhau.transport.ncl.wire_types import GoBool


class AskForBidRequest(NclPayload):
    """`AskForBid`: offer an execution. DesiredState Pending = wait for BidAccepted; Running = start now.

    A Go compute needs the Job inside the Execution (it stamps the protocol into `Job.Meta`), so an
    execution without one is refused here rather than crashing the peer.
    """

    events: NoneList[Event] = Field(default_factory=list, alias="Events")
    execution: Execution = Field(alias="Execution")

    @model_validator(mode="after")
    def _has_job(self) -> Self:
        if self.execution.job is None:
            raise ValueError("AskForBid needs the execution's Job embedded")
        return self


class BidAcceptedRequest(NclPayload):
    """`BidAccepted`: the orchestrator approved a pending bid; the compute may start."""

    events: NoneList[Event] = Field(default_factory=list, alias="Events")
    execution_id: str = Field("", alias="ExecutionID")
    accepted: GoBool = Field(False, alias="Accepted")


class BidRejectedRequest(NclPayload):
    """`BidRejected`: the orchestrator declined a pending bid; the compute drops the execution."""

    events: NoneList[Event] = Field(default_factory=list, alias="Events")
    execution_id: str = Field("", alias="ExecutionID")


class CancelExecutionRequest(NclPayload):
    """`CancelExecution`: stop the execution."""

    events: NoneList[Event] = Field(default_factory=list, alias="Events")
    execution_id: str = Field("", alias="ExecutionID")


class BaseResponse(NclPayload):
    """Go's embedded `BaseResponse`: which execution a compute -> orchestrator message is about."""

    execution_id: str = Field("", alias="ExecutionID")
    job_id: str = Field("", alias="JobID")
    job_type: str = Field("", alias="JobType")
    events: NoneList[Event] = Field(default_factory=list, alias="Events")

    @classmethod
    def for_execution(cls, execution: Execution, **fields: Any) -> Self:
        """A message about `execution` (IDs and job type filled as Go's NewBaseResponse does), plus
        `fields` given by wire name or Python name."""
        base: dict[str, Any] = {"ExecutionID": execution.id}
        if execution.job is not None:
            base.update(JobID=execution.job.id, JobType=execution.job.type)
        return cls.model_validate({**base, **fields})

    @property
    def message(self) -> str:
        """The first event's message ("" if none), as Go's `BaseResponse.Message()`."""
        return self.events[0].message if self.events else ""


class BidResult(BaseResponse):
    """`BidResult`: the compute's answer to a pending AskForBid."""

    accepted: GoBool = Field(False, alias="Accepted")


class Step(NclPayload):
    """Extension: a state an execution reached before the final report that carries it (see `Steps`)."""

    state: int = Field(0, alias="State")
    message: str = Field("", alias="Message")
    time_ns: int = Field(0, alias="Time")  # Unix ns, the compute node's clock


class RunResult(BaseResponse):
    """`RunResult`: the execution completed and published its results.

    Extension: `Steps`, the steps before it (bid accepted, Running, Publishing) that were not sent on
    their own; only to an orchestrator whose HandshakeResponse lists `steps`, omitted when None.
    """

    publish_result: SpecConfig | None = Field(None, alias="PublishResult")
    run_command_result: RunCommandResult | None = Field(None, alias="RunCommandResult")
    steps: list[Step] | None = Field(None, alias="Steps")

    omit_if_none: ClassVar[tuple[str, ...]] = ("Steps",)


class ComputeError(BaseResponse):
    """`ComputeError`: the execution failed; the error is `message` (Events[0].Message), details in Events.

    Extension: `RunCommandResult` (what the task printed before failing), omitted when None so a Go
    orchestrator sees exactly its shape.
    """

    run_command_result: RunCommandResult | None = Field(None, alias="RunCommandResult")
    steps: list[Step] | None = Field(None, alias="Steps")  # as RunResult.Steps

    omit_if_none: ClassVar[tuple[str, ...]] = ("RunCommandResult", "Steps")


class ExecutionProgress(BaseResponse):
    """Extension `py.ExecutionProgress`: the execution moved (Running, Publishing).

    Go NCL has no progress message (a Go orchestrator learns nothing between the bid and the result),
    and a Go peer nacks a type it does not know, so a compute sends it only to an orchestrator whose
    HandshakeResponse lists the `progress` extension.
    """

    state: int = Field(0, alias="State")


class ManagedPublisherPreSignURLRequest(NclPayload):
    """`managedPublisher.PreSignURLRequest`: the compute asks where to upload an execution's results."""

    events: NoneList[Event] = Field(default_factory=list, alias="Events")
    execution_id: str = Field("", alias="ExecutionID")
    job_id: str = Field("", alias="JobID")


class ManagedPublisherPreSignURLResponse(NclPayload):
    """`managedPublisher.PreSignURLResponse`.

    Go embeds BaseResponse *and* declares its own ExecutionID/JobID; encoding/json keeps the shallower
    (own) ones, so each key appears once, after the embedded JobType and Events.
    """

    job_type: str = Field("", alias="JobType")
    events: NoneList[Event] = Field(default_factory=list, alias="Events")
    execution_id: str = Field("", alias="ExecutionID")
    job_id: str = Field("", alias="JobID")
    pre_signed_url: str = Field("", alias="PreSignedURL")
