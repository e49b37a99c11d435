"""Golden vectors: what our encoder puts in the payload of every NCL message type, key for key.

Each expected payload is written by hand from Bacalhau v1.9's Go structs and JSON tags
(pkg/models/messages/*.go, pkg/bacerrors/json.go, pkg/models/event.go, node_info.go, resource.go), not
produced by our model code: exact key case (lower-case `accepted`/`reason`/`stderr`/`address`), Go's
struct order, `{}`/`[]` never `null`, `omitempty` keys left out, extension fields absent unless set.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest

from bacalhau.models.execution import RunCommandResult
from bacalhau.models.job import SpecConfig
from bacalhau.models.node import BuildVersionInfo, ComputeNodeInfo, NodeInfo
from bacalhau.models.resources import GPU, Resources
from bacalhau.transport.ncl.bac_error import BacError, handshake_required
from bacalhau.transport.ncl.control import (
    HandshakeRequest,
    HandshakeResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    ShutdownNoticeRequest,
    ShutdownNoticeResponse,
    UpdateNodeInfoRequest,
    UpdateNodeInfoResponse,
)
from bacalhau.transport.ncl.data import (
    AskForBidRequest,
    BidAcceptedRequest,
    BidRejectedRequest,
    BidResult,
    CancelExecutionRequest,
    ComputeError,
    ExecutionProgress,
    ManagedPublisherPreSignURLRequest,
    ManagedPublisherPreSignURLResponse,
    RunResult,
)
from bacalhau.transport.ncl.event import Event
from bacalhau.transport.ncl.payload import NclPayload
from bacalhau.transport.ncl.registry import encode_message
from factories import make_execution, make_job

# -- hand-written Go JSON ------------------------------------------------------------------------------------
GPU_JSON = {"Index": 0, "Name": "Tesla T4", "Vendor": "NVIDIA", "Memory": 15360, "PCIAddress": "0000:00:1e.0"}
CAPACITY_JSON = {"CPU": 4, "Memory": 8000000000, "Disk": 100000000000, "GPU": 1, "GPUs": [GPU_JSON]}
NODE_INFO_JSON = {
    "NodeID": "n-1",
    "NodeType": "Compute",
    "Labels": {"zone": "eu-1"},
    "SupportedProtocols": ["ncl/v1"],
    "ComputeNodeInfo": {
        "ExecutionEngines": ["docker", "wasm"],
        "Publishers": ["local"],
        "StorageSources": ["urlDownload"],
        "MaxCapacity": CAPACITY_JSON,
        "QueueCapacity": {},
        "AvailableCapacity": {"CPU": 3.5, "Memory": 4000000000},
        "MaxJobRequirements": CAPACITY_JSON,
        "RunningExecutions": 1,
        "EnqueuedExecutions": 0,
        "address": "10.0.0.7",
    },
    "BacalhauVersion": {
        "GitVersion": "v1.9.3",
        "GitCommit": "e28960c7",
        "BuildDate": "2026-08-19T20:40:26Z",
        "GOOS": "linux",
        "GOARCH": "amd64",
    },
}
EVENT_JSON = {"Message": "Accepted job", "Topic": "Scheduling", "Timestamp": "2025-01-02T03:04:05.123456789Z"}
ERROR_EVENT_JSON = {
    "Message": "exit status 1",
    "Topic": "Execution",
    "Timestamp": "2025-01-02T03:04:06Z",
    "Details": {"IsError": "true", "ErrorCode": "Executor:ExecutionError"},
}


# -- the same values, built with our models --------------------------------------------------------------------
def capacity() -> Resources:
    gpu = GPU(Index=0, Name="Tesla T4", Vendor="NVIDIA", Memory=15360, PCIAddress="0000:00:1e.0")
    return Resources(CPU=4.0, Memory=8_000_000_000, Disk=100_000_000_000, GPU=1, GPUs=[gpu])


def node_info() -> NodeInfo:
    return NodeInfo(
        NodeID="n-1",
        NodeType="Compute",
        Labels={"zone": "eu-1"},
        SupportedProtocols=["ncl/v1"],
        ComputeNodeInfo=ComputeNodeInfo(
            ExecutionEngines=["docker", "wasm"],
            Publishers=["local"],
            StorageSources=["urlDownload"],
            MaxCapacity=capacity(),
            QueueCapacity=Resources(),
            AvailableCapacity=Resources(CPU=3.5, Memory=4_000_000_000),
            MaxJobRequirements=capacity(),
            RunningExecutions=1,
            address="10.0.0.7",
        ),
        BacalhauVersion=BuildVersionInfo(
            GitVersion="v1.9.3", GitCommit="e28960c7", BuildDate="2026-08-19T20:40:26Z", GOOS="linux", GOARCH="amd64"
        ),
    )


def event() -> Event:
    return Event(Message="Accepted job", Topic="Scheduling", Timestamp="2025-01-02T03:04:05.123456789Z")


def error_event() -> Event:
    return Event(
        Message="exit status 1",
        Topic="Execution",
        Timestamp="2025-01-02T03:04:06Z",
        Details={"IsError": "true", "ErrorCode": "Executor:ExecutionError"},
    )


def sent(payload: NclPayload, type_name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Encode, check the frame header against zlib's CRC and the type keys; return (headers, payload JSON)."""
    headers, body = encode_message(payload, source="n-1", event_time_ns=1)
    assert body[0] == 0x01
    assert struct.unpack(">I", body[1:5])[0] == zlib.crc32(body[5:])
    document = json.loads(body[5:])
    assert list(document) == ["metadata", "payload"]
    assert document["metadata"] == headers
    assert headers["Bacalhau-Type"] == headers["Type"] == type_name
    return headers, document["payload"]


GOLDEN: list[tuple[str, NclPayload, dict[str, Any]]] = [
    (
        "transport.HandshakeRequest",
        HandshakeRequest(NodeInfo=node_info(), StartTime="2025-01-02T03:04:05.123456789Z", LastOrchestratorSeqNum=41),
        {"NodeInfo": NODE_INFO_JSON, "StartTime": "2025-01-02T03:04:05.123456789Z", "LastOrchestratorSeqNum": 41},
    ),
    (
        "transport.HandshakeRequest",
        HandshakeRequest(NodeInfo=node_info(), LastOrchestratorSeqNum=0, ActiveExecutionIDs=[]),
        # Extension present (even empty) when set: "I hold no executions" is information.
        {
            "NodeInfo": NODE_INFO_JSON,
            "StartTime": "0001-01-01T00:00:00Z",
            "LastOrchestratorSeqNum": 0,
            "ActiveExecutionIDs": [],
        },
    ),
    (
        "transport.HandshakeResponse",
        HandshakeResponse(accepted=True, reason="node registered", LastComputeSeqNum=3, LastOrchestratorSeqNum=120),
        {"accepted": True, "reason": "node registered", "LastComputeSeqNum": 3, "LastOrchestratorSeqNum": 120},
    ),
    (
        "transport.HandshakeResponse",
        HandshakeResponse(accepted=False),
        {"accepted": False, "LastComputeSeqNum": 0, "LastOrchestratorSeqNum": 0},
    ),
    (
        "transport.HandshakeResponse",
        HandshakeResponse(accepted=True, reason="node reconnected", Extensions=["reconcile"]),
        {
            "accepted": True,
            "reason": "node reconnected",
            "LastComputeSeqNum": 0,
            "LastOrchestratorSeqNum": 0,
            "Extensions": ["reconcile"],
        },
    ),
    (
        "transport.HeartbeatRequest",
        HeartbeatRequest(
            NodeID="n-1", AvailableCapacity=capacity(), QueueUsedCapacity=Resources(), LastOrchestratorSeqNum=42
        ),
        {"NodeID": "n-1", "AvailableCapacity": CAPACITY_JSON, "QueueUsedCapacity": {}, "LastOrchestratorSeqNum": 42},
    ),
    ("transport.HeartbeatResponse", HeartbeatResponse(LastComputeSeqNum=9), {"LastComputeSeqNum": 9}),
    ("transport.UpdateNodeInfoRequest", UpdateNodeInfoRequest(NodeInfo=node_info()), {"NodeInfo": NODE_INFO_JSON}),
    (
        "transport.UpdateNodeInfoResponse",
        UpdateNodeInfoResponse(accepted=False, reason="node registration rejected"),
        {"accepted": False, "reason": "node registration rejected"},
    ),
    ("transport.UpdateNodeInfoResponse", UpdateNodeInfoResponse(accepted=True), {"accepted": True}),
    (
        "transport.ShutdownNoticeRequest",
        ShutdownNoticeRequest(NodeID="n-1", Reason="node shutting down", LastOrchestratorSeqNum=5),
        {"NodeID": "n-1", "Reason": "node shutting down", "LastOrchestratorSeqNum": 5},
    ),
    (
        "transport.ShutdownNoticeRequest",
        ShutdownNoticeRequest(NodeID="n-1", LastOrchestratorSeqNum=5),
        {"NodeID": "n-1", "LastOrchestratorSeqNum": 5},
    ),
    (
        # Our drain extension: only sent to an orchestrator that announced "drain"; absent otherwise (above).
        "transport.ShutdownNoticeRequest",
        ShutdownNoticeRequest(NodeID="n-1", Reason="node draining", LastOrchestratorSeqNum=5, Draining=True),
        {"NodeID": "n-1", "Reason": "node draining", "LastOrchestratorSeqNum": 5, "Draining": True},
    ),
    ("transport.ShutdownNoticeResponse", ShutdownNoticeResponse(LastComputeSeqNum=4), {"LastComputeSeqNum": 4}),
    (
        "BidAccepted",
        BidAcceptedRequest(Events=[event()], ExecutionID="e-1", Accepted=True),
        {"Events": [EVENT_JSON], "ExecutionID": "e-1", "Accepted": True},
    ),
    (
        "BidRejected",
        BidRejectedRequest(Events=[event()], ExecutionID="e-1"),
        {"Events": [EVENT_JSON], "ExecutionID": "e-1"},
    ),
    ("CancelExecution", CancelExecutionRequest(ExecutionID="e-1"), {"Events": [], "ExecutionID": "e-1"}),
    (
        "BidResult",
        BidResult(ExecutionID="e-1", JobID="j-1", JobType="batch", Events=[event()], Accepted=True),
        {"ExecutionID": "e-1", "JobID": "j-1", "JobType": "batch", "Events": [EVENT_JSON], "Accepted": True},
    ),
    (
        "RunResult",
        RunResult(
            ExecutionID="e-1",
            JobID="j-1",
            JobType="batch",
            PublishResult=SpecConfig(Type="local", Params={"URL": "http://10.0.0.7:6001/e-1.tar.gz"}),
            RunCommandResult=RunCommandResult(Stdout="hi\n", stderr="warn\n", StderrTruncated=True, ExitCode=0),
        ),
        {
            "ExecutionID": "e-1",
            "JobID": "j-1",
            "JobType": "batch",
            "Events": [],
            "PublishResult": {"Type": "local", "Params": {"URL": "http://10.0.0.7:6001/e-1.tar.gz"}},
            "RunCommandResult": {
                "Stdout": "hi\n",
                "StdoutTruncated": False,
                "stderr": "warn\n",
                "StderrTruncated": True,
                "ExitCode": 0,
                "ErrorMsg": "",
            },
        },
    ),
    (
        "RunResult",
        RunResult(ExecutionID="e-1", JobID="j-1", JobType="ops"),
        {
            "ExecutionID": "e-1",
            "JobID": "j-1",
            "JobType": "ops",
            "Events": [],
            "PublishResult": None,
            "RunCommandResult": None,
        },
    ),
    (
        "ComputeError",
        ComputeError(ExecutionID="e-1", JobID="j-1", JobType="batch", Events=[error_event()]),
        {"ExecutionID": "e-1", "JobID": "j-1", "JobType": "batch", "Events": [ERROR_EVENT_JSON]},
    ),
    (
        # Extension (Python peers only): the state as Bacalhau's integer, like ComputeState.StateType.
        "py.ExecutionProgress",
        ExecutionProgress(ExecutionID="e-1", JobID="j-1", JobType="batch", State=7),
        {"ExecutionID": "e-1", "JobID": "j-1", "JobType": "batch", "Events": [], "State": 7},
    ),
    (
        "managedPublisher.PreSignURLRequest",
        ManagedPublisherPreSignURLRequest(ExecutionID="e-1", JobID="j-1"),
        {"Events": [], "ExecutionID": "e-1", "JobID": "j-1"},
    ),
    (
        "managedPublisher.PreSignURLResponse",
        ManagedPublisherPreSignURLResponse(
            JobType="batch", ExecutionID="e-1", JobID="j-1", PreSignedURL="https://s3.example/e-1?sig=x"
        ),
        {
            "JobType": "batch",
            "Events": [],
            "ExecutionID": "e-1",
            "JobID": "j-1",
            "PreSignedURL": "https://s3.example/e-1?sig=x",
        },
    ),
    (
        "BacError",
        handshake_required("n-1"),
        {
            "Cause": "node n-1 not connected - handshake required",
            "Hint": "",
            "Retryable": True,
            "FailsExecution": False,
            "Component": "ConnectionManager",
            "HTTPStatusCode": 428,
            "Details": {},
            "Code": "HandshakeRequired",
        },
    ),
]


@pytest.mark.parametrize(
    ("type_name", "payload", "expected"), GOLDEN, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOLDEN)]
)
def test_encoded_payload_matches_gos_json(type_name: str, payload: NclPayload, expected: dict[str, Any]) -> None:
    _, wire = sent(payload, type_name)
    assert wire == expected
    assert list(wire) == list(expected)  # Go's struct field order


def test_every_registered_type_has_a_golden_vector() -> None:
    from bacalhau.transport.ncl.registry import MESSAGE_TYPES

    covered = {name for name, _, _ in GOLDEN} | {"AskForBid"}  # AskForBid: test below
    assert covered == set(MESSAGE_TYPES)


def test_bac_error_carries_status_and_error_code_metadata() -> None:
    headers, _ = sent(handshake_required("n-1"), "BacError")
    assert headers["Bacalhau-StatusCode"] == "428"
    assert headers["Bacalhau-ErrorCode"] == "HandshakeRequired"


def test_handshake_required_from_the_nodes_manager_names_that_component() -> None:
    assert handshake_required("n-2", component="NodesManager").component == "NodesManager"


def test_ask_for_bid_carries_the_full_execution_as_go_needs_it() -> None:
    job = make_job(meta={}, labels={})
    execution = make_execution(job, node_id="n-1")
    _, wire = sent(AskForBidRequest(Events=[event()], Execution=execution), "AskForBid")
    assert list(wire) == ["Events", "Execution"]
    assert wire["Events"] == [EVENT_JSON]
    sent_execution = wire["Execution"]
    go_execution_keys = {
        "ID",
        "Namespace",
        "EvalID",
        "Name",
        "NodeID",
        "JobID",
        "Job",
        "JobVersion",
        "AllocatedResources",
        "DesiredState",
        "ComputeState",
        "PublishedResult",
        "RunOutput",
        "PreviousExecution",
        "NextExecution",
        "FollowupEvalID",
        "Revision",
        "CreateTime",
        "ModifyTime",
    }  # pkg/models/execution.go; PartitionIndex is omitempty
    assert go_execution_keys <= set(sent_execution)
    assert sent_execution["ID"] == execution.id
    assert sent_execution["NodeID"] == "n-1"
    # Execution states are integers on the wire, job states names.
    assert sent_execution["ComputeState"]["StateType"] == 1
    assert sent_execution["DesiredState"]["StateType"] == 1
    assert sent_execution["Job"]["State"]["StateType"] == "Pending"
    # A Go compute writes into Job.Meta: it must be an object, never null; Tasks non-empty.
    assert sent_execution["Job"]["Meta"] == {}
    assert sent_execution["Job"]["Labels"] == {}
    assert sent_execution["Job"]["Tasks"][0]["Engine"]["Type"] == "docker"
    assert sent_execution["AllocatedResources"]["Tasks"]["main"]["CPU"] == 0.5
    assert isinstance(sent_execution["CreateTime"], int)


def test_ask_for_bid_refuses_an_execution_without_its_job() -> None:
    execution = make_execution(make_job()).model_copy(update={"job": None})
    with pytest.raises(ValueError, match="Job"):
        AskForBidRequest(Execution=execution)


def test_node_info_without_compute_info_still_sends_a_compute_info_object() -> None:
    _, wire = sent(UpdateNodeInfoRequest(NodeInfo=NodeInfo(NodeID="n-1")), "transport.UpdateNodeInfoRequest")
    compute = wire["NodeInfo"]["ComputeNodeInfo"]
    assert compute["ExecutionEngines"] == []
    assert compute["MaxCapacity"] == {}
    assert compute["address"] == ""
    assert wire["NodeInfo"]["Labels"] == {}
    assert wire["NodeInfo"]["SupportedProtocols"] == []


def test_node_info_build_date_is_never_an_empty_time() -> None:
    info = NodeInfo(NodeID="n-1", BacalhauVersion=BuildVersionInfo(BuildDate=""))
    _, wire = sent(UpdateNodeInfoRequest(NodeInfo=info), "transport.UpdateNodeInfoRequest")
    assert wire["NodeInfo"]["BacalhauVersion"]["BuildDate"] == "0001-01-01T00:00:00Z"


def test_event_timestamp_defaults_to_gos_zero_time_not_an_empty_string() -> None:
    _, wire = sent(CancelExecutionRequest(ExecutionID="e-1", Events=[Event(Message="stop")]), "CancelExecution")
    assert wire["Events"] == [{"Message": "stop", "Topic": "", "Timestamp": "0001-01-01T00:00:00Z"}]


def test_for_execution_fills_ids_and_job_type_like_gos_new_base_response() -> None:
    job = make_job(type="ops")
    execution = make_execution(job)
    result = BidResult.for_execution(execution, Accepted=True, Events=[event()])
    assert (result.execution_id, result.job_id, result.job_type, result.accepted) == (execution.id, job.id, "ops", True)
    failure = ComputeError.for_execution(execution, Events=[error_event()])
    assert failure.message == "exit status 1"
    assert ComputeError().message == ""


def test_bac_error_from_one_of_our_errors() -> None:
    from bacalhau.models.errors import NotFoundError

    error = NotFoundError("execution e-9 not found", component="Compute", hint="check the ID")
    wire = BacError.from_error(error).to_wire()
    assert wire == {
        "Cause": "execution e-9 not found",
        "Hint": "check the ID",
        "Retryable": False,
        "FailsExecution": False,
        "Component": "Compute",
        "HTTPStatusCode": 404,
        "Details": {},
        "Code": "NotFound",
    }


def test_compute_error_extension_output_is_absent_for_go_and_present_for_python_peers() -> None:
    bare = ComputeError(ExecutionID="e-1", JobID="j-1", JobType="batch").to_wire()
    assert "RunCommandResult" not in bare  # a Go orchestrator sees exactly its own shape
    with_output = ComputeError(
        ExecutionID="e-1", RunCommandResult={"Stdout": "partial", "ExitCode": 3}
    ).to_wire()
    assert with_output["RunCommandResult"]["Stdout"] == "partial"
    assert with_output["RunCommandResult"]["ExitCode"] == 3
