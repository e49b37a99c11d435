"""Node events -> evaluations: the jobs a joining or leaving node affects are scheduled again.

    NodeManager ──JOIN / LEAVE──> handle() ──> pending {node: latest change}   (a dict: nothing dropped)
                                                   │ flushed when quiet for `quiet_s`,
                                                   │ and at the latest `max_delay_s` after the first event
                                                   v
        LEAVE: jobs with non-terminal executions on those nodes ──> one node-leave evaluation per job
        JOIN of a schedulable node ──> queued jobs' delayed retries run now (broker.wake_delayed)

    every `sweep_interval_s` (backstop, level-triggered):
        non-terminal executions on nodes neither CONNECTED nor awaiting reconnect ──> node-leave evaluations

Bacalhau's ReEvaluator waits 15 s after the *last* event (so churn can postpone it forever) and drops
events when its channel is full; here the wait is bounded and nothing is dropped, and the sweep catches
anything an event could not (a crash between a state change and its evaluation, a restart). Bacalhau
also evaluates every in-progress job of a *joining* node (for daemon jobs, which we do not have): a
joining node's executions are reconciled by its handshake instead, so the reconnect storm after an
orchestrator restart (thousands of handshakes) costs no evaluations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bacalhau.models.errors import NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.state import EvaluationTrigger
from bacalhau.orchestrator.evaluations import new_evaluation
from bacalhau.orchestrator.jobstore.base import JobStore
from bacalhau.orchestrator.nodes import NodeChange, NodeEvent, NodeManager

log = logging.getLogger(__name__)

DEFAULT_QUIET_S = 0.1
DEFAULT_MAX_DELAY_S = 1.0
DEFAULT_SWEEP_INTERVAL_S = 60.0
# Evaluations created per store transaction: bounds how long one flush holds the store (and the loop).
_CHUNK = 200
_RETRY_S = 1.0


class NodeReEvaluator:
    """Batches node events into evaluations, and sweeps for executions stranded on lost nodes."""

    def __init__(
        self,
        *,
        store: JobStore,
        nodes: NodeManager,
        enqueue: Callable[[Evaluation], None],
        wake_queued: Callable[[], int],
        clock_ns: Callable[[], int] = time.time_ns,
        quiet_s: float = DEFAULT_QUIET_S,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
        sweep_interval_s: float = DEFAULT_SWEEP_INTERVAL_S,
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._enqueue = enqueue
        self._wake_queued = wake_queued
        self._clock_ns = clock_ns
        self._quiet_s = quiet_s
        self._max_delay_s = max_delay_s
        self._sweep_interval_s = sweep_interval_s
        self._pending: dict[str, NodeChange] = {}
        self._first_event_s = 0.0
        self._last_event_s = 0.0
        self._has_events = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def handle(self, event: NodeEvent) -> None:
        """Take a node event (synchronous, never blocks, never drops; the latest change per node wins)."""
        now = time.monotonic()
        if not self._pending:
            self._first_event_s = now
        self._last_event_s = now
        self._pending[event.node_id] = event.change
        self._has_events.set()

    def start(self) -> None:
        """Start the batching and sweeping tasks on the running loop. Idempotent."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._batch_loop(), name="node-events-batcher"),
            asyncio.create_task(self._sweep_loop(), name="node-events-sweep"),
        ]

    async def stop(self) -> None:
        """Stop the tasks, then turn the events still pending into evaluations."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self.flush()
        except Exception:
            log.exception("node events still pending at stop were not evaluated; the next sweep will")

    async def flush(self) -> list[Evaluation]:
        """Evaluate the jobs affected by the pending events now. Returns the evaluations created.

        On a store failure the events are kept (events that arrived meanwhile win) and the error raised.
        """
        batch, self._pending = self._pending, {}
        if not batch:
            return []
        try:
            triggers: dict[str, EvaluationTrigger] = {}
            for node_id in (n for n, change in batch.items() if change is NodeChange.LEAVE):
                for execution in await self._store.list_executions_on_node(node_id, active_only=True):
                    triggers[execution.job_id] = EvaluationTrigger.NodeLeave
            created = await self._create(triggers)
        except BaseException:
            self._pending = {**batch, **self._pending}
            raise
        joined = [n for n, change in batch.items() if change is NodeChange.JOIN and self._nodes.is_schedulable(n)]
        if joined:
            woken = self._wake_queued()
            if woken:
                log.info("node(s) %s joined: %d queued job(s) retried now", ", ".join(sorted(joined)), woken)
        return created

    async def sweep(self) -> list[Evaluation]:
        """Level-triggered backstop: node-leave evaluations for every job with a non-terminal execution on
        a node that is neither CONNECTED nor awaiting reconnect (unknown nodes included)."""
        stranded: dict[str, EvaluationTrigger] = {}
        for node_id, job_ids in (await self._store.active_jobs_by_node()).items():
            if self._nodes.is_connected(node_id) or self._nodes.is_awaiting_reconnect(node_id):
                continue
            for job_id in job_ids:
                stranded[job_id] = EvaluationTrigger.NodeLeave
        if stranded:
            log.info("%d job(s) have executions on lost nodes: evaluating them", len(stranded))
        return await self._create(stranded)

    async def _create(self, triggers: dict[str, EvaluationTrigger]) -> list[Evaluation]:
        created: list[Evaluation] = []
        items = sorted(triggers.items())
        for start in range(0, len(items), _CHUNK):
            chunk: list[Evaluation] = []
            async with self._store.transaction():
                for job_id, trigger in items[start : start + _CHUNK]:
                    try:
                        job = await self._store.get_job(job_id)
                    except NotFoundError:
                        continue
                    evaluation = new_evaluation(job, trigger, self._clock_ns())
                    await self._store.create_evaluation(evaluation)
                    chunk.append(evaluation)
            # Enqueued only once stored: a worker must never see an evaluation the store lacks.
            for evaluation in chunk:
                self._enqueue(evaluation)
            created += chunk
            await asyncio.sleep(0)
        return created

    async def _batch_loop(self) -> None:
        while True:
            await self._has_events.wait()
            while True:
                now = time.monotonic()
                due = min(self._first_event_s + self._max_delay_s, self._last_event_s + self._quiet_s)
                if now >= due:
                    break
                await asyncio.sleep(due - now)
            self._has_events.clear()
            try:
                await self.flush()
            except Exception:
                # Kept pending by flush(): try again shortly rather than lose a node's executions.
                log.exception("could not evaluate the jobs of %d node event(s); retrying", len(self._pending))
                await asyncio.sleep(_RETRY_S)
                self._has_events.set()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep for executions on lost nodes failed; retrying at the next one")
