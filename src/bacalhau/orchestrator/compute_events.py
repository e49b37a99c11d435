"""The orchestrator's side of the compute link: what compute nodes report, recorded and acted on.

Each report is a conditional execution update plus a history event; reports that arrive for an
execution already in a terminal state (late, duplicated, or after a stop) are ignored, so a race
cannot bring a finished execution back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bacalhau.models.errors import ConflictError, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import DesiredState, ExecutionState
from bacalhau.models.state import EvaluationTrigger, ExecutionDesiredStateType, ExecutionStateType
from bacalhau.orchestrator.evaluations import new_evaluation
from bacalhau.orchestrator.events import execution_event
from bacalhau.orchestrator.jobstore.base import ExecutionUpdate, JobStore
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.planner import Planner
from bacalhau.transport.messages import (
    BidResult,
    ComputeError,
    ExecutionProgress,
    Handshake,
    NodeInfoUpdate,
    RunResult,
)

log = logging.getLogger(__name__)

_NON_TERMINAL = frozenset(s for s in ExecutionStateType if not s.is_terminal)

RESTART_MESSAGE = "execution lost: compute node {node} restarted before it finished"


class ComputeEventHandler:
    """Implements transport.base.OrchestratorService."""

    def __init__(
        self,
        *,
        store: JobStore,
        nodes: NodeManager,
        planner: Planner,
        enqueue: Callable[[Evaluation], None],
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._planner = planner
        self._enqueue = enqueue
        self._clock_ns = clock_ns

    async def handshake(self, request: Handshake) -> None:
        node_id = request.node_info.node_id
        self._nodes.register(request.node_info)
        still_held = set(request.active_execution_ids)
        for execution in await self._store.list_executions_on_node(node_id, active_only=True):
            if execution.id not in still_held:
                await self._planner.fail_execution(
                    execution.id, RESTART_MESSAGE.format(node=node_id), retryable=True
                )

    async def update_node_info(self, request: NodeInfoUpdate) -> None:
        self._nodes.update_info(request.node_info)

    async def on_bid_result(self, message: BidResult) -> None:
        if message.accepted:
            await self._transition(message.execution_id, ExecutionStateType.BidAccepted, "Bid accepted", evaluate=False)
        else:
            await self._transition(
                message.execution_id, ExecutionStateType.BidRejected, message.reason or "Bid rejected",
                evaluate=True, trigger=EvaluationTrigger.ExecUpdate,
            )

    async def on_execution_progress(self, message: ExecutionProgress) -> None:
        text = message.message or message.state.name
        await self._transition(message.execution_id, message.state, text, evaluate=False)

    async def on_run_result(self, message: RunResult) -> None:
        await self._transition(
            message.execution_id,
            ExecutionStateType.Completed,
            "Completed successfully",
            evaluate=True,
            trigger=EvaluationTrigger.ExecUpdate,
            details=message.details,
            update_fields={"run_output": message.run_output, "published_result": message.published_result},
        )

    async def on_compute_error(self, message: ComputeError) -> None:
        await self._transition(
            message.execution_id,
            ExecutionStateType.Failed,
            message.message or "execution failed",
            evaluate=True,
            trigger=EvaluationTrigger.ExecFailure,
            details=message.details,
            update_fields={"run_output": message.run_output} if message.run_output else {},
        )

    async def _transition(
        self,
        execution_id: str,
        new_state: ExecutionStateType,
        message: str,
        *,
        evaluate: bool,
        trigger: EvaluationTrigger = EvaluationTrigger.ExecUpdate,
        details: dict[str, str] | None = None,
        update_fields: dict[str, object] | None = None,
    ) -> None:
        try:
            execution = await self._store.get_execution(execution_id)
        except NotFoundError:
            log.warning("report for unknown execution %s ignored", execution_id)
            return
        previous = execution.compute_state.state_type
        if previous.is_terminal or previous == new_state:
            return
        update = ExecutionUpdate(
            execution_id=execution_id,
            expected_states=_NON_TERMINAL,
            compute_state=ExecutionState(StateType=new_state, Message=message, Details=details or {}),
            events=[execution_event(execution, previous, new_state, message, details=details)],
        )
        if new_state.is_terminal:
            # Nothing more is wanted of an execution that ended, as Bacalhau records it.
            update.desired_state = DesiredState(StateType=ExecutionDesiredStateType.Stopped, Message=message)
        for name, value in (update_fields or {}).items():
            setattr(update, name, value)
        evaluation = None
        try:
            async with self._store.transaction():
                await self._store.update_execution(update)
                if evaluate:
                    job = await self._store.get_job(execution.job_id)
                    evaluation = new_evaluation(job, trigger, self._clock_ns())
                    await self._store.create_evaluation(evaluation)
        except ConflictError:
            return
        if evaluation is not None:
            self._enqueue(evaluation)
