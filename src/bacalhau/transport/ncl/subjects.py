"""Every NATS subject of the cluster protocol, and node-ID validation (node IDs are subject tokens).

NCL (`pkg/transport/nclprotocol/subjects.go`), for compute node <id>::

    bacalhau.global.compute.<id>.out.ctrl      compute -> orch  control requests (handshake, heartbeat...)
    bacalhau.global.compute.<id>.out.requests  compute -> orch  data-plane requests (pre-signed URLs)
    bacalhau.global.compute.<id>.out.msgs      compute -> orch  BidResult, RunResult, ComputeError (acked)
    bacalhau.global.compute.<id>.in.msgs       orch -> compute  AskForBid, BidAccepted/Rejected, Cancel (acked)

The orchestrator serves the first two with one wildcard subscription each; Go subscribes to each
node's out.msgs at handshake. Outside NCL: the legacy registration probe a Go compute sends first
(`node.management.<id>.RegisterNode/v1`; a v1.9 orchestrator refuses it, which makes the compute
fall back to NCL) and log streaming (`node.compute.<id>.ExecutionLogs/v1`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from bacalhau.transport.ncl.errors import InvalidNodeID, InvalidSubject

COMPUTE_PREFIX: Final = "bacalhau.global.compute"
LEGACY_MANAGEMENT_PREFIX: Final = "node.management"
COMPUTE_ENDPOINT_PREFIX: Final = "node.compute"

# Legacy (bprotocol) methods under node.management.<id>. and node.compute.<id>.
METHOD_REGISTER_NODE: Final = "RegisterNode/v1"
METHOD_UPDATE_NODE_INFO: Final = "UpdateNodeInfo/v1"
METHOD_UPDATE_RESOURCES: Final = "UpdateResources/v1"
METHOD_EXECUTION_LOGS: Final = "ExecutionLogs/v1"


class Channel(enum.StrEnum):
    """The last two tokens of a `bacalhau.global.compute.<id>.*` subject."""

    OUT_CTRL = "out.ctrl"
    OUT_REQUESTS = "out.requests"
    OUT_MSGS = "out.msgs"
    IN_MSGS = "in.msgs"
    OUT_HEARTBEAT = "out.heartbeat"  # legacy bprotocol heartbeats, not NCL


# The orchestrator's wildcard subscriptions (Go: NatsSubjectOrchestratorInCtrl / InRequests).
ORCHESTRATOR_CTRL_SUBSCRIPTION: Final = f"{COMPUTE_PREFIX}.*.{Channel.OUT_CTRL}"
ORCHESTRATOR_REQUESTS_SUBSCRIPTION: Final = f"{COMPUTE_PREFIX}.*.{Channel.OUT_REQUESTS}"
# Not Go's (it subscribes per node); one subscription routing every node's messages by subject instead.
ORCHESTRATOR_MSGS_SUBSCRIPTION: Final = f"{COMPUTE_PREFIX}.*.{Channel.OUT_MSGS}"
LEGACY_MANAGEMENT_SUBSCRIPTION: Final = f"{LEGACY_MANAGEMENT_PREFIX}.>"

_CHANNELS: Final = frozenset(channel.value for channel in Channel)
# Go's reservedChars, plus what Go's NoSpaces/NoNullChars refuse.
_RESERVED: Final = frozenset(".*>\x00")


def validate_node_id(node_id: str) -> str:
    """Return `node_id` if it can be a NATS subject token; raise InvalidNodeID otherwise.

    Refused as Go refuses them (`pkg/nats/transport/nats.go`): empty, any white space, NUL, `.`, `*`, `>`.
    """
    if not isinstance(node_id, str) or not node_id:
        raise InvalidNodeID(str(node_id), "must not be empty")
    for ch in node_id:
        if ch in _RESERVED:
            raise InvalidNodeID(node_id, f"must not contain {ch!r} (NATS subject separator or wildcard)")
        if ch.isspace():
            raise InvalidNodeID(node_id, "must not contain white space")
    return node_id


def compute_subject(node_id: str, channel: Channel) -> str:
    """`bacalhau.global.compute.<id>.<channel>`; raises InvalidNodeID."""
    return f"{COMPUTE_PREFIX}.{validate_node_id(node_id)}.{channel}"


def compute_out_ctrl(node_id: str) -> str:
    """Where a compute sends control requests (Go: NatsSubjectComputeOutCtrl)."""
    return compute_subject(node_id, Channel.OUT_CTRL)


def compute_out_requests(node_id: str) -> str:
    """Where a compute sends data-plane requests (Go: NatsSubjectComputeOutRequests)."""
    return compute_subject(node_id, Channel.OUT_REQUESTS)


def compute_out_msgs(node_id: str) -> str:
    """Where a compute publishes its data-plane messages; the orchestrator subscribes (Go: ...OrchestratorInMsgs)."""
    return compute_subject(node_id, Channel.OUT_MSGS)


def compute_in_msgs(node_id: str) -> str:
    """Where the orchestrator publishes to a compute; the compute subscribes before its handshake."""
    return compute_subject(node_id, Channel.IN_MSGS)


def legacy_register_node(node_id: str) -> str:
    """`node.management.<id>.RegisterNode/v1`: the probe a Go compute sends before falling back to NCL."""
    return f"{LEGACY_MANAGEMENT_PREFIX}.{validate_node_id(node_id)}.{METHOD_REGISTER_NODE}"


def execution_logs(node_id: str) -> str:
    """`node.compute.<id>.ExecutionLogs/v1`: log-stream requests to a compute (not enveloped, not NCL)."""
    return f"{COMPUTE_ENDPOINT_PREFIX}.{validate_node_id(node_id)}.{METHOD_EXECUTION_LOGS}"


def compute_endpoint_subscription(node_id: str) -> str:
    """`node.compute.<id>.>`: what a compute subscribes to for log-stream requests."""
    return f"{COMPUTE_ENDPOINT_PREFIX}.{validate_node_id(node_id)}.>"


@dataclass(frozen=True)
class ParsedSubject:
    """A subject taken apart: whose it is and which channel (`out.ctrl`...) or legacy method (`RegisterNode/v1`)."""

    node_id: str
    channel: str


def parse_subject(subject: str) -> ParsedSubject:
    """Take a received subject apart; raises InvalidSubject for anything this module would not build.

    The node ID token is validated too, so a subject with a wildcard-looking token is refused.
    """
    tokens = subject.split(".")
    channel: str
    if len(tokens) == 6 and ".".join(tokens[:3]) == COMPUTE_PREFIX:
        name = f"{tokens[4]}.{tokens[5]}"
        if name not in _CHANNELS:
            raise InvalidSubject(subject, f"unknown channel {name!r}")
        node_id, channel = tokens[3], Channel(name)
    elif len(tokens) == 4 and f"{tokens[0]}.{tokens[1]}" in (LEGACY_MANAGEMENT_PREFIX, COMPUTE_ENDPOINT_PREFIX):
        node_id, channel = tokens[2], tokens[3]
    else:
        raise InvalidSubject(subject, "expected bacalhau.global.compute.<id>.<channel> or node.<kind>.<id>.<method>")
    try:
        validate_node_id(node_id)
    except InvalidNodeID as exc:
        raise InvalidSubject(subject, exc.message) from None
    return ParsedSubject(node_id=node_id, channel=channel)


def node_id_from_subject(subject: str) -> str:
    """The node ID token of a received NCL (or legacy) subject; raises InvalidSubject."""
    return parse_subject(subject).node_id
