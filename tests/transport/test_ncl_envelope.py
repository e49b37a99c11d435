"""The NCL v1 frame, byte for byte: 0x01 + CRC-32 (big-endian) + compact JSON {"metadata", "payload"}.

Expected bytes are written out here by hand from Bacalhau's Go serializer (pkg/lib/envelope), never
produced by our encoder, so a change in our output that a Go peer would notice fails these tests.
"""

from __future__ import annotations

import contextlib
import json
import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bacalhau.transport.ncl import metadata as meta
from bacalhau.transport.ncl.envelope import DEFAULT_MAX_MESSAGE_BYTES, decode, encode
from bacalhau.transport.ncl.errors import (
    ChecksumMismatch,
    FrameTooShort,
    InvalidEnvelope,
    InvalidMetadata,
    InvalidPayload,
    MessageTooLarge,
    MissingMessageType,
    NclError,
    UnsupportedPayloadEncoding,
    UnsupportedSchemaVersion,
)
from bacalhau.transport.ncl.registry import decode_message


def frame(document: bytes | str | dict[str, Any], *, version: int = 1) -> bytes:
    """A frame as Go's Serializer builds it: version byte, CRC-32 IEEE big-endian of the rest, the rest."""
    if isinstance(document, dict):
        document = json.dumps(document, separators=(",", ":"))
    data = document.encode() if isinstance(document, str) else document
    return bytes([version]) + struct.pack(">I", zlib.crc32(data)) + data


GO_METADATA = {
    "Bacalhau-EventTime": "1700000000000000000",
    "Bacalhau-PayloadEncoding": "json",
    "Bacalhau-Source": "n-1",
    "Bacalhau-Type": "transport.HeartbeatResponse",
    "PayloadEncoding": "json",
    "Type": "transport.HeartbeatResponse",
}


# -- encoding ----------------------------------------------------------------------------------------------
def test_encode_is_byte_identical_to_gos_frame() -> None:
    # What Go's encoder + Serializer emit for HeartbeatResponse{LastComputeSeqNum: 7} from source "n-1":
    # map keys sorted, compact JSON, CRC over everything after byte 4.
    expected_json = (
        b'{"metadata":{"Bacalhau-EventTime":"1700000000000000000","Bacalhau-PayloadEncoding":"json",'
        b'"Bacalhau-Source":"n-1","Bacalhau-Type":"transport.HeartbeatResponse","PayloadEncoding":"json",'
        b'"Type":"transport.HeartbeatResponse"},"payload":{"LastComputeSeqNum":7}}'
    )
    headers, body = encode(
        "transport.HeartbeatResponse", {"LastComputeSeqNum": 7}, source="n-1", event_time_ns=1_700_000_000_000_000_000
    )
    assert body == b"\x01" + struct.pack(">I", zlib.crc32(expected_json)) + expected_json
    assert headers == GO_METADATA


def test_headers_repeat_the_body_metadata_with_both_type_and_encoding_keys() -> None:
    headers, body = encode("BidResult", {}, source="n-1", metadata=meta.data_plane_metadata(12), event_time_ns=5)
    body_metadata = json.loads(body[5:])["metadata"]
    assert headers == body_metadata
    assert headers["Bacalhau-Type"] == headers["Type"] == "BidResult"
    assert headers["Bacalhau-PayloadEncoding"] == headers["PayloadEncoding"] == "json"
    assert headers["Bacalhau-SeqNum"] == "12"
    assert headers["Bacalhau-MessageID"] == "seq-12"
    assert headers["Bacalhau-EventTime"] == "5"


def test_event_time_defaults_to_now_in_unix_nanoseconds() -> None:
    import time

    before = time.time_ns()
    headers, _ = encode("BidResult", {}, source="n-1")
    assert before <= int(headers["Bacalhau-EventTime"]) <= time.time_ns()


def test_mandatory_keys_cannot_be_overridden_by_caller_metadata() -> None:
    headers, _ = encode(
        "BidResult",
        {},
        source="n-1",
        metadata={"Bacalhau-Type": "Other", "Type": "Other", "PayloadEncoding": "xml", "Bacalhau-Source": "x"},
    )
    assert headers["Bacalhau-Type"] == headers["Type"] == "BidResult"
    assert headers["PayloadEncoding"] == "json"
    assert headers["Bacalhau-Source"] == "n-1"


def test_non_ascii_text_is_sent_as_utf8_and_round_trips() -> None:
    _, body = encode("ComputeError", {"Events": [{"Message": "échec ✗"}]}, source="n-1")
    assert "échec ✗".encode() in body
    assert decode(body).payload == {"Events": [{"Message": "échec ✗"}]}


@pytest.mark.parametrize(
    ("key", "value"),
    [("Bad Key", "v"), ("Bad:Key", "v"), ("", "v"), ("X-Ok", "line\r\nInjected: 1"), ("X-Ok", "nul\x00")],
)
def test_encode_refuses_metadata_that_cannot_be_a_nats_header(key: str, value: str) -> None:
    with pytest.raises(InvalidMetadata):
        encode("BidResult", {}, source="n-1", metadata={key: value})


def test_encode_refuses_a_blank_source_and_a_nan() -> None:
    with pytest.raises(InvalidMetadata):
        encode("BidResult", {}, source=" ")
    with pytest.raises(InvalidPayload):
        encode("HeartbeatRequest", {"AvailableCapacity": {"CPU": float("nan")}}, source="n-1")


def test_encode_refuses_a_frame_over_the_limit() -> None:
    with pytest.raises(MessageTooLarge) as info:
        encode("RunResult", {"Stdout": "x" * 2000}, source="n-1", max_bytes=1000)
    assert info.value.limit == 1000
    assert info.value.size > 2000
    assert DEFAULT_MAX_MESSAGE_BYTES > 10 * 1024 * 1024  # room for Bacalhau's 10 MB job specs


# -- decoding ----------------------------------------------------------------------------------------------
def test_decode_reads_a_go_frame() -> None:
    envelope = decode(frame({"metadata": GO_METADATA, "payload": {"LastComputeSeqNum": 7}}))
    assert envelope.metadata == GO_METADATA
    assert envelope.payload == {"LastComputeSeqNum": 7}
    assert envelope.message_type == "transport.HeartbeatResponse"


def test_decode_accepts_the_legacy_type_and_encoding_keys_alone() -> None:
    envelope = decode(frame({"metadata": {"Type": "BidResult", "PayloadEncoding": "json"}, "payload": {}}))
    assert envelope.message_type == "BidResult"


def test_decode_matches_envelope_keys_case_insensitively_like_go() -> None:
    envelope = decode(
        frame({"Metadata": {"Bacalhau-Type": "BidResult", "Bacalhau-PayloadEncoding": "json"}, "PAYLOAD": {}})
    )
    assert envelope.payload == {}


def test_decode_ignores_unknown_metadata_and_envelope_keys() -> None:
    document = {"metadata": {**GO_METADATA, "X-Future": "1"}, "payload": {}, "trailer": [1, 2]}
    assert decode(frame(document)).metadata["X-Future"] == "1"


def test_decode_keeps_a_null_payload_as_none() -> None:
    assert decode(frame({"metadata": GO_METADATA, "payload": None})).payload is None


def test_crc_tampering_is_detected() -> None:
    good = frame({"metadata": GO_METADATA, "payload": {"LastComputeSeqNum": 7}})
    flipped_body = good[:-3] + bytes([good[-3] ^ 0x01]) + good[-2:]
    with pytest.raises(ChecksumMismatch):
        decode(flipped_body)
    flipped_crc = good[:2] + bytes([good[2] ^ 0xFF]) + good[3:]
    with pytest.raises(ChecksumMismatch):
        decode(flipped_crc)
    with pytest.raises(ChecksumMismatch):
        decode(good[:-1])  # truncated in transit


@pytest.mark.parametrize("size", [0, 1, 4])
def test_frames_shorter_than_the_header_are_too_short(size: int) -> None:
    with pytest.raises(FrameTooShort):
        decode(b"\x01\x00\x00\x00\x00"[:size])


def test_protobuf_and_unversioned_json_frames_are_unsupported() -> None:
    with pytest.raises(UnsupportedSchemaVersion, match="protobuf") as info:
        decode(frame(b"\x0a\x00", version=2))
    assert info.value.version == 2
    # A pre-NCL (v1.4) peer sends bare JSON: its '{' is read as version 0x7b.
    with pytest.raises(UnsupportedSchemaVersion):
        decode(b'{"metadata":{}}')


@pytest.mark.parametrize(
    "document",
    [b"", b"not json", b"[1,2]", b'"text"', b'{"metadata": {"a": NaN}, "payload": {}}', b"\xff\xfe", b"[" * 100_000],
)
def test_bodies_that_are_not_a_json_object_are_invalid_envelopes(document: bytes) -> None:
    with pytest.raises(InvalidEnvelope):
        decode(frame(document))


def test_an_envelope_without_payload_is_invalid() -> None:
    with pytest.raises(InvalidEnvelope, match="payload"):
        decode(frame({"metadata": GO_METADATA}))


@pytest.mark.parametrize(
    "metadata", [None, [], "Type=BidResult", {"Bacalhau-Type": "BidResult", "Bacalhau-SeqNum": 3}, {"Type": None}]
)
def test_metadata_must_be_a_map_of_strings(metadata: Any) -> None:
    with pytest.raises(InvalidMetadata):
        decode(frame({"metadata": metadata, "payload": {}}))


def test_metadata_key_must_be_present() -> None:
    with pytest.raises(InvalidMetadata):
        decode(frame({"payload": {}}))


def test_missing_type_and_wrong_encoding_are_specific_errors() -> None:
    with pytest.raises(MissingMessageType):
        decode(frame({"metadata": {"Bacalhau-PayloadEncoding": "json"}, "payload": {}}))
    with pytest.raises(MissingMessageType):
        decode(frame({"metadata": {"Bacalhau-Type": "", "PayloadEncoding": "json"}, "payload": {}}))
    with pytest.raises(UnsupportedPayloadEncoding) as info:
        decode(frame({"metadata": {"Bacalhau-Type": "BidResult", "Bacalhau-PayloadEncoding": "proto"}, "payload": {}}))
    assert info.value.encoding == "proto"
    with pytest.raises(UnsupportedPayloadEncoding):  # Go: missing encoding is unsupported encoding ""
        decode(frame({"metadata": {"Bacalhau-Type": "BidResult"}, "payload": {}}))


def test_decode_refuses_a_frame_over_the_limit_before_parsing() -> None:
    body = frame({"metadata": GO_METADATA, "payload": {"x": "y" * 100}})
    with pytest.raises(MessageTooLarge):
        decode(body, max_bytes=len(body) - 1)
    assert decode(body, max_bytes=len(body)).payload["x"]


# -- metadata readers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000000123456789", 1_700_000_000_123_456_789),
        # Go's error replies: zero time's UnixNano overflows to this.
        ("-6795364578871345152", -6_795_364_578_871_345_152),
        ("2024-01-02T03:04:05Z", 1_704_164_645_000_000_000),
        ("garbage", None),
        ("", None),
        ("9" * 5000, None),
    ],
)
def test_event_time_is_read_leniently(value: str, expected: int | None) -> None:
    assert meta.event_time_ns({"Bacalhau-EventTime": value}) == expected


def test_event_time_and_seq_num_absent_read_as_none() -> None:
    assert meta.event_time_ns({}) is None
    assert meta.seq_num({}) is None
    assert meta.seq_num({"Bacalhau-SeqNum": "-1"}) is None
    assert meta.seq_num({"Bacalhau-SeqNum": "x"}) is None
    assert meta.seq_num({"Bacalhau-SeqNum": "42"}) == 42


def test_data_plane_metadata_has_gos_keys() -> None:
    subject = "bacalhau.global.compute.n-1.in.msgs"
    assert meta.data_plane_metadata(9, subject=subject) == {
        "Bacalhau-SeqNum": "9",
        "Bacalhau-MessageID": "seq-9",
        "Bacalhau-Subject": subject,
    }


def test_message_type_prefers_the_new_key_like_go() -> None:
    assert meta.message_type({"Bacalhau-Type": "A", "Type": "B"}) == "A"
    assert meta.message_type({"Type": "B"}) == "B"
    assert meta.message_type({}) == ""


# -- fuzzing: a hostile peer can only ever cause an NclError ---------------------------------------------------
_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_ncl_errors(body: bytes) -> None:
    with contextlib.suppress(NclError):
        decode_message(body, max_bytes=64 * 1024)


@_FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_ncl_errors(body: bytes) -> None:
    _only_ncl_errors(body)


@_FUZZ
@given(st.binary(max_size=512))
def test_random_bodies_with_a_valid_header_raise_only_ncl_errors(data: bytes) -> None:
    _only_ncl_errors(frame(data))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)


@_FUZZ
@given(
    st.sampled_from(
        [
            "AskForBid",
            "BidResult",
            "RunResult",
            "transport.HandshakeRequest",
            "transport.HeartbeatRequest",
            "transport.HandshakeResponse",
            "BacError",
            "Nope",
        ]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "Execution",
                "Events",
                "NodeInfo",
                "AvailableCapacity",
                "accepted",
                "LastComputeSeqNum",
                "RunCommandResult",
                "StartTime",
                "Details",
            ]
        ),
        _json,
        max_size=4,
    )
    | _json,
)
def test_random_payloads_of_every_type_raise_only_ncl_errors(type_name: str, payload: Any) -> None:
    metadata = {"Bacalhau-Type": type_name, "Bacalhau-PayloadEncoding": "json"}
    _only_ncl_errors(frame({"metadata": metadata, "payload": payload}))


@_FUZZ
@given(st.dictionaries(st.text(max_size=10), _json, max_size=5) | _json)
def test_random_metadata_raises_only_ncl_errors(metadata: Any) -> None:
    _only_ncl_errors(frame({"metadata": metadata, "payload": {}}))
