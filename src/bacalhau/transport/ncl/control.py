"""Control-plane payloads: compute -> orchestrator requests on `...<id>.out.ctrl` and their responses.

JSON keys are Go's tags in `pkg/models/messages/control_plane.go`, including the lower-case
`accepted`/`reason` and HandshakeResponse's `StartingOrchestratorSeqNum` field that Go serialises as
`LastOrchestratorSeqNum`. Flow on one connection::

    compute                                   orchestrator
      HandshakeRequest        ---------------->  registers, starts the node's data plane
                              <----------------  HandshakeResponse{accepted, LastOrchestratorSeqNum = start}
      HeartbeatRequest (15 s) ---------------->  LastHeartbeat = orchestrator now
                              <----------------  HeartbeatResponse | BacError{Code: HandshakeRequired}
      UpdateNodeInfoRequest   ---------------->  (only when static node info changed)
      ShutdownNoticeRequest   ---------------->  node DISCONNECTED at once ("graceful shutdown")

Two optional extensions for Python peers are omitted from the JSON when None, so a Go peer sees
exactly its own shape: `HandshakeRequest.ActiveExecutionIDs` (the compute's non-terminal executions,
for reconciliation) and `HandshakeResponse.Extensions` (what the orchestrator understands beyond NCL).
"""

from __future__ import annotations

from typing import ClassVar, Final

from pydantic import Field

from bacalhau.models.node import GO_ZERO_TIME, NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.transport.ncl.payload import NclPayload
from bacalhau.transport.ncl.wire_types import GoBool, GoNodeInfo, GoResources, Uint64, WireTime

# HandshakeResponse / UpdateNodeInfoResponse reasons a Go orchestrator gives (pkg/orchestrator/nodes/manager.go).
REASON_NODE_REGISTERED: Final = "node registered"
REASON_NODE_RECONNECTED: Final = "node reconnected"
REASON_NODE_REJECTED: Final = "node has been rejected"
REASON_NOT_A_COMPUTE_NODE: Final = "node is not a compute node"
REASON_REGISTRATION_REJECTED: Final = "node registration rejected"

# Names for HandshakeResponse.Extensions.
EXTENSION_RECONCILE: Final = "reconcile"  # reads HandshakeRequest.ActiveExecutionIDs
EXTENSION_PROGRESS: Final = "progress"  # accepts py.ExecutionProgress on the data plane
# Reads ShutdownNoticeRequest.Draining: a draining node takes no new work but keeps its executions.
EXTENSION_DRAIN: Final = "drain"
# Reads RunResult.Steps / ComputeError.Steps: the steps before a final report, not sent on their own.
EXTENSION_STEPS: Final = "steps"


class HandshakeRequest(NclPayload):
    """`transport.HandshakeRequest`: who the compute is; sent on every (re)connect."""

    node_info: GoNodeInfo = Field(default_factory=NodeInfo, alias="NodeInfo")
    # The compute's clock, informational only.
    start_time: WireTime = Field(GO_ZERO_TIME, alias="StartTime")
    # The compute's checkpoint of processed orchestrator messages; a Go orchestrator ignores it.
    last_orchestrator_seq_num: Uint64 = Field(0, alias="LastOrchestratorSeqNum")
    # Extension: IDs of the compute's non-terminal executions; None = not reported (a Go compute).
    active_execution_ids: list[str] | None = Field(None, alias="ActiveExecutionIDs")
    # Extension: the last sequence number the compute ever assigned to a message of its own. Below the
    # orchestrator's checkpoint it means the compute lost its outbox (a wiped data dir under the same
    # name): the orchestrator must start counting it from zero again, or it would drop its messages.
    last_compute_seq_num: Uint64 | None = Field(None, alias="LastComputeSeqNum")

    omit_if_none: ClassVar[tuple[str, ...]] = ("ActiveExecutionIDs", "LastComputeSeqNum")


class HandshakeResponse(NclPayload):
    """`transport.HandshakeResponse`: accepted or not, and where the orchestrator starts sending from."""

    accepted: GoBool = Field(False, alias="accepted")
    reason: str = Field("", alias="reason")
    last_compute_seq_num: Uint64 = Field(0, alias="LastComputeSeqNum")
    # Go's StartingOrchestratorSeqNum, tagged `LastOrchestratorSeqNum` on the wire: the compute
    # overwrites its incoming checkpoint with it.
    starting_orchestrator_seq_num: Uint64 = Field(0, alias="LastOrchestratorSeqNum")
    # Extension: capabilities beyond Go NCL; None = a Go orchestrator (understands none).
    extensions: list[str] | None = Field(None, alias="Extensions")

    omit_if_empty: ClassVar[tuple[str, ...]] = ("reason",)
    omit_if_none: ClassVar[tuple[str, ...]] = ("Extensions",)


class HeartbeatRequest(NclPayload):
    """`transport.HeartbeatRequest`: liveness plus current capacity, every 15 s after the handshake."""

    node_id: str = Field("", alias="NodeID")
    available_capacity: GoResources = Field(default_factory=Resources, alias="AvailableCapacity")
    # Note the name: `QueueUsedCapacity` here, `QueueCapacity` inside NodeInfo.
    queue_used_capacity: GoResources = Field(default_factory=Resources, alias="QueueUsedCapacity")
    # Last `Bacalhau-SeqNum` the compute processed from the orchestrator.
    last_orchestrator_seq_num: Uint64 = Field(0, alias="LastOrchestratorSeqNum")


class HeartbeatResponse(NclPayload):
    """`transport.HeartbeatResponse`; a Go compute checks only the type, not the value."""

    last_compute_seq_num: Uint64 = Field(0, alias="LastComputeSeqNum")


class UpdateNodeInfoRequest(NclPayload):
    """`transport.UpdateNodeInfoRequest`: the node's static info changed (engines, labels, max capacity)."""

    node_info: GoNodeInfo = Field(default_factory=NodeInfo, alias="NodeInfo")


class UpdateNodeInfoResponse(NclPayload):
    """`transport.UpdateNodeInfoResponse`."""

    accepted: GoBool = Field(False, alias="accepted")
    reason: str = Field("", alias="reason")

    omit_if_empty: ClassVar[tuple[str, ...]] = ("reason",)


class ShutdownNoticeRequest(NclPayload):
    """`transport.ShutdownNoticeRequest`: the compute is stopping on purpose."""

    node_id: str = Field("", alias="NodeID")
    reason: str = Field("", alias="Reason")
    last_orchestrator_seq_num: Uint64 = Field(0, alias="LastOrchestratorSeqNum")
    # Extension (EXTENSION_DRAIN): True = the node starts draining and will send a plain notice when
    # it leaves. Only sent to an orchestrator that announced it; a Go peer never sees the field.
    draining: bool | None = Field(None, alias="Draining")

    omit_if_empty: ClassVar[tuple[str, ...]] = ("Reason",)
    omit_if_none: ClassVar[tuple[str, ...]] = ("Draining",)


class ShutdownNoticeResponse(NclPayload):
    """`transport.ShutdownNoticeResponse`."""

    last_compute_seq_num: Uint64 = Field(0, alias="LastComputeSeqNum")
