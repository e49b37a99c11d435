"""Node events -> evaluations: the jobs a joining, leaving, changed or cordoned node affects are
scheduled again.

    NodeManager ──JOIN / LEAVE / CORDONED──> handle() ──> pending {node: latest change}  (nothing dropped)
                ──UNCORDONED / UPDATED────>          ──> uncordoned {node}, updated {node}
                                                   │ flushed when quiet for `quiet_s`,
                                                   │ and at the latest `max_delay_s` after the first event
                                                   v
        LEAVE, CORDONED: jobs with non-terminal executions on those nodes ──> one node-leave evaluation per job
        UPDATED (labels, engines, capacity changed): jobs with executions there ──> node-join evaluations
        JOIN, UNCORDONED or UPDATED of a schedulable node ──> every active daemon job: a node-join evaluation
                                                          ──> queued jobs' delayed retries run now
                                                              (broker.wake_delayed)

    at start: a CORDONED event for every cordoned node (an evaluation lost to a crash is made again)

    every `sweep_interval_s` (backstop, level-triggered):
        non-terminal executions on nodes neither CONNECTED nor awaiting reconnect ──> node-leave evaluations

A cordoned node's jobs are evaluated when it is cordoned (or its deadline changed): the scheduler, reading
NodeManager.cordoned(), stops daemon executions there and, for the others, plans a delayed evaluation at
the drain deadline (stored, so it outlives a restart) that moves them. A CORDONED event is therefore never
displaced by a later JOIN of the same node (a node that reconnects stays cordoned), and UNCORDONED and
UPDATED events never displace anything: they are kept apart.

Bacalhau's ReEvaluator waits 15 s after the *last* event (so churn can postpone it forever) and drops
events when its channel is full; here the wait is bounded and nothing is dropped, and the sweep catches
anything an event could not (a crash between a state change and its evaluation, a restart). Bacalhau
evaluates every in-progress job of a *joining* node; here a joining node's executions are reconciled by
its handshake instead, and only the active daemon jobs (read from a partial index) are evaluated, once
per batch of joins, so the reconnect storm after an orchestrator restart (thousands of handshakes) costs
one evaluation per daemon job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bacalhau.models.constants import JOB_TYPE_DAEMON
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
_EVALUATED = (NodeChange.LEAVE, NodeChange.CORDONED)


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
        self._uncordoned: set[str] = set()
        self._first_event_s = 0.0
        self._last_event_s = 0.0
        self._updated: set[str] = set()
        self._has_events = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def handle(self, event: NodeEvent) -> None:
        """Take a node event (synchronous, never blocks, never drops; the latest change per node wins,
        except that a JOIN does not displace a CORDONED, and an UNCORDONED is kept apart)."""
        now = time.monotonic()
        if not self._pending and not self._uncordoned and not self._updated:
            self._first_event_s = now
        self._last_event_s = now
        node_id, change = event.node_id, event.change
        if change is NodeChange.UNCORDONED:
            self._uncordoned.add(node_id)
        elif change is NodeChange.UPDATED:
            self._updated.add(node_id)
        elif not (change is NodeChange.JOIN and self._pending.get(node_id) is NodeChange.CORDONED):
            self._pending[node_id] = change
        self._has_events.set()

    def start(self) -> None:
        """Start the batching and sweeping tasks on the running loop, and evaluate the jobs of every
        cordoned node once. Idempotent."""
        if self._tasks:
            return
        for node_id in self._nodes.cordoned():
            self.handle(NodeEvent(node_id, NodeChange.CORDONED, "orchestrator started"))
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
        uncordoned, self._uncordoned = self._uncordoned, set()
        updated, self._updated = self._updated, set()
        if not batch and not uncordoned and not updated:
            return []
        opened = [n for n, change in batch.items() if change is NodeChange.JOIN] + sorted(uncordoned | updated)
        joined = [n for n in opened if self._nodes.is_schedulable(n)]
        try:
            triggers: dict[str, EvaluationTrigger] = {}
            if joined:
                # Daemon jobs run on every matching node: a node that can take work now may be one more.
                for job_id in await self._store.active_job_ids(JOB_TYPE_DAEMON):
                    triggers[job_id] = EvaluationTrigger.NodeJoin
            for node_id in sorted(updated):
                # Its labels or engines changed: a job running there may no longer fit it (a daemon stops).
                for execution in await self._store.list_executions_on_node(node_id, active_only=True):
                    triggers.setdefault(execution.job_id, EvaluationTrigger.NodeJoin)
            for node_id in (n for n, change in batch.items() if change in _EVALUATED):
                for execution in await self._store.list_executions_on_node(node_id, active_only=True):
                    # Bacalhau has no trigger for a drain; node-leave says the same to the scheduler: the
                    # executions on that node may have to go elsewhere.
                    triggers[execution.job_id] = EvaluationTrigger.NodeLeave
            created = await self._create(triggers)
        except BaseException:
            self._pending = {**batch, **self._pending}
            self._uncordoned |= uncordoned
            self._updated |= updated
            raise
        if joined:
            woken = self._wake_queued()
            if woken:
                log.info("node(s) %s can take work: %d queued job(s) retried now", ", ".join(sorted(joined)), woken)
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
                    job = await self._store.job_brief(job_id)
                    if job is None:
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
