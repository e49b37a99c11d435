"""The compute node's reports to its orchestrator, sent one at a time in the order they were made.

An execution never waits for the orchestrator to record its progress (the task goes on), yet Running
always arrives before Completed: each report is a call queued here and made by one task, in order.
A report that cannot be delivered is logged, never fatal to the node.

Progress reports may be held (`hold`), when the orchestrator accepts steps in a final report::

    hold(bid accepted) ──> held (timer: HOLD_S) ──> hold(Running) ──> held
        │                                                              │
        │ HOLD_S passes                                  the execution ends first
        ▼                                                              ▼
    queued as made, in order                  take_steps(): its final report carries them as Steps

A short execution is then one report instead of three: one store transaction on the orchestrator,
one message in the outbox, instead of three of each. A long one shows Running HOLD_S late (Bacalhau's
compute never reports it). Held reports are not in the outbox yet: after a crash the node reports
again, from its store, the steps of what it takes back (recovery.retell_steps), and fails the rest,
as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

from bacalhau.models.state import ExecutionStateType
from bacalhau.transport.base import OrchestratorService
from bacalhau.transport.messages import BidResult, ExecutionStep, step_report

logger = logging.getLogger(__name__)

# How long a progress report waits for the execution's final report to carry it. Short next to what
# a user watching a job notices, long next to a trivial execution (a few ms) or a queue's hiccup.
HOLD_S = 0.25

MakeReport = Callable[[], Awaitable[None]]
# What a step says when reported, as the orchestrator words it for a report of its own.
_STEP_MESSAGES = {ExecutionStateType.BidAccepted: "Bid accepted"}


@dataclass(eq=False)
class _Held:
    timer: asyncio.TimerHandle
    steps: list[ExecutionStep] = field(default_factory=list)
    reports: list[MakeReport] = field(default_factory=list)


class ReportQueue:
    """Ordered, non-blocking delivery of report calls (`OrchestratorService` coroutines)."""

    def __init__(self, *, node_id: str, hold_s: float = HOLD_S) -> None:
        self._node_id = node_id
        self._hold_s = hold_s
        self._queue: asyncio.Queue[Awaitable[None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._held: dict[str, _Held] = {}  # execution ID -> its progress reports not sent yet
        self._stopping = False  # stop() began: nothing more is held

    @property
    def running(self) -> bool:
        """Whether the delivering task runs (reports are queued, not made inline)."""
        return self._task is not None and not self._task.done()

    def holding(self, execution_id: str) -> bool:
        """Whether reports of `execution_id` are held: its next ones must be held too (or carried by its
        final report), never sent ahead of them."""
        return execution_id in self._held

    def start(self) -> None:
        """Start the delivering task. Idempotent."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name=f"compute-{self._node_id}-reports")

    async def report(self, call: Awaitable[None]) -> None:
        """Queue one report; before `start` (or after `stop`) it is made inline."""
        if not self.running:
            await self.send(call)
            return
        self._queue.put_nowait(call)

    async def hold(self, execution_id: str, step: ExecutionStep, make: MakeReport) -> None:
        """A progress report of `execution_id` (`make` makes it), held up to `hold_s` from the first one
        held: if the execution ends meanwhile, its final report carries `step` instead (`take_steps`);
        otherwise the report is queued as made, after those held before it. Made at once (`report`)
        when nothing may be held (hold_s 0, the queue stopping or not running)."""
        if self._hold_s <= 0 or self._stopping or not self.running:
            await self.report(make())
            return
        held = self._held.get(execution_id)
        if held is None:
            timer = asyncio.get_running_loop().call_later(self._hold_s, self._release, execution_id)
            held = self._held[execution_id] = _Held(timer)
        held.steps.append(step)
        held.reports.append(make)

    async def step(
        self, orchestrator: OrchestratorService, execution_id: str, job_id: str, state: ExecutionStateType,
        message: str = "", *, time_ns: int = 0,
    ) -> None:
        """Report that an execution reached `state` (at `time_ns`, now by default): held when the
        orchestrator accepts steps in a final report, so that a short execution sends one report;
        otherwise at once. Held too while earlier ones are (the link changed meanwhile), so that none
        overtakes them."""
        step = ExecutionStep(state=state, message=message or _STEP_MESSAGES.get(state, state.name),
                             time_ns=time_ns or time.time_ns())
        report = step_report(execution_id, job_id, step)

        def make() -> Awaitable[None]:
            """The report's call, made when it is sent."""
            if isinstance(report, BidResult):
                return orchestrator.on_bid_result(report)
            return orchestrator.on_execution_progress(report)

        if orchestrator.accepts_steps or self.holding(execution_id):
            await self.hold(execution_id, step, make)
        else:
            await self.report(make())

    def take_steps(self, execution_id: str) -> list[ExecutionStep]:
        """The steps held for `execution_id`, oldest first, for its final report to carry: their own
        reports are dropped. Empty when none is held."""
        held = self._held.pop(execution_id, None)
        if held is None:
            return []
        held.timer.cancel()
        return held.steps

    def _release(self, execution_id: str) -> None:
        held = self._held.pop(execution_id, None)
        if held is None:
            return
        held.timer.cancel()
        for make in held.reports:
            self._queue.put_nowait(make())

    async def send(self, call: Awaitable[None]) -> None:
        """Make one call now; a broken link is logged, never raised."""
        try:
            await call
        except Exception:
            logger.warning("compute node %s could not reach the orchestrator", self._node_id, exc_info=True)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Deliver what is held and queued (bounded by `timeout_s`), then stop. Idempotent."""
        if self._task is None:
            return
        self._stopping = True
        for execution_id in list(self._held):
            self._release(execution_id)
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
