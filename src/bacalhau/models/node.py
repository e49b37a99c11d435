"""Node information: what a node is, what it can run, and how it is connected."""

from __future__ import annotations

import enum

from pydantic import Field

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


class NodeState(WireModel):
    info: NodeInfo = Field(default_factory=NodeInfo, alias="Info")
    membership: Membership = Field(Membership.APPROVED, alias="Membership")
    # Legacy flat connection field, kept because older clients read it.
    connection: ConnectionStatus = Field(ConnectionStatus.CONNECTED, alias="Connection")
    connection_state: ConnectionState = Field(default_factory=ConnectionState, alias="ConnectionState")
