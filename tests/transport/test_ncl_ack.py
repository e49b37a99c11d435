"""Data-plane ack/nack bodies and reply parsing, as Bacalhau's pkg/lib/ncl/result.go writes and reads them."""

from __future__ import annotations

import json

import pytest

from bacalhau.transport.ncl.ack import ReplyOutcome, encode_ack, encode_nack, parse_reply
from bacalhau.transport.ncl.errors import InvalidReply


def test_ack_is_an_empty_json_object_not_an_envelope() -> None:
    assert encode_ack() == b"{}"


def test_nack_carries_error_and_delay_in_nanoseconds() -> None:
    assert json.loads(encode_nack("handler failed", delay_ns=100_000_000)) == {
        "error": "handler failed",
        "delay": 100_000_000,
    }


def test_nack_without_delay_omits_it_like_gos_omitempty() -> None:
    assert json.loads(encode_nack("boom")) == {"error": "boom"}


def test_nack_with_an_empty_error_is_still_a_nack() -> None:
    assert parse_reply(encode_nack("")).outcome is ReplyOutcome.NACK


@pytest.mark.parametrize("body", [b"{}", b"null", b'{"error":""}', b'{"delay":5}', b'{"unknown":1}'])
def test_acks(body: bytes) -> None:
    reply = parse_reply(body)
    assert reply.outcome is ReplyOutcome.ACK
    assert reply.ok


@pytest.mark.parametrize(
    ("body", "error", "delay_ns"),
    [
        (b'{"error":"failed to process: boom","delay":200000000}', "failed to process: boom", 200_000_000),
        (b'{"error":"x"}', "x", 0),
        (b'{"Error":"case"}', "case", 0),  # Go's decoder is case-insensitive
    ],
)
def test_nacks(body: bytes, error: str, delay_ns: int) -> None:
    reply = parse_reply(body)
    assert (reply.outcome, reply.error, reply.delay_ns, reply.ok) == (ReplyOutcome.NACK, error, delay_ns, False)


def test_empty_body_with_status_503_means_no_responders() -> None:
    reply = parse_reply(b"", {"Status": "503"})
    assert reply.outcome is ReplyOutcome.NO_RESPONDERS
    assert not reply.ok
    assert parse_reply(b"", {"status": "503", "Description": "No Responders"}).outcome is ReplyOutcome.NO_RESPONDERS


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", None),
        (b"", {"Status": "408"}),
        (b"not json", None),
        (b"[]", None),
        (b'{"error":5}', None),
        (b'{"error":"x","delay":"soon"}', None),
        (b'{"error":"x","delay":1.5}', None),
    ],
)
def test_anything_else_is_an_invalid_reply(body: bytes, headers: dict[str, str] | None) -> None:
    with pytest.raises(InvalidReply):
        parse_reply(body, headers)
