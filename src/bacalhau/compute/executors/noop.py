"""The `noop` engine: runs nothing and succeeds, for tests and for exercising the pipeline around it.

By default `run` returns exit code 0 at once after writing empty stdout/stderr files. With
`duration_s` it stays "running" that long (honouring the task timeout), so cancellation and timeouts
can be exercised without a real engine.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from bacalhau.compute.executors.base import RunOutcome, RunRequest
from bacalhau.models.errors import ErrorCode, ExecutionError
from bacalhau.models.job import NetworkConfig, SpecConfig

_MAX_EARLY_CANCELS = 1024


class NoopExecutor:
    """An executor whose tasks do nothing; `cancel` works before and during a run."""

    def __init__(self, *, duration_s: float = 0.0) -> None:
        self._duration_s = duration_s
        self._running: dict[str, asyncio.Event] = {}
        # Cancels that arrived before their run: bounded, since most will never be claimed.
        self._early_cancels: OrderedDict[str, None] = OrderedDict()

    def is_installed(self) -> bool:
        """Always available."""
        return True

    def validate(self, engine: SpecConfig, *, network: NetworkConfig | None = None) -> None:
        """The noop engine takes no params, and like Bacalhau ignores any it is given."""

    async def run(self, request: RunRequest) -> RunOutcome:
        """Write empty stdout/stderr and return exit code 0 (after `duration_s`, if set)."""
        if request.execution_id in self._early_cancels:
            del self._early_cancels[request.execution_id]
            raise ExecutionError("execution cancelled")
        request.stdout_path.write_bytes(b"")
        request.stderr_path.write_bytes(b"")
        if self._duration_s <= 0:
            return RunOutcome(exit_code=0)
        cancelled = asyncio.Event()
        self._running[request.execution_id] = cancelled
        wait_s = self._duration_s if request.timeout_s is None else min(self._duration_s, request.timeout_s)
        try:
            async with asyncio.timeout(wait_s):
                await cancelled.wait()
        except TimeoutError:
            if request.timeout_s is not None and request.timeout_s < self._duration_s:
                raise ExecutionError(
                    f"execution timed out after {request.timeout_s:g}s", code=ErrorCode.TimeOut
                ) from None
            return RunOutcome(exit_code=0)
        finally:
            self._running.pop(request.execution_id, None)
        raise ExecutionError("execution cancelled")

    async def cancel(self, execution_id: str) -> None:
        """Stop a running noop task, or make a later `run` of it fail as cancelled. Idempotent."""
        event = self._running.get(execution_id)
        if event is not None:
            event.set()
            return
        self._early_cancels[execution_id] = None
        while len(self._early_cancels) > _MAX_EARLY_CANCELS:
            self._early_cancels.popitem(last=False)
