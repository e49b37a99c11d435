"""Workers: evaluation -> snapshot -> scheduler -> plan -> planner, one evaluation at a time each."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bacalhau.models.errors import BacalhauError, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.state import EvaluationStatus
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.jobstore.base import JobStore
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.planner import Planner
from bacalhau.orchestrator.scheduler.batch import schedule
from bacalhau.orchestrator.scheduler.plan import Snapshot

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        *,
        broker: EvaluationBroker,
        store: JobStore,
        nodes: NodeManager,
        planner: Planner,
        queue_backoff_ns: int,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._broker = broker
        self._store = store
        self._nodes = nodes
        self._planner = planner
        self._queue_backoff_ns = queue_backoff_ns
        self._clock_ns = clock_ns

    async def run(self) -> None:
        """Process evaluations until the broker closes."""
        while True:
            evaluation = await self._broker.dequeue()
            if evaluation is None:
                return
            try:
                await self.process(evaluation)
            except Exception:
                # One bad evaluation must never stop the worker: record it and go on.
                log.exception("evaluation %s of job %s failed", evaluation.id, evaluation.job_id)
                await self._set_status(evaluation, EvaluationStatus.Failed, "internal error while scheduling")
            finally:
                for dropped in self._broker.ack(evaluation):
                    await self._set_status(dropped, EvaluationStatus.Canceled, "superseded by a newer evaluation")

    async def process(self, evaluation: Evaluation) -> None:
        try:
            job = await self._store.get_job(evaluation.job_id)
        except NotFoundError:
            await self._set_status(evaluation, EvaluationStatus.Canceled, "job no longer exists")
            return
        executions = await self._store.list_executions(job.id)
        snapshot = Snapshot(
            job=job,
            executions=tuple(executions),
            nodes=tuple(self._nodes.list()),
            now_ns=self._clock_ns(),
            queue_backoff_ns=self._queue_backoff_ns,
            awaiting_reconnect=self._nodes.awaiting_reconnect(),
        )
        plan = schedule(evaluation, snapshot)
        applied = await self._planner.apply(plan)
        status = EvaluationStatus.Complete if applied else EvaluationStatus.Canceled
        log.debug(
            "evaluation %s of job %s (%s): %s; %d new, %d stopped executions, job -> %s%s",
            evaluation.id, job.id, evaluation.triggered_by.value, status.name,
            len(plan.new_executions), len(plan.stop_executions),
            plan.job_transition.new_state.name if plan.job_transition else "unchanged",
            f" ({plan.comment})" if plan.comment else "",
        )
        await self._set_status(evaluation, status, plan.comment)

    async def _set_status(self, evaluation: Evaluation, status: EvaluationStatus, comment: str) -> None:
        try:
            await self._store.update_evaluation_status(evaluation.id, status, comment)
        except BacalhauError:
            log.exception("could not record status of evaluation %s", evaluation.id)
