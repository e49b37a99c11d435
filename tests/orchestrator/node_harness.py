"""Helpers for the node membership and liveness tests: a monotonic clock that moves only when told to,
compute nodes that record what the orchestrator asks of them, and a wait with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from bacalhau.models.execution import ExecutionLog
from bacalhau.models.normalize import JobDefaults
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.service import Orchestrator
from bacalhau.transport.messages import AskForBid, CancelExecution, LogStreamRequest

T = TypeVar("T")
WAIT_S = 10.0
DISCONNECT_TIMEOUT_S = 60.0


class FakeMonotonic:
    """An injectable monotonic clock (seconds) that moves only when told to."""

    def __init__(self, start_s: float = 1_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class RecordingCompute:
    """A ComputeService that records the offers and cancellations it receives."""

    def __init__(self) -> None:
        self.offers: list[AskForBid] = []
        self.cancels: list[CancelExecution] = []

    async def ask_for_bid(self, request: AskForBid) -> None:
        self.offers.append(request)

    async def cancel_execution(self, request: CancelExecution) -> None:
        self.cancels.append(request)

    async def stream_logs(self, request: LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        raise NotImplementedError
        yield  # pragma: no cover


class RecordingDirectory:
    """A ComputeDirectory whose every node is a RecordingCompute (created on first use)."""

    def __init__(self) -> None:
        self.nodes: dict[str, RecordingCompute] = {}

    def compute(self, node_id: str) -> RecordingCompute:
        return self.nodes.setdefault(node_id, RecordingCompute())


def make_orchestrator(
    data_dir: Path,
    *,
    monotonic: FakeMonotonic,
    directory: RecordingDirectory | None = None,
    manual_approval: bool = False,
    queue_backoff_s: float = 60.0,
) -> Orchestrator:
    """An orchestrator on real SQLite files under `data_dir` (reopening the same dir = a restart)."""
    return Orchestrator(
        node_id="n-orchestrator",
        store=SQLiteJobStore(path=data_dir / "orchestrator" / "jobs.db"),
        nodes_path=data_dir / "orchestrator" / "nodes.db",
        directory=directory or RecordingDirectory(),
        defaults=lambda _job_type: JobDefaults(),
        worker_count=1,
        queue_backoff_s=queue_backoff_s,
        manual_approval=manual_approval,
        disconnect_timeout_s=DISCONNECT_TIMEOUT_S,
        monotonic_s=monotonic,
    )


async def stop(orchestrator: Orchestrator) -> None:
    """Stop the orchestrator and close its job store, as `bacalhau serve` does."""
    await orchestrator.stop()
    await orchestrator.store.close()


async def wait_for(probe: Callable[[], Awaitable[T | None]], *, what: str, timeout_s: float = WAIT_S) -> T:
    """Poll `probe` until it returns something other than None (or False); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)
