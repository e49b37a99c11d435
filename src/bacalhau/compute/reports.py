"""The compute node's reports to its orchestrator, sent one at a time in the order they were made.

An execution never waits for the orchestrator to record its progress (the task goes on), yet Running
always arrives before Completed: each report is a call queued here and made by one task, in order.
A report that cannot be delivered is logged, never fatal to the node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine

logger = logging.getLogger(__name__)


class ReportQueue:
    """Ordered, non-blocking delivery of report calls (`OrchestratorService` coroutines)."""

    def __init__(self, *, node_id: str) -> None:
        self._node_id = node_id
        self._queue: asyncio.Queue[Awaitable[None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the delivering task. Idempotent."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"compute-{self._node_id}-reports")

    async def report(self, call: Awaitable[None]) -> None:
        """Queue one report; before `start` (or after `stop`) it is made inline."""
        if self._task is None or self._task.done():
            await self.send(call)
            return
        self._queue.put_nowait(call)

    async def send(self, call: Awaitable[None]) -> None:
        """Make one call now; a broken link is logged, never raised."""
        try:
            await call
        except Exception:
            logger.warning("compute node %s could not reach the orchestrator", self._node_id, exc_info=True)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (bounded by `timeout_s`), then stop. Idempotent."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
        except TimeoutError:
            logger.warning("compute node %s: %d reports not delivered at stop", self._node_id, self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        while not self._queue.empty():
            leftover = self._queue.get_nowait()
            if isinstance(leftover, Coroutine):
                leftover.close()  # never sent: close it so it is not reported as never awaited

    async def _loop(self) -> None:
        while True:
            call = await self._queue.get()
            try:
                await self.send(call)
            finally:
                self._queue.task_done()
