"""How many `job logs` streams each job may have open at once on this orchestrator.

Every stream holds a flow-control window here and an open log file on the compute node, so one job's
followers are capped (`Orchestrator.LogStream.MaxStreamsPerJob`, ours): one more is refused with a
ResourceExhausted error (HTTP status 429) naming the limit, before anything is asked of the node.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from bacalhau.models.errors import BacalhauError, ErrorCode

COMPONENT = "LogStream"
LIMIT_KEY = "Orchestrator.LogStream.MaxStreamsPerJob"


class LogStreamGate:
    """Counts the open log streams per job and refuses one past `max_per_job`. Not thread-safe (one loop)."""

    def __init__(self, *, max_per_job: int) -> None:
        if max_per_job < 1:
            raise ValueError(f"max_per_job must be at least 1, not {max_per_job}")
        self.max_per_job = max_per_job
        self._open: Counter[str] = Counter()

    def open_streams(self, job_id: str) -> int:
        """How many streams of `job_id` are open now."""
        return self._open[job_id]

    @contextlib.contextmanager
    def hold(self, job_id: str) -> Iterator[None]:
        """A slot for one stream of `job_id` while the block runs; BacalhauError (429) if none is free."""
        if self._open[job_id] >= self.max_per_job:
            raise BacalhauError(
                f"job {job_id} already has {self._open[job_id]} log streams open on this orchestrator, "
                f"the most it allows ({LIMIT_KEY}={self.max_per_job})",
                code=ErrorCode.ResourceExhausted,
                component=COMPONENT,
                retryable=True,
                hint=f"stop another `bacalhau job logs` of this job, or raise {LIMIT_KEY} on the orchestrator",
            )
        self._open[job_id] += 1
        try:
            yield
        finally:
            self._open[job_id] -= 1
            if self._open[job_id] <= 0:
                del self._open[job_id]
