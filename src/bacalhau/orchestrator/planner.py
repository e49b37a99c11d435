"""The planner applies a scheduler's Plan: store it (inside the worker's transaction), then transport.

Storing first means a crash between the two leaves executions recorded but not yet offered; the
compute node's handshake after a restart reconciles them, so nothing runs unrecorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bacalhau.models.constants import DETAIL_NODE_LOST
from bacalhau.models.errors import BacalhauError, ConflictError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import DesiredState, Execution, ExecutionState
from bacalhau.models.history import TOPIC_SCHEDULING
from bacalhau.models.state import (
    EvaluationTrigger,
    ExecutionDesiredStateType,
    ExecutionStateType,
)
from bacalhau.orchestrator.evaluations import evaluation_of
from bacalhau.orchestrator.events import execution_event, job_state_event, short_id
from bacalhau.orchestrator.jobstore.base import ExecutionUpdate, JobStore
from bacalhau.orchestrator.scheduler.plan import Plan
from bacalhau.transport.base import ComputeDirectory
from bacalhau.transport.messages import AskForBid, CancelExecution

log = logging.getLogger(__name__)

_NON_TERMINAL = frozenset(s for s in ExecutionStateType if not s.is_terminal)


class Planner:
    def __init__(
        self,
        *,
        store: JobStore,
        directory: ComputeDirectory,
        enqueue: Callable[[Evaluation], None],
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._store = store
        self._directory = directory
        self._enqueue = enqueue
        self._clock_ns = clock_ns

    async def store(self, plan: Plan) -> list[Execution]:
        """Write the plan; the caller holds the transaction. Returns the new executions as stored.

        ConflictError when the job's state moved since the plan was made: the caller rolls back.
        """
        job = plan.job
        if plan.job_transition is not None:
            t = plan.job_transition
            previous = job.state.state_type
            await self._store.update_job_state(
                job.id,
                t.new_state,
                t.message,
                expected=frozenset({previous}),
                events=[job_state_event(job, previous, t.new_state, t.message, t.details)],
                details=t.details,
            )
        created: list[Execution] = []
        for execution in plan.new_executions:
            execution.compute_state = ExecutionState(StateType=ExecutionStateType.AskForBid)
            event = execution_event(
                execution,
                ExecutionStateType.New,
                ExecutionStateType.AskForBid,
                _requested(execution, plan.notes.get(execution.id, "")),
                topic=TOPIC_SCHEDULING,
            )
            created.append(await self._store.create_execution(execution, [event]))
        for execution in plan.reused_executions:
            # Completed as stored: nothing runs, nothing is offered to a node.
            event = execution_event(
                execution, ExecutionStateType.New, ExecutionStateType.Completed, plan.notes.get(execution.id, ""),
                topic=TOPIC_SCHEDULING,
            )
            await self._store.create_execution(execution, [event])
        if plan.remember_result is not None:
            await self._store.remember_result(plan.remember_result[0], job.id, plan.remember_result[1])
        for stop in plan.stop_executions:
            current = await self._store.get_execution(stop.execution_id)
            if current.compute_state.state_type.is_terminal:
                continue
            await self._store.update_execution(
                ExecutionUpdate(
                    execution_id=stop.execution_id,
                    expected_states=_NON_TERMINAL,
                    compute_state=ExecutionState(
                        StateType=stop.new_state, Message=stop.reason, Details=stop.details
                    ),
                    desired_state=DesiredState(StateType=ExecutionDesiredStateType.Stopped, Message=stop.reason),
                    events=[
                        execution_event(
                            current, current.compute_state.state_type, stop.new_state, stop.reason,
                            details=stop.details or None,
                        )
                    ],
                )
            )
        for evaluation in plan.new_evaluations:
            await self._store.create_evaluation(evaluation)
        return created

    async def dispatch(self, plan: Plan, created: list[Execution]) -> None:
        """After the commit: tell the nodes (cancels, then offers) and queue the follow-up evaluations."""
        for stop in plan.stop_executions:
            execution = await self._store.get_execution(stop.execution_id)
            service = self._directory.compute(execution.node_id)
            if service is not None:
                await service.cancel_execution(CancelExecution(execution_id=stop.execution_id, reason=stop.reason))
        for execution in created:
            await self._offer(execution)
        for evaluation in plan.new_evaluations:
            self._enqueue(evaluation)

    async def _offer(self, execution: Execution) -> None:
        service = self._directory.compute(execution.node_id)
        error = "" if service is not None else f"compute node {execution.node_id} is not connected"
        if service is not None:
            try:
                await service.ask_for_bid(AskForBid(execution=execution))
                return
            except BacalhauError as exc:
                error = f"could not reach compute node {execution.node_id}: {exc.message}"
        await self.fail_execution(execution.id, error, retryable=True)

    async def fail_execution(self, execution_id: str, message: str, *, retryable: bool) -> None:
        """Record an execution failure the orchestrator itself detected, and re-evaluate its job."""
        execution = await self._store.get_execution(execution_id)
        if execution.compute_state.state_type.is_terminal:
            return
        # Detected here, not by the node: the node lost (or never got) it; it did not fail the task.
        details = {"Retryable": str(retryable).lower(), DETAIL_NODE_LOST: "true"}
        evaluation = await evaluation_of(self._store, execution.job_id, EvaluationTrigger.ExecFailure, self._clock_ns())
        try:
            async with self._store.transaction():
                await self._store.update_execution(
                    ExecutionUpdate(
                        execution_id=execution_id,
                        expected_states=_NON_TERMINAL,
                        compute_state=ExecutionState(StateType=ExecutionStateType.Failed, Message=message, Details=details),
                        desired_state=DesiredState(StateType=ExecutionDesiredStateType.Stopped, Message=message),
                        events=[
                            execution_event(
                                execution, execution.compute_state.state_type, ExecutionStateType.Failed, message, details=details
                            )
                        ],
                    )
                )
                await self._store.create_evaluation(evaluation)
        except ConflictError:
            return
        self._enqueue(evaluation)


def _requested(execution: Execution, note: str) -> str:
    """The history line of a new execution; a retry or replacement says why, and what it replaces."""
    text = f"Requested execution on {short_id(execution.node_id)}"
    return f"{text} ({note})" if note else text
