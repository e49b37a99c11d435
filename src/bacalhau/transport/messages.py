"""Typed messages between orchestrator and compute, named as in Bacalhau's NCL protocol.

These are the facts each side hands the other through the Protocols of `base.py`; on the wire they
travel as NCL payloads (`ncl/convert.py` maps one to the other, `ncl/registry.py` names the types).
"""

from __future__ import annotations

from pydantic import Field

from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.fields import NoneList, StrMap
from bacalhau.models.job import SpecConfig
from bacalhau.models.node import NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.models.state import ExecutionStateType, ExecutionStateWire
from bacalhau.models.wire import WireModel


class AskForBid(WireModel):
    """Orchestrator -> compute: please run this execution (pre-approved: no second round trip)."""

    execution: Execution = Field(alias="Execution")


class BidAccepted(WireModel):
    """Orchestrator -> compute: a pending bid is accepted, start the execution (Go orchestrators only:
    ours offers executions already accepted)."""

    execution_id: str = Field(alias="ExecutionID")


class CancelExecution(WireModel):
    """Orchestrator -> compute: stop this execution promptly."""

    execution_id: str = Field(alias="ExecutionID")
    reason: str = Field("", alias="Reason")


class BidResult(WireModel):
    """Compute -> orchestrator: whether the node took the execution, and why not."""

    execution_id: str = Field(alias="ExecutionID")
    job_id: str = Field(alias="JobID")
    # The node that sent the report (set by the transport from where it came, not by the sender): the
    # orchestrator records reports only from the node the execution was placed on.
    node_id: str = Field("", alias="NodeID")
    accepted: bool = Field(alias="Accepted")
    reason: str = Field("", alias="Reason")


class ExecutionProgress(WireModel):
    """Compute -> orchestrator: the execution moved (Running, Publishing)."""

    execution_id: str = Field(alias="ExecutionID")
    job_id: str = Field(alias="JobID")
    # The node that sent the report (set by the transport from where it came, not by the sender): the
    # orchestrator records reports only from the node the execution was placed on.
    node_id: str = Field("", alias="NodeID")
    state: ExecutionStateWire = Field(ExecutionStateType.Running, alias="State")
    message: str = Field("", alias="Message")


class ExecutionStep(WireModel):
    """A state an execution reached before the final report that carries it (ours, see `Steps`)."""

    state: ExecutionStateWire = Field(alias="State")
    message: str = Field("", alias="Message")
    time_ns: int = Field(0, alias="Time")  # when the compute node reached it, Unix ns


# The states a compute node reports as steps: its own, between the orchestrator's offer and the end.
STEP_STATES = frozenset({ExecutionStateType.BidAccepted, ExecutionStateType.Running, ExecutionStateType.Publishing})


def step_report(execution_id: str, job_id: str, step: ExecutionStep) -> BidResult | ExecutionProgress:
    """The report a step is when it goes on its own: an accepted BidResult, or progress (Running,
    Publishing)."""
    if step.state is ExecutionStateType.BidAccepted:
        return BidResult(execution_id=execution_id, job_id=job_id, accepted=True)
    return ExecutionProgress(execution_id=execution_id, job_id=job_id, state=step.state, message=step.message)


class RunResult(WireModel):
    """Compute -> orchestrator: the execution finished and its results were published."""

    execution_id: str = Field(alias="ExecutionID")
    job_id: str = Field(alias="JobID")
    # The node that sent the report (set by the transport from where it came, not by the sender): the
    # orchestrator records reports only from the node the execution was placed on.
    node_id: str = Field("", alias="NodeID")
    run_output: RunCommandResult = Field(default_factory=RunCommandResult, alias="RunOutput")
    published_result: SpecConfig | None = Field(None, alias="PublishedResult")
    # What the executor recorded (e.g. ImageDigest, ModuleSHA256): kept in ComputeState.Details.
    details: StrMap = Field(default_factory=dict, alias="Details")
    # Ours: the steps before this report that were not reported on their own (bid accepted, Running,
    # Publishing), oldest first; only to an orchestrator that accepts them (OrchestratorService.accepts_steps).
    steps: list[ExecutionStep] = Field(default_factory=list, alias="Steps")


class ComputeError(WireModel):
    """Compute -> orchestrator: the execution failed. Details carry ErrorCode, Hint, Retryable."""

    execution_id: str = Field(alias="ExecutionID")
    job_id: str = Field(alias="JobID")
    # The node that sent the report (set by the transport from where it came, not by the sender): the
    # orchestrator records reports only from the node the execution was placed on.
    node_id: str = Field("", alias="NodeID")
    message: str = Field("", alias="Message")
    run_output: RunCommandResult | None = Field(None, alias="RunOutput")
    details: StrMap = Field(default_factory=dict, alias="Details")
    steps: list[ExecutionStep] = Field(default_factory=list, alias="Steps")  # as RunResult.steps


class Handshake(WireModel):
    """Compute -> orchestrator on (re)connect: who I am and which executions I still hold.

    With `active_execution_ids` given, the orchestrator reconciles: it fails every execution it
    believes runs on this node that is not listed (the node lost it), and answers with the listed ones
    it no longer wants (cancel them). None means the node did not say (a Go Bacalhau compute, whose
    handshake has no such field): nothing is reconciled then.
    """

    node_info: NodeInfo = Field(alias="NodeInfo")
    active_execution_ids: list[str] | None = Field(None, alias="ActiveExecutionIDs")
    restarted: bool = Field(False, alias="Restarted")


class HandshakeOutcome(WireModel):
    """Orchestrator -> compute: the answer to a Handshake."""

    accepted: bool = Field(True, alias="Accepted")
    # Why not, in Bacalhau's words ("node has been rejected", "node is not a compute node").
    reason: str = Field("", alias="Reason")
    # Listed executions the orchestrator no longer wants: the node cancels them.
    cancel_execution_ids: NoneList[str] = Field(default_factory=list, alias="CancelExecutionIDs")


class Heartbeat(WireModel):
    """Compute -> orchestrator every Compute.Heartbeat.Interval: alive, and how much room it has."""

    node_id: str = Field(alias="NodeID")
    available_capacity: Resources = Field(default_factory=Resources, alias="AvailableCapacity")
    queue_used_capacity: Resources = Field(default_factory=Resources, alias="QueueUsedCapacity")


class ShutdownNotice(WireModel):
    """Compute -> orchestrator: the node is stopping on purpose.

    `draining`: it has only started to stop: no new work, but what it runs may still finish (or be
    handed back); a second notice without it follows when it leaves.
    """

    node_id: str = Field(alias="NodeID")
    reason: str = Field("", alias="Reason")
    draining: bool = Field(False, alias="Draining")


class NodeInfoUpdate(WireModel):
    """Compute -> orchestrator: capacity or labels changed."""

    node_info: NodeInfo = Field(alias="NodeInfo")


class LogStreamRequest(WireModel):
    execution_id: str = Field(alias="ExecutionID")
    follow: bool = Field(False, alias="Follow")
    tail: bool = Field(False, alias="Tail")

