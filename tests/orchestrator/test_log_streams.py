"""The per-job cap on open log streams."""

from __future__ import annotations

import pytest

from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.orchestrator.log_streams import LogStreamGate


def test_a_stream_past_the_cap_is_refused_with_429_naming_the_key() -> None:
    gate = LogStreamGate(max_per_job=2)
    with gate.hold("j-1"), gate.hold("j-1"), gate.hold("j-2"):
        with pytest.raises(BacalhauError) as info, gate.hold("j-1"):
            pass
        assert info.value.code is ErrorCode.ResourceExhausted and info.value.http_status == 429
        assert "Orchestrator.LogStream.MaxStreamsPerJob=2" in info.value.message
    assert gate.open_streams("j-1") == 0


def test_a_slot_is_freed_when_its_stream_fails() -> None:
    gate = LogStreamGate(max_per_job=1)
    with pytest.raises(RuntimeError), gate.hold("j-1"):
        raise RuntimeError("client went away")
    with gate.hold("j-1"):
        assert gate.open_streams("j-1") == 1
