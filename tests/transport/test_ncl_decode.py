"""Decoding frames shaped the way a Go Bacalhau v1.9 node sends them, into typed payloads.

Every frame is built here by hand: b"\\x01" + CRC-32 + JSON typed out as Go prints it (integer
execution states, Go's zero time, lower-case keys, `null` for nil slices and maps, extra fields from a
newer version), so these tests pin what we must read from a Go peer, independently of our encoder.
"""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from bacalhau.models.errors import ErrorCode
from bacalhau.models.history import Event as HistoryEvent
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.transport.ncl.bac_error import BacError
from bacalhau.transport.ncl.control import (
    HandshakeRequest,
    HandshakeResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    UpdateNodeInfoResponse,
)
from bacalhau.transport.ncl.data import AskForBidRequest, BaseResponse, BidResult, ComputeError, RunResult
from bacalhau.transport.ncl.errors import (
    InvalidPayload,
    RemoteError,
    UnexpectedMessageType,
    UnsupportedMessageType,
)
from bacalhau.transport.ncl.registry import (
    MESSAGE_TYPES,
    decode_message,
    decode_response,
    encode_message,
    payload_class,
    type_name,
)
from bacalhau.transport.ncl.wire_types import GO_ZERO_TIME_NS, format_wire_time, wire_time_ns


def go_frame(type_name: str, payload_json: str, **extra_metadata: str) -> bytes:
    """A frame as a Go node sends it; `payload_json` is spliced in verbatim (json.RawMessage)."""
    metadata = {
        "Bacalhau-EventTime": "1700000000000000000",
        "Bacalhau-PayloadEncoding": "json",
        "Bacalhau-Source": "n-go",
        "Bacalhau-Type": type_name,
        "PayloadEncoding": "json",
        "Type": type_name,
        **extra_metadata,
    }
    data = ('{"metadata":' + json.dumps(metadata, separators=(",", ":")) + ',"payload":' + payload_json + "}").encode()
    return b"\x01" + struct.pack(">I", zlib.crc32(data)) + data


GO_NODE_INFO = """{"NodeID":"n-go","NodeType":"Compute","Labels":{"Architecture":"amd64"},
 "SupportedProtocols":["bprotocol/v2","ncl/v1"],
 "ComputeNodeInfo":{"ExecutionEngines":["docker","wasm"],"Publishers":["noop","local"],"StorageSources":["urlDownload"],
  "MaxCapacity":{"CPU":3.2,"Memory":6871947673,"Disk":50000000000,"GPU":1,
   "GPUs":[{"Index":0,"Name":"Tesla T4","Vendor":"NVIDIA","Memory":15360,"PCIAddress":"0000:00:1e.0"}]},
  "QueueCapacity":{},"AvailableCapacity":{"CPU":3.2,"Memory":6871947673,"Disk":50000000000},
  "MaxJobRequirements":{"CPU":3.2},"RunningExecutions":2,"EnqueuedExecutions":1,"address":"192.168.1.5"},
 "BacalhauVersion":{"Major":"1","Minor":"9","GitVersion":"v1.9.3","GitCommit":"e28960c7",
  "BuildDate":"2026-08-19T20:40:26Z","GOOS":"linux","GOARCH":"amd64"},
 "FutureField":{"x":1}}"""


# -- control plane -----------------------------------------------------------------------------------------
def test_handshake_request_from_a_go_compute() -> None:
    body = go_frame(
        "transport.HandshakeRequest",
        '{"NodeInfo":'
        + GO_NODE_INFO
        + ',"StartTime":"0001-01-01T00:00:00Z","LastOrchestratorSeqNum":18446744073709551615}',
    )
    message = decode_message(body)
    request = message.payload
    assert isinstance(request, HandshakeRequest)
    assert message.type == "transport.HandshakeRequest"
    assert message.source == "n-go"
    info = request.node_info
    assert info.node_id == "n-go"
    assert info.supported_protocols == ["bprotocol/v2", "ncl/v1"]
    assert info.labels == {"Architecture": "amd64"}
    assert info.compute_node_info is not None
    assert info.compute_node_info.address == "192.168.1.5"  # lower-case `address`
    assert info.compute_node_info.queue_capacity.is_zero()  # `{}` = all zero (omitempty)
    assert info.compute_node_info.max_capacity.gpus[0].name == "Tesla T4"
    assert info.compute_node_info.max_job_requirements.memory == 0
    assert info.bacalhau_version.major == "1"
    assert request.start_time == "0001-01-01T00:00:00Z"  # Go's zero time
    assert request.last_orchestrator_seq_num == 2**64 - 1
    assert request.active_execution_ids is None  # a Go compute never reports them


def test_handshake_response_from_a_go_orchestrator_uses_lower_case_keys() -> None:
    body = go_frame(
        "transport.HandshakeResponse",
        '{"accepted":true,"reason":"node reconnected","LastComputeSeqNum":17,"LastOrchestratorSeqNum":99}',
    )
    response = decode_response(body, HandshakeResponse)
    assert response.accepted is True
    assert response.reason == "node reconnected"
    assert response.last_compute_seq_num == 17
    assert response.starting_orchestrator_seq_num == 99  # Go's StartingOrchestratorSeqNum
    assert response.extensions is None


def test_rejected_handshake_without_reason_key() -> None:
    response = decode_response(
        go_frame("transport.HandshakeResponse", '{"accepted":false,"LastComputeSeqNum":0,"LastOrchestratorSeqNum":0}'),
        HandshakeResponse,
    )
    assert (response.accepted, response.reason) == (False, "")


def test_payload_keys_match_case_insensitively_like_go_and_exact_case_wins() -> None:
    response = decode_response(
        go_frame("transport.UpdateNodeInfoResponse", '{"Accepted":true,"REASON":"ok"}'), UpdateNodeInfoResponse
    )
    assert (response.accepted, response.reason) == (True, "ok")
    both = decode_response(
        go_frame("transport.UpdateNodeInfoResponse", '{"Accepted":false,"accepted":true}'), UpdateNodeInfoResponse
    )
    assert both.accepted is True


def test_heartbeat_with_omitted_resources_reads_zeros() -> None:
    body = go_frame(
        "transport.HeartbeatRequest",
        '{"NodeID":"n-go","AvailableCapacity":{"CPU":1.5,"Memory":1000},"QueueUsedCapacity":{},"LastOrchestratorSeqNum":7}',
    )
    request = decode_message(body).payload
    assert isinstance(request, HeartbeatRequest)
    assert request.available_capacity.cpu == 1.5
    assert request.available_capacity.disk == 0
    assert request.available_capacity.gpus == []
    assert request.queue_used_capacity.is_zero()
    assert request.last_orchestrator_seq_num == 7


def test_legacy_type_key_alone_is_enough() -> None:
    data = b'{"metadata":{"Type":"transport.HeartbeatResponse","PayloadEncoding":"json"},"payload":{"LastComputeSeqNum":3}}'
    message = decode_message(b"\x01" + struct.pack(">I", zlib.crc32(data)) + data)
    assert isinstance(message.payload, HeartbeatResponse)
    assert message.payload.last_compute_seq_num == 3
    assert message.event_time_ns is None
    assert message.seq_num is None


def test_null_payload_is_the_zero_value_as_in_go() -> None:
    response = decode_response(go_frame("transport.HeartbeatResponse", "null"), HeartbeatResponse)
    assert response.last_compute_seq_num == 0


# -- BacError replies ----------------------------------------------------------------------------------------
GO_HANDSHAKE_REQUIRED = (
    '{"Cause":"node n-py not connected - handshake required","Hint":"","Retryable":true,"FailsExecution":false,'
    '"Component":"ConnectionManager","HTTPStatusCode":428,"Details":null,"Code":"HandshakeRequired"}'
)


def test_handshake_required_reply_from_go_raises_a_remote_error() -> None:
    # Go's BacErrorToEnvelope writes an RFC3339 event time that its encoder rewrites as this negative number.
    body = go_frame(
        "BacError",
        GO_HANDSHAKE_REQUIRED,
        **{
            "Bacalhau-EventTime": "-6795364578871345152",
            "Bacalhau-StatusCode": "428",
            "Bacalhau-ErrorCode": "HandshakeRequired",
        },
    )
    message = decode_message(body)
    assert isinstance(message.payload, BacError)
    assert message.payload.details == {}
    assert message.event_time_ns == -6795364578871345152
    with pytest.raises(RemoteError) as info:
        decode_response(body, HeartbeatResponse)
    error = info.value
    assert error.handshake_required
    assert error.remote_code == "HandshakeRequired"
    assert error.code is ErrorCode.UnknownError  # no ErrorCode member for it; remote_code keeps it
    assert error.retryable
    assert error.http_status == 428
    assert error.component == "ConnectionManager"
    assert str(error) == "node n-py not connected - handshake required"


def test_other_remote_errors_map_to_our_codes() -> None:
    body = go_frame(
        "BacError",
        '{"Cause":"no handler found for message type: X","Code":"NotFound",'
        '"HTTPStatusCode":404,"Component":"Bacalhau","Details":{"k":"v"}}',
    )
    with pytest.raises(RemoteError) as info:
        decode_response(body, HandshakeResponse)
    assert info.value.code is ErrorCode.NotFound
    assert not info.value.handshake_required
    assert info.value.details == {"k": "v"}


def test_a_reply_of_another_type_is_unexpected() -> None:
    with pytest.raises(UnexpectedMessageType, match=r"expected transport\.HandshakeResponse"):
        decode_response(go_frame("transport.HeartbeatResponse", '{"LastComputeSeqNum":1}'), HandshakeResponse)


# -- data plane ----------------------------------------------------------------------------------------------
GO_EXECUTION = """{"ID":"e-1","Namespace":"default","EvalID":"ev-1","Name":"job-1","NodeID":"n-go","JobID":"j-1",
 "Job":{"ID":"j-1","Name":"job-1","Namespace":"default","Type":"batch","Priority":0,"Count":1,"Constraints":null,
  "Meta":{"bacalhau.org/requester.id":"orch-1"},"Labels":null,
  "Tasks":[{"Name":"main","Engine":{"Type":"docker","Params":{"Image":"ubuntu:24.04","Parameters":["echo","hi"]}},
   "Publisher":{"Type":""},"Env":null,"Meta":null,"InputSources":null,"ResultPaths":null,
   "Resources":{"CPU":"500m","Memory":"512Mb"},"Network":{"Type":"None"},
   "Timeouts":{"ExecutionTimeout":1800,"QueueTimeout":0,"TotalTimeout":0}}],
  "State":{"StateType":"Running"},"Version":1,"Revision":2,"CreateTime":1700000000000000000,
  "ModifyTime":1700000000000000001},
 "JobVersion":1,"AllocatedResources":{"Tasks":{}},
 "DesiredState":{"StateType":1,"Message":"execution approved"},"ComputeState":{"StateType":1},
 "PublishedResult":null,"RunOutput":null,"PreviousExecution":"","NextExecution":"","FollowupEvalID":"",
 "Revision":1,"CreateTime":1700000000000000002,"ModifyTime":1700000000000000003,"AddedInV2":true}"""


def test_ask_for_bid_from_a_go_orchestrator() -> None:
    body = go_frame(
        "AskForBid",
        '{"Events":null,"Execution":' + GO_EXECUTION + "}",
        **{
            "Bacalhau-SeqNum": "1042",
            "Bacalhau-MessageID": "seq-1042",
            "Bacalhau-Subject": "bacalhau.global.compute.n-go.in.msgs",
        },
    )
    message = decode_message(body)
    request = message.payload
    assert isinstance(request, AskForBidRequest)
    assert message.seq_num == 1042
    assert request.events == []
    execution = request.execution
    assert execution.compute_state.state_type is ExecutionStateType.New  # integer 1
    assert execution.desired_state.state_type is ExecutionDesiredStateType.Running
    assert execution.create_time == 1_700_000_000_000_000_002
    assert execution.job is not None
    assert execution.job.state.state_type is JobStateType.Running  # a name for jobs
    assert execution.job.meta == {"bacalhau.org/requester.id": "orch-1"}
    assert execution.job.labels == {}
    assert execution.job.tasks[0].engine.params["Image"] == "ubuntu:24.04"
    assert execution.job.tasks[0].env == {}


def test_run_result_reads_lower_case_stderr() -> None:
    body = go_frame(
        "RunResult",
        '{"ExecutionID":"e-1","JobID":"j-1","JobType":"batch","Events":[],"PublishResult":null,'
        '"RunCommandResult":{"Stdout":"out","StdoutTruncated":false,"stderr":"err","StderrTruncated":true,'
        '"ExitCode":3,"ErrorMsg":""}}',
    )
    result = decode_message(body).payload
    assert isinstance(result, RunResult)
    assert result.publish_result is None
    assert result.run_command_result is not None
    assert (result.run_command_result.stderr, result.run_command_result.stderr_truncated) == ("err", True)
    assert result.run_command_result.exit_code == 3


def test_compute_error_message_is_the_first_event_and_events_are_history_events() -> None:
    body = go_frame(
        "ComputeError",
        '{"ExecutionID":"e-1","JobID":"j-1","JobType":"batch","Events":[{"Message":"image not found",'
        '"Topic":"Executor","Timestamp":"2025-01-02T03:04:05.123456789+02:00","Details":{"IsError":"true"}}]}',
    )
    error = decode_message(body).payload
    assert isinstance(error, ComputeError)
    assert error.message == "image not found"
    assert isinstance(error.events[0], HistoryEvent)
    assert error.events[0].timestamp == "2025-01-02T03:04:05.123456789+02:00"
    assert error.events[0].details == {"IsError": "true"}


def test_bid_result_with_null_events() -> None:
    body = go_frame("BidResult", '{"ExecutionID":"e-1","JobID":"j-1","JobType":"batch","Events":null,"Accepted":false}')
    result = decode_message(body).payload
    assert isinstance(result, BidResult)
    assert (result.events, result.accepted) == ([], False)


# -- refusals ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("type_name", "payload_json"),
    [
        ("transport.HeartbeatRequest", '{"LastOrchestratorSeqNum":-1}'),  # uint64
        ("transport.HeartbeatRequest", '{"LastOrchestratorSeqNum":"5"}'),  # Go refuses a string
        ("transport.HeartbeatRequest", '{"LastOrchestratorSeqNum":18446744073709551616}'),
        ("transport.HandshakeRequest", '{"StartTime":"yesterday"}'),
        ("transport.HandshakeRequest", '{"StartTime":"2025-13-01T00:00:00Z"}'),
        ("AskForBid", '{"Events":[]}'),  # no execution
        ("AskForBid", '{"Execution":{"ID":"e-1","ComputeState":{"StateType":1}}}'),  # no job
        (
            "AskForBid",
            '{"Execution":'
            + GO_EXECUTION.replace('"ComputeState":{"StateType":1}', '"ComputeState":{"StateType":99}')
            + "}",
        ),
        ("BidResult", "[1,2,3]"),
        ("BidResult", '{"Accepted":"yes"}'),
    ],
)
def test_payloads_go_could_not_read_either_are_invalid(type_name: str, payload_json: str) -> None:
    with pytest.raises(InvalidPayload):
        decode_message(go_frame(type_name, payload_json))


def test_an_unknown_type_is_unsupported_and_lists_the_known_ones() -> None:
    with pytest.raises(UnsupportedMessageType) as info:
        decode_message(go_frame("ExecutionProgress", "{}"))
    assert info.value.type_name == "ExecutionProgress"
    assert "AskForBid" in info.value.supported


# -- the registry ----------------------------------------------------------------------------------------------
def test_the_registry_holds_exactly_bacalhaus_type_names() -> None:
    # pkg/transport/nclprotocol/registry.go + the encoder's BacError, plus our extensions (py.*), which
    # are sent only to peers that announced them.
    assert {name for name in MESSAGE_TYPES if not name.startswith("py.")} == {
        "AskForBid",
        "BidAccepted",
        "BidRejected",
        "CancelExecution",
        "BidResult",
        "RunResult",
        "ComputeError",
        "transport.HandshakeRequest",
        "transport.HeartbeatRequest",
        "transport.UpdateNodeInfoRequest",
        "transport.ShutdownNoticeRequest",
        "transport.HandshakeResponse",
        "transport.HeartbeatResponse",
        "transport.UpdateNodeInfoResponse",
        "transport.ShutdownNoticeResponse",
        "managedPublisher.PreSignURLRequest",
        "managedPublisher.PreSignURLResponse",
        "BacError",
    }
    for name, cls in MESSAGE_TYPES.items():
        assert type_name(cls) == name
        assert payload_class(name) is cls


def test_an_unregistered_class_cannot_be_encoded() -> None:
    with pytest.raises(UnsupportedMessageType):
        encode_message(BaseResponse(ExecutionID="e-1"), source="n-1")


@pytest.mark.parametrize("name", sorted(set(MESSAGE_TYPES) - {"AskForBid"}))
def test_every_type_round_trips_through_a_frame(name: str) -> None:
    original = MESSAGE_TYPES[name]()
    _, body = encode_message(original, source="n-1")
    decoded = decode_message(body).payload
    assert type(decoded) is type(original)
    assert decoded.to_wire() == original.to_wire()


# -- time helpers ----------------------------------------------------------------------------------------------
def test_wire_time_helpers_keep_nanoseconds_and_gos_zero_time() -> None:
    assert format_wire_time(GO_ZERO_TIME_NS) == "0001-01-01T00:00:00Z"
    assert wire_time_ns("0001-01-01T00:00:00Z") == GO_ZERO_TIME_NS
    assert format_wire_time(1_735_787_045_123_456_789) == "2025-01-02T03:04:05.123456789Z"
    assert format_wire_time(1_735_787_045_500_000_000) == "2025-01-02T03:04:05.5Z"
    assert wire_time_ns("2025-01-02T05:04:05.123456789+02:00") == 1_735_787_045_123_456_789
    with pytest.raises(ValueError):
        wire_time_ns("2025-01-02 03:04:05")
