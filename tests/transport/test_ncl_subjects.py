"""NCL subjects exactly as Bacalhau v1.9 builds them (pkg/transport/nclprotocol/subjects.go,
pkg/nats/proxy/constants.go), node-ID validation (pkg/nats/transport/nats.go), and parsing them back."""

from __future__ import annotations

import pytest

from bacalhau.transport.ncl import subjects
from bacalhau.transport.ncl.errors import InvalidNodeID, InvalidSubject, NclError
from bacalhau.transport.ncl.subjects import Channel


def test_compute_subjects_are_bacalhaus() -> None:
    assert subjects.compute_out_ctrl("n-1") == "bacalhau.global.compute.n-1.out.ctrl"
    assert subjects.compute_out_requests("n-1") == "bacalhau.global.compute.n-1.out.requests"
    assert subjects.compute_out_msgs("n-1") == "bacalhau.global.compute.n-1.out.msgs"
    assert subjects.compute_in_msgs("n-1") == "bacalhau.global.compute.n-1.in.msgs"


def test_orchestrator_wildcard_subscriptions_are_bacalhaus() -> None:
    assert subjects.ORCHESTRATOR_CTRL_SUBSCRIPTION == "bacalhau.global.compute.*.out.ctrl"
    assert subjects.ORCHESTRATOR_REQUESTS_SUBSCRIPTION == "bacalhau.global.compute.*.out.requests"
    assert subjects.ORCHESTRATOR_MSGS_SUBSCRIPTION == "bacalhau.global.compute.*.out.msgs"


def test_legacy_and_log_stream_subjects() -> None:
    assert subjects.legacy_register_node("n-1") == "node.management.n-1.RegisterNode/v1"
    assert subjects.LEGACY_MANAGEMENT_SUBSCRIPTION == "node.management.>"
    assert subjects.execution_logs("n-1") == "node.compute.n-1.ExecutionLogs/v1"
    assert subjects.compute_endpoint_subscription("n-1") == "node.compute.n-1.>"


@pytest.mark.parametrize(
    "node_id",
    ["", "a.b", "node*", "node>", ">", "with space", "tab\there", "new\nline", "nul\x00", "nbsp\u00a0", " lead"],
)
def test_node_ids_that_cannot_be_a_subject_token_are_refused(node_id: str) -> None:
    with pytest.raises(InvalidNodeID) as info:
        subjects.validate_node_id(node_id)
    assert info.value.hint
    with pytest.raises(InvalidNodeID):
        subjects.compute_in_msgs(node_id)  # every builder validates


@pytest.mark.parametrize("node_id", ["n-6c9b8a1e-0d1f-4a55-9a3b-2f1a9c0e7d11", "QmHash_1", "node-1", "ünïcode"])
def test_ordinary_node_ids_are_accepted(node_id: str) -> None:
    assert subjects.validate_node_id(node_id) == node_id


@pytest.mark.parametrize(
    ("subject", "node_id", "channel"),
    [
        ("bacalhau.global.compute.n-1.out.ctrl", "n-1", Channel.OUT_CTRL),
        ("bacalhau.global.compute.n-1.out.requests", "n-1", Channel.OUT_REQUESTS),
        ("bacalhau.global.compute.n-1.out.msgs", "n-1", Channel.OUT_MSGS),
        ("bacalhau.global.compute.n-1.in.msgs", "n-1", Channel.IN_MSGS),
        ("bacalhau.global.compute.n-1.out.heartbeat", "n-1", Channel.OUT_HEARTBEAT),
        ("node.management.n-2.RegisterNode/v1", "n-2", "RegisterNode/v1"),
        ("node.compute.n-3.ExecutionLogs/v1", "n-3", "ExecutionLogs/v1"),
    ],
)
def test_received_subjects_name_their_node(subject: str, node_id: str, channel: str) -> None:
    parsed = subjects.parse_subject(subject)
    assert (parsed.node_id, parsed.channel) == (node_id, channel)
    assert subjects.node_id_from_subject(subject) == node_id


@pytest.mark.parametrize(
    "subject",
    [
        "bacalhau.global.compute.*.out.ctrl",  # a wildcard where a node ID belongs
        "bacalhau.global.compute.>.in.msgs",
        "bacalhau.global.compute.n-1.out.unknown",
        "bacalhau.global.compute.n-1.out",
        "bacalhau.global.compute..out.ctrl",
        "bacalhau.global.requester.n-1.out.ctrl",
        "node.other.n-1.RegisterNode/v1",
        "_INBOX.abc.def",
        "",
    ],
)
def test_other_subjects_are_refused(subject: str) -> None:
    with pytest.raises(InvalidSubject):
        subjects.node_id_from_subject(subject)


def test_subject_errors_share_the_ncl_root() -> None:
    assert issubclass(InvalidSubject, NclError)
    assert issubclass(InvalidNodeID, NclError)
