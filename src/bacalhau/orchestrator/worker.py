"""Workers: evaluations -> snapshots -> scheduler -> plans -> one transaction -> the nodes, a batch at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bacalhau.locality.held import NO_HOLDINGS
from bacalhau.models.errors import BacalhauError, ConflictError, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.retry import DEFAULT_RETRY, RetryPolicy
from bacalhau.models.state import EvaluationStatus, ExecutionDesiredStateType, JobStateType
from bacalhau.orchestrator import result_reuse
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.jobstore.base import ExecutionQuery, JobStore
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.planner import Planner
from bacalhau.orchestrator.scheduler.plan import JobTransition, Plan, Snapshot, StopExecution
from bacalhau.orchestrator.scheduler.schedule import schedule

log = logging.getLogger(__name__)


# Evaluations a worker takes from the broker at once. Their plans are written in one transaction
# (each in its own savepoint) with their evaluations' statuses: one commit per batch instead of two
# per evaluation, which was the largest single cost of a placement. Small enough that a batch's
# transaction holds the store for a few milliseconds at most.
BATCH_SIZE = 32


@dataclass
class _Outcome:
    """What became of one evaluation of a batch."""

    evaluation: Evaluation
    plan: Plan | None = None
    status: EvaluationStatus = EvaluationStatus.Complete
    comment: str = ""
    created: list[Execution] = field(default_factory=list)
    stored: bool = False  # the plan is in the store: tell the nodes
    keys: tuple[str, ...] = ()  # the job's input data keys (locality), computed once per evaluation


class Worker:
    """Takes evaluations from the broker in batches, plans each (the pure scheduler), stores the plans
    and tells the nodes (see `process_batch`)."""

    def __init__(
        self,
        *,
        broker: EvaluationBroker,
        store: JobStore,
        nodes: NodeManager,
        planner: Planner,
        queue_backoff_ns: int,
        clock_ns: Callable[[], int] = time.time_ns,
        batch_size: int = BATCH_SIZE,
        limits: JobLimits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        locality_ranking: bool = True,
    ) -> None:
        """`limits`: JobAdmissionControl.Limits; the scheduler fails a stored job beyond them. `retry`:
        Orchestrator.Scheduler.Retry, the policy of jobs that set no retry.* Meta keys. `locality_ranking`:
        tell the scheduler which nodes hold the job's input data (NodeManager.holdings)."""
        self._locality = locality_ranking
        self._limits = limits
        self._retry = retry
        self._broker = broker
        self._store = store
        self._nodes = nodes
        self._planner = planner
        self._queue_backoff_ns = queue_backoff_ns
        self._clock_ns = clock_ns
        self._batch_size = max(1, batch_size)

    async def run(self) -> None:
        """Process evaluations, a ready batch at a time, until the broker closes."""
        while True:
            first = await self._broker.dequeue()
            if first is None:
                return
            batch = [first, *self._broker.dequeue_ready(self._batch_size - 1)]
            try:
                await self.process_batch(batch)
            except Exception:
                # One bad batch must never stop the worker: record it and go on.
                log.exception("a batch of %d evaluation(s) failed", len(batch))
                for evaluation in batch:
                    await self._set_status(evaluation, EvaluationStatus.Failed, "internal error while scheduling")
            finally:
                for evaluation in batch:
                    for dropped in self._broker.ack(evaluation):
                        await self._set_status(dropped, EvaluationStatus.Canceled, "superseded by a newer evaluation")

    async def process(self, evaluation: Evaluation) -> None:
        """One evaluation (a batch of one)."""
        await self.process_batch([evaluation])

    async def process_batch(self, evaluations: list[Evaluation]) -> None:
        """Plan each evaluation (pure), store every plan in one transaction, then tell the nodes.

        The evaluations are of distinct jobs (the broker keeps one in flight per job). A plan whose job
        changed since it was read fails its own savepoint (ConflictError) and is dropped, its evaluation
        Canceled; an evaluation that breaks the scheduler is Failed; the others of the batch go on.
        """
        outcomes = [await self._plan(evaluation) for evaluation in evaluations]
        async with self._store.transaction():
            for outcome in outcomes:
                if outcome.plan is not None:
                    await self._store_plan(outcome)
                # One UPDATE (atomic by itself): a status that cannot be written is logged, not the batch's end.
                await self._set_status(outcome.evaluation, outcome.status, outcome.comment)
        for outcome in outcomes:
            if outcome.plan is None or not outcome.stored:
                continue
            if self._locality and outcome.created and outcome.keys:
                # Those nodes are staging the inputs now: the job's next sibling may go where they will be.
                for execution in outcome.created:
                    self._nodes.holdings.expect(execution.node_id, outcome.keys)
            try:
                await self._planner.dispatch(outcome.plan, outcome.created)
            except Exception:
                # Stored but not sent: the node's next handshake reconciles it (see planner).
                log.exception("could not dispatch the plan of evaluation %s", outcome.evaluation.id)

    async def _plan(self, evaluation: Evaluation) -> _Outcome:
        outcome = _Outcome(evaluation)
        try:
            job = await self._store.get_job(evaluation.job_id)
        except NotFoundError:
            outcome.status, outcome.comment = EvaluationStatus.Canceled, "job no longer exists"
            return outcome
        executions: list[Execution] = []
        try:
            # Without each execution's copy of the job: the snapshot has the job, and a daemon job on a
            # thousand nodes would otherwise be parsed a thousand times per evaluation.
            executions = await self._store.list_executions(job.id, _WITHOUT_JOB)
            reuse = result_reuse.check(job)
            fresh = not executions and not job.state.state_type.is_terminal
            reusable = await self._store.find_result(reuse.fingerprint) if reuse.fingerprint and fresh else None
            snapshot = Snapshot(
                job=job,
                executions=tuple(executions),
                nodes=tuple(self._nodes.list()),
                nodes_by_id=self._nodes.by_id(),
                now_ns=self._clock_ns(),
                queue_backoff_ns=self._queue_backoff_ns,
                awaiting_reconnect=self._nodes.awaiting_reconnect(),
                draining=self._nodes.draining(),
                cordoned=self._nodes.cordoned(),
                limits=self._limits,
                retry=self._retry,
                holdings=self._nodes.holdings.for_job(job) if self._locality else NO_HOLDINGS,
                reuse=reuse,
                reusable=reusable,
            )
            outcome.plan = schedule(evaluation, snapshot)
            outcome.keys = snapshot.holdings.keys
        except Exception as exc:
            # The job's next evaluation would break the scheduler the same way: fail the job, with the
            # reason, instead of leaving it Pending (or retried) forever.
            log.exception("evaluation %s of job %s failed", evaluation.id, evaluation.job_id)
            reason = f"internal error while scheduling: {_summary(exc)}"
            outcome.plan = _failure_plan(evaluation, job, executions, reason)
            outcome.status, outcome.comment = EvaluationStatus.Failed, reason
            return outcome
        outcome.comment = outcome.plan.comment
        return outcome

    async def _store_plan(self, outcome: _Outcome) -> None:
        plan = outcome.plan
        assert plan is not None
        try:
            async with self._store.transaction():  # a savepoint inside the batch's transaction
                outcome.created = await self._planner.store(plan)
            outcome.stored = True
        except ConflictError as exc:
            log.info("plan for job %s dropped: %s", plan.job.id, exc)
            outcome.status = EvaluationStatus.Canceled
            return
        except BacalhauError:
            log.exception("could not store the plan of evaluation %s", outcome.evaluation.id)
            outcome.status, outcome.comment = EvaluationStatus.Failed, "internal error while storing the plan"
            return
        log.debug(
            "evaluation %s of job %s (%s): %d new, %d stopped executions, job -> %s%s",
            outcome.evaluation.id, plan.job.id, outcome.evaluation.triggered_by.value,
            len(plan.new_executions), len(plan.stop_executions),
            plan.job_transition.new_state.name if plan.job_transition else "unchanged",
            f" ({plan.comment})" if plan.comment else "",
        )

    async def _set_status(self, evaluation: Evaluation, status: EvaluationStatus, comment: str) -> None:
        try:
            await self._store.update_evaluation_status(evaluation.id, status, comment)
        except BacalhauError:
            log.exception("could not record status of evaluation %s", evaluation.id)


_WITHOUT_JOB = ExecutionQuery(with_job=False)
# Long enough to say what broke, short enough for a job state message.
_SUMMARY_CHARS = 300


def _summary(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 3] + "..."


def _failure_plan(evaluation: Evaluation, job: Job, executions: list[Execution], reason: str) -> Plan:
    """The plan for a job whose evaluation broke the scheduler: the job Failed, its executions stopped."""
    plan = Plan(evaluation=evaluation, job=job, comment=reason)
    if job.state.state_type.is_terminal:
        return plan
    plan.job_transition = JobTransition(JobStateType.Failed, reason, {"IsError": "true"})
    plan.stop_executions = [
        StopExecution(e.id, "Execution stopped due to job failure")
        for e in executions
        if not e.compute_state.state_type.is_terminal
        and e.desired_state.state_type is not ExecutionDesiredStateType.Stopped
    ]
    return plan
