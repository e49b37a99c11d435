"""The metadata of an NCL message: its keys, and lenient readers for the values peers put there.

Metadata is a flat `str -> str` map carried twice: inside the frame body (what Go reads) and as NATS
headers (what Go sends too, and what tools like `nats sub` show). Keys and their producers, from
`pkg/lib/envelope/metadata.go`, `pkg/lib/ncl/constants.go`, `error_response.go` and
`pkg/transport/nclprotocol/types.go`:

    Bacalhau-Type (+ legacy Type)                   registered payload type name      mandatory
    Bacalhau-PayloadEncoding (+ legacy PayloadEncoding)  "json"                       mandatory
    Bacalhau-Source                                 sender name                       informational
    Bacalhau-EventTime                              Unix nanoseconds, decimal         informational
    Bacalhau-SeqNum / Bacalhau-MessageID            data plane: sender's seq, "seq-N" seq tracking
    Bacalhau-Subject                                orchestrator's routing of in.msgs informational
    Bacalhau-StatusCode / Bacalhau-ErrorCode        on BacError replies               informational

Values written by other implementations are read leniently: Go's own error replies can carry a
negative `Bacalhau-EventTime` (a zero time's UnixNano), so a bad value reads as "absent", never raises.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Final

KEY_TYPE: Final = "Bacalhau-Type"
KEY_LEGACY_TYPE: Final = "Type"
KEY_PAYLOAD_ENCODING: Final = "Bacalhau-PayloadEncoding"
KEY_LEGACY_PAYLOAD_ENCODING: Final = "PayloadEncoding"
KEY_SOURCE: Final = "Bacalhau-Source"
KEY_EVENT_TIME: Final = "Bacalhau-EventTime"
KEY_MESSAGE_ID: Final = "Bacalhau-MessageID"
KEY_MESSAGE_UUID: Final = "Bacalhau-MessageUUID"  # declared by Go (ncl/constants.go), never set
KEY_SEQ_NUM: Final = "Bacalhau-SeqNum"
KEY_SUBJECT: Final = "Bacalhau-Subject"
KEY_STATUS_CODE: Final = "Bacalhau-StatusCode"
KEY_ERROR_CODE: Final = "Bacalhau-ErrorCode"

PAYLOAD_ENCODING_JSON: Final = "json"

# Bacalhau-Source values a Go orchestrator uses (a compute uses its node ID).
SOURCE_ORCHESTRATOR_CONTROL: Final = "orchestrator-control"
SOURCE_ORCHESTRATOR_DATA_PLANE_RESPONDER: Final = "orchestrator-data-plane-responder"


def orchestrator_source(node_id: str) -> str:
    """The source name of the orchestrator's per-node publisher and subscriber: `orchestrator-<nodeID>`."""
    return f"orchestrator-{node_id}"


def message_type(metadata: Mapping[str, str]) -> str:
    """The payload type name, falling back to the legacy `Type` key as Go's `Metadata.Get` does; "" if absent."""
    value = metadata.get(KEY_TYPE)
    return value if value is not None else metadata.get(KEY_LEGACY_TYPE, "")


def payload_encoding(metadata: Mapping[str, str]) -> str:
    """The payload encoding, falling back to the legacy `PayloadEncoding` key; "" if absent."""
    value = metadata.get(KEY_PAYLOAD_ENCODING)
    return value if value is not None else metadata.get(KEY_LEGACY_PAYLOAD_ENCODING, "")


_DECIMAL = re.compile(r"^[+-]?[0-9]+$")


def _int_value(metadata: Mapping[str, str], key: str) -> int | None:
    value = metadata.get(key)
    if value is None or not _DECIMAL.match(value.strip()):
        return None
    try:
        return int(value)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return None


def seq_num(metadata: Mapping[str, str]) -> int | None:
    """The sender's sequence number of a data-plane message; None if absent or not a non-negative integer."""
    value = _int_value(metadata, KEY_SEQ_NUM)
    return value if value is not None and value >= 0 else None


def event_time_ns(metadata: Mapping[str, str]) -> int | None:
    """When the sender says the message was made, in Unix ns; None if absent or unreadable.

    Negative values are returned as they are (Go writes one for its error replies); an RFC3339 string,
    which Go's error replies set before the encoder's rewrite, is also understood. Use it for display
    and metrics only: liveness must use the receiver's own clock.
    """
    value = _int_value(metadata, KEY_EVENT_TIME)
    if value is not None:
        return value
    text = metadata.get(KEY_EVENT_TIME, "")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def data_plane_metadata(seq: int, *, subject: str | None = None) -> dict[str, str]:
    """The keys a data-plane message carries: `Bacalhau-SeqNum`, `Bacalhau-MessageID: seq-N` and, optionally,
    the `Bacalhau-Subject` it is routed to (Go's orchestrator sets it to the node's `in.msgs` subject)."""
    metadata = {KEY_SEQ_NUM: str(seq), KEY_MESSAGE_ID: f"seq-{seq}"}
    if subject is not None:
        metadata[KEY_SUBJECT] = subject
    return metadata
