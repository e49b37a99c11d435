"""Log stream frames: values become ExecutionLogs, error frames become BacalhauErrors."""

from __future__ import annotations

import pytest

from bacalhau.client.logs import decode_frame, logs_url
from bacalhau.models.errors import BacalhauError, ErrorCode


def test_value_frame_is_a_log_line() -> None:
    line = decode_frame('{"value": {"Type": 2, "Line": "oops\\n"}}')
    assert line is not None and line.type == 2 and line.line == "oops\n"


def test_frame_without_value_is_skipped() -> None:
    assert decode_frame("{}") is None


def test_error_frame_raises_with_cause_and_code() -> None:
    with pytest.raises(BacalhauError) as info:
        decode_frame('{"error": {"Cause": "execution not found", "Code": "NotFound", "HTTPStatusCode": 404}}')
    assert info.value.message == "execution not found"
    assert info.value.code is ErrorCode.NotFound


def test_non_json_frame_is_an_error() -> None:
    with pytest.raises(BacalhauError):
        decode_frame("not json")


def test_logs_url_is_a_websocket_url_with_flags() -> None:
    url = logs_url("http://h:1", "j-1", execution_id="e-1", follow=True, tail=False, namespace="")
    assert url == "ws://h:1/api/v1/orchestrator/jobs/j-1/logs?execution_id=e-1&follow=true"
