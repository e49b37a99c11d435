"""Node information: what a node is, what it can run, and how it is connected."""

from __future__ import annotations

import enum

from pydantic import Field

from bacalhau.models.data_holdings import DataHoldings
from bacalhau.models.fields import NoneList, StrMap
from bacalhau.models.resources import Resources
from bacalhau.models.wire import WireModel

NODE_TYPE_REQUESTER = "Requester"
NODE_TYPE_COMPUTE = "Compute"
PROTOCOL_NCL_V1 = "ncl/v1"


class Membership(enum.StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class ConnectionStatus(enum.StrEnum):
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


# Go's zero time.Time as it marshals: Go clients cannot parse "" where a time belongs.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class BuildVersionInfo(WireModel):
    major: str = Field("", alias="Major")
    minor: str = Field("", alias="Minor")
    git_version: str = Field("", alias="GitVersion")
    git_commit: str = Field("", alias="GitCommit")
    build_date: str = Field(GO_ZERO_TIME, alias="BuildDate")
    goos: str = Field("", alias="GOOS")
    goarch: str = Field("", alias="GOARCH")


class ComputeNodeInfo(WireModel):
    execution_engines: NoneList[str] = Field(default_factory=list, alias="ExecutionEngines")
    publishers: NoneList[str] = Field(default_factory=list, alias="Publishers")
    storage_sources: NoneList[str] = Field(default_factory=list, alias="StorageSources")
    max_capacity: Resources = Field(default_factory=Resources, alias="MaxCapacity")
    queue_capacity: Resources = Field(default_factory=Resources, alias="QueueCapacity")
    available_capacity: Resources = Field(default_factory=Resources, alias="AvailableCapacity")
    max_job_requirements: Resources = Field(default_factory=Resources, alias="MaxJobRequirements")
    running_executions: int = Field(0, alias="RunningExecutions")
    enqueued_executions: int = Field(0, alias="EnqueuedExecutions")
    address: str = Field("", alias="address")
    # Ours: what input data the node holds (a Go orchestrator ignores it; None from a Go node).
    data_holdings: DataHoldings | None = Field(None, alias="DataHoldings")


class NodeInfo(WireModel):
    node_id: str = Field("", alias="NodeID")
    node_type: str = Field(NODE_TYPE_COMPUTE, alias="NodeType")
    labels: StrMap = Field(default_factory=dict, alias="Labels")
    supported_protocols: NoneList[str] = Field(default_factory=list, alias="SupportedProtocols")
    compute_node_info: ComputeNodeInfo | None = Field(None, alias="ComputeNodeInfo")
    bacalhau_version: BuildVersionInfo = Field(default_factory=BuildVersionInfo, alias="BacalhauVersion")


class ConnectionState(WireModel):
    status: ConnectionStatus = Field(ConnectionStatus.CONNECTED, alias="Status")
    last_heartbeat: str = Field(GO_ZERO_TIME, alias="LastHeartbeat")
    connected_since: str = Field(GO_ZERO_TIME, alias="ConnectedSince")
    disconnected_since: str = Field(GO_ZERO_TIME, alias="DisconnectedSince")
    last_error: str = Field("", alias="LastError")


class NodeCordon(WireModel):
    """Why, since when and until when a node takes no new work (`bacalhau node drain`; ours, not Bacalhau's).

    Present on a NodeState while the node is cordoned, null once `node uncordon` lets it take work again.
    Orthogonal to Membership and ConnectionState: a cordon outlives disconnections, re-handshakes,
    rejection and re-approval, and orchestrator restarts; only uncordon (or deleting the node) ends it.
    """

    # RFC3339, when the node was first cordoned (a later drain that changes the deadline keeps it).
    since: str = Field(GO_ZERO_TIME, alias="Since")
    # RFC3339Nano, when work still running on the node is moved off it (daemon executions stop at
    # once); null: never moved, it finishes there. Nanoseconds, so that the stored value is exact.
    deadline: str | None = Field(None, alias="Deadline")
    message: str = Field("", alias="Message")


class NodeState(WireModel):
    info: NodeInfo = Field(default_factory=NodeInfo, alias="Info")
    membership: Membership = Field(Membership.APPROVED, alias="Membership")
    # Legacy flat connection field, kept because older clients read it.
    connection: ConnectionStatus = Field(ConnectionStatus.CONNECTED, alias="Connection")
    connection_state: ConnectionState = Field(default_factory=ConnectionState, alias="ConnectionState")
    # Ours: null unless an operator cordoned the node (see NodeCordon). Clients that do not know the key
    # ignore it (Go's decoder, and the official Python clients, which read only their declared keys).
    cordon: NodeCordon | None = Field(None, alias="Cordon")
