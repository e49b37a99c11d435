"""The orchestrator assembled: store, broker, workers, planner, endpoint, compute-event handler.

    API ──> Endpoint ──(job + evaluation, one transaction)──> JobStore
                 └──> EvaluationBroker ──> Worker xN ──> scheduler (pure) ──> Planner
                                                                      store ─┘   └─> ComputeService.ask_for_bid
    ComputeService ──reports──> ComputeEventHandler ──> JobStore + new evaluation ──> broker
                 └─handshake/heartbeat─> NodeManager ──JOIN/LEAVE──> NodeReEvaluator ──evaluations──> broker
                                             ^
                   NodeHealthMonitor ────────┘ (heartbeat timeouts, restart grace, lazy persistence)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.normalize import JobDefaults
from bacalhau.models.retry import DEFAULT_RETRY, RetryPolicy
from bacalhau.models.state import EvaluationStatus, EvaluationTrigger, JobStateType
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.compute_events import ComputeEventHandler
from bacalhau.orchestrator.endpoint import Endpoint
from bacalhau.orchestrator.history_waiters import HistoryWaiters
from bacalhau.orchestrator.job_limits import fail_if_over_limits
from bacalhau.orchestrator.jobstore.base import JobQuery, JobStore
from bacalhau.orchestrator.node_events import NodeReEvaluator
from bacalhau.orchestrator.node_health import NodeHealthMonitor
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.planner import Planner
from bacalhau.orchestrator.results import ResultTransformer
from bacalhau.orchestrator.timeouts import JobTimeouts
from bacalhau.orchestrator.worker import Worker
from bacalhau.transport.base import ComputeDirectory

log = logging.getLogger(__name__)


class Orchestrator:
    def __init__(
        self,
        *,
        node_id: str,
        store: JobStore,
        nodes_path: Path,
        directory: ComputeDirectory,
        defaults: Callable[[str], JobDefaults],
        worker_count: int,
        queue_backoff_s: float,
        manual_approval: bool = False,
        disconnect_timeout_s: float = 60.0,
        installation_id: str = "",
        instance_id: str = "",
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic_s: Callable[[], float] = time.monotonic,
        result_transformer: ResultTransformer | None = None,
        limits: JobLimits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        locality_ranking: bool = True,
    ) -> None:
        """Assemble the orchestrator; nothing runs until `start_workers()`.

        `nodes_path`: the SQLite file of the node records (`<DataDir>/orchestrator/nodes.db`), opened here
        and closed by `stop()`. `disconnect_timeout_s` is Orchestrator.NodeManager.DisconnectTimeout: a
        CONNECTED node not heard from for that long is DISCONNECTED, and a node that was connected before
        a restart has as long to come back. `limits` is JobAdmissionControl.Limits: submit refuses specs
        beyond them, and stored jobs beyond them are failed at recovery and at evaluation. DatastoreError if
        the node store cannot be opened, ConfigurationError if the timeout is not positive. `retry` is
        Orchestrator.Scheduler.Retry (models/retry.py); `locality_ranking` Orchestrator.Scheduler.
        LocalityRanking (place a job on the nodes holding its input data first).
        """
        self.node_id = node_id
        self.limits = limits
        self._clock_ns = clock_ns
        self.store = store
        self.history_waiters = HistoryWaiters()
        store.add_history_listener(self.history_waiters.notify)
        self.broker = EvaluationBroker(clock_ns=clock_ns)
        self._node_store = SQLiteNodeStore(path=nodes_path)
        try:
            self.nodes = NodeManager(
                store=self._node_store,
                manual_approval=manual_approval,
                disconnect_timeout_s=disconnect_timeout_s,
                clock_ns=clock_ns,
                monotonic_s=monotonic_s,
            )
        except BaseException:
            self._node_store.close()
            raise
        self.node_health = NodeHealthMonitor(nodes=self.nodes, monotonic_s=monotonic_s)
        self.node_events = NodeReEvaluator(
            store=store,
            nodes=self.nodes,
            enqueue=self.broker.enqueue,
            wake_queued=lambda: self.broker.wake_delayed(EvaluationTrigger.JobQueue),
            clock_ns=clock_ns,
        )
        self.nodes.on_change(self.node_events.handle)
        self.timeouts = JobTimeouts(store=store, enqueue=self.broker.enqueue, clock_ns=clock_ns)
        self.planner = Planner(store=store, directory=directory, enqueue=self.broker.enqueue, clock_ns=clock_ns)
        self.endpoint = Endpoint(
            store=store,
            directory=directory,
            enqueue=self.broker.enqueue,
            defaults=defaults,
            orchestrator_id=node_id,
            installation_id=installation_id,
            instance_id=instance_id,
            clock_ns=clock_ns,
            results=result_transformer,
            limits=limits,
            arm_timeout=self.timeouts.arm_at,
        )
        self.compute_events = ComputeEventHandler(
            store=store, nodes=self.nodes, planner=self.planner, enqueue=self.broker.enqueue, clock_ns=clock_ns
        )
        self._workers = [
            Worker(
                broker=self.broker,
                store=store,
                nodes=self.nodes,
                planner=self.planner,
                queue_backoff_ns=int(queue_backoff_s * 1e9),
                clock_ns=clock_ns,
                limits=limits,
                retry=retry,
                locality_ranking=locality_ranking,
            )
            for _ in range(max(1, worker_count))
        ]
        self._tasks: list[asyncio.Task[None]] = []

    async def recover(self) -> None:
        """After a restart: re-enqueue pending evaluations, fail stored jobs beyond the limits (see
        job_limits.py) and re-arm the others' timeouts."""
        for evaluation in await self.store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending})):
            self.broker.enqueue(evaluation)
        # Only the live jobs, from the state index: a store of a million finished jobs is not read whole
        # (and held in memory) at every start.
        live = tuple(int(state) for state in JobStateType if not state.is_terminal)
        jobs, _ = await self.store.list_jobs(JobQuery(namespace="*", states=live))
        for job in jobs:
            if job.state.state_type.is_terminal:
                continue
            stopping = await fail_if_over_limits(self.store, job, self.limits, self._clock_ns())
            if stopping is not None:
                log.warning("job %s failed at start-up: beyond JobAdmissionControl.Limits", job.id)
                self.broker.enqueue(stopping)
                continue
            self.timeouts.arm(job)

    def start_workers(self) -> None:
        """Start processing evaluations (after compute nodes in this process have reconnected), watching
        node health and turning node events into evaluations."""
        self.node_health.start()
        self.node_events.start()
        for worker in self._workers:
            self._tasks.append(asyncio.get_running_loop().create_task(worker.run()))

    async def pause(self) -> None:
        """Place nothing more (the node is stopping): the workers finish the batch in hand and end.

        Reports are still recorded and their evaluations stored; evaluations left pending run at the
        next start. Idempotent; `stop` follows.
        """
        self.broker.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Stop watching nodes (pending node events become stored evaluations, node states are written),
        then stop the workers. Evaluations left pending are recovered at the next start."""
        await self.node_health.stop()
        await self.node_events.stop()
        self.broker.close()
        self.timeouts.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._node_store.close()
