"""The orchestrator's side of the compute link: what compute nodes report, recorded and acted on.

Node membership and liveness (handshake, heartbeat, node info, shutdown notice) go to the NodeManager;
execution reports become conditional execution updates, each in one transaction with its history
event and its follow-up evaluation.

Exactly-once result recording (the execution ID is the fencing token)::

    report ──> execution still wanted?  compute state not terminal, DesiredState Pending/Running,
                    │                   and the report moves the state forward
                   yes ──> update + history + evaluation, one transaction (conditional on the above)
                    no ──> acknowledged, nothing changes; a RunResult the orchestrator no longer wants
                           leaves a "late result discarded" event in the execution's history

So a duplicate RunResult is recorded once, a late one (after the execution was failed because its
node disappeared and replaced elsewhere) never completes a partition twice, and a replayed BidResult
cannot move a Running execution back.

A final report may carry the steps before it that were not reported on their own (`Steps`: bid
accepted, Running, Publishing; see compute/reports.py): each forward one is recorded as its own
history event, at the time the compute node reached it, in the final report's one transaction. That
time is kept between the execution's last change here and now, and never goes backwards, whatever
the node's clock says: the history stays in order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from bacalhau.models.clock import rfc3339, rfc3339_nano
from bacalhau.models.errors import ConflictError, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import DesiredState, Execution, ExecutionState
from bacalhau.models.history import JobHistory
from bacalhau.models.state import (
    EvaluationTrigger,
    ExecutionDesiredStateType,
    ExecutionStateType,
)
from bacalhau.orchestrator.evaluations import evaluation_of
from bacalhau.orchestrator.events import execution_event, execution_note
from bacalhau.orchestrator.jobstore.base import ExecutionBrief, ExecutionUpdate, HistoryQuery, JobStore
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.planner import Planner
from bacalhau.transport.messages import (
    STEP_STATES,
    BidResult,
    ComputeError,
    ExecutionProgress,
    ExecutionStep,
    Handshake,
    HandshakeOutcome,
    Heartbeat,
    NodeInfoUpdate,
    RunResult,
    ShutdownNotice,
)

log = logging.getLogger(__name__)

S = ExecutionStateType
_NON_TERMINAL = frozenset(s for s in S if not s.is_terminal)
# Forward order of the non-terminal compute states; a report may only move an execution along it.
_PROGRESS = (S.Undefined, S.New, S.AskForBid, S.AskForBidAccepted, S.BidAccepted, S.Running, S.Publishing)
_RANK = {state: rank for rank, state in enumerate(_PROGRESS)}
# What the orchestrator still wants of an execution whose reports it records (Bacalhau: Pending/Running
# for bids, Running for results; the planner creates executions desired Running).
_WANTED = frozenset({ExecutionDesiredStateType.Pending, ExecutionDesiredStateType.Running})

RESTART_MESSAGE = "execution lost: compute node {node} restarted before it finished"
NOT_HELD_MESSAGE = "execution lost: compute node {node} reconnected without it"


def _forward_sources(target: ExecutionStateType) -> frozenset[ExecutionStateType]:
    """The compute states from which moving to `target` is a step forward."""
    if target.is_terminal:
        return _NON_TERMINAL
    return frozenset(s for s in _PROGRESS if _RANK[s] < _RANK.get(target, 0))


def _late_result_message(execution: Execution) -> str:
    state = execution.compute_state
    if state.state_type.is_terminal:
        why = f" ({state.message})" if state.message else ""
        return f"late result discarded: execution already {state.state_type.name}{why}"
    desired = execution.desired_state
    why = f" ({desired.message})" if desired.message else ""
    return f"late result discarded: execution no longer wanted, desired {desired.state_type.name}{why}"


class ComputeEventHandler:
    """Implements transport.base.OrchestratorService."""

    # Final reports may carry the steps before them (OrchestratorService.accepts_steps): recorded below.
    accepts_steps = True

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

    # ---- membership and liveness ----------------------------------------------------------------

    async def handshake(self, request: Handshake) -> HandshakeOutcome:
        """Admit (or refuse) the node, then reconcile its executions if it listed them.

        Listed (`active_execution_ids` not None): executions stored as non-terminal on this node but not
        listed are failed (retryable: the node lost them); listed ones the orchestrator does not want
        running (unknown, terminal, stopped, or placed elsewhere) come back in `cancel_execution_ids`.
        Idempotent: a repeated handshake fails nothing new.
        """
        node_id = request.node_info.node_id
        admission = self._nodes.handshake(request.node_info)
        if not admission.accepted:
            log.info("handshake of node %s refused: %s", node_id, admission.reason)
            return HandshakeOutcome(accepted=False, reason=admission.reason)
        cancel: list[str] = []
        if request.active_execution_ids is not None:
            template = RESTART_MESSAGE if request.restarted else NOT_HELD_MESSAGE
            cancel = await self._reconcile(node_id, request.active_execution_ids, template.format(node=node_id))
        return HandshakeOutcome(accepted=True, reason=admission.reason, cancel_execution_ids=cancel)

    async def _reconcile(self, node_id: str, held: list[str], lost_message: str) -> list[str]:
        held_ids = set(held)
        wanted: set[str] = set()
        for execution in await self._store.list_executions_on_node(node_id, active_only=True):
            if execution.id not in held_ids:
                await self._planner.fail_execution(execution.id, lost_message, retryable=True)
            elif execution.desired_state.state_type in _WANTED:
                wanted.add(execution.id)
        cancel = list(dict.fromkeys(i for i in held if i not in wanted))
        if cancel:
            log.info("node %s holds %d execution(s) no longer wanted: asking it to cancel them", node_id, len(cancel))
        return cancel

    async def heartbeat(self, request: Heartbeat) -> bool:
        """Refresh the node's liveness and capacity; False means it must handshake again."""
        return self._nodes.heartbeat(request.node_id, request.available_capacity, request.queue_used_capacity)

    async def update_node_info(self, request: NodeInfoUpdate) -> None:
        """Replace the node's advertised info (ignored for unknown and REJECTED nodes)."""
        self._nodes.update_info(request.node_info)

    async def shutdown_notice(self, request: ShutdownNotice) -> None:
        """Draining: no new work for the node, its executions stay (they finish or come back handed
        back). Otherwise DISCONNECTED now ("graceful shutdown"); its executions are placed again."""
        why = f": {request.reason}" if request.reason else ""
        if request.draining:
            log.info("node %s is draining%s: no new work is placed there", request.node_id, why)
            self._nodes.drain(request.node_id)
            return
        log.info("node %s is shutting down%s", request.node_id, why)
        self._nodes.shutdown(request.node_id)

    # ---- execution reports ----------------------------------------------------------------------

    async def on_bid_result(self, message: BidResult) -> None:
        """Accepted: BidAccepted (never backwards from Running). Rejected: AskForBidRejected + an evaluation.

        AskForBidRejected, as Bacalhau's OnBidComplete records a compute's refusal; BidRejected is the
        orchestrator refusing a bid.
        """
        execution = await self._reported(message.execution_id, message.node_id)
        if execution is None:
            return
        if message.accepted:
            await self._transition(execution, S.BidAccepted, "Bid accepted", evaluate=False)
        else:
            await self._transition(
                execution, S.AskForBidRejected, message.reason or "Bid rejected",
                evaluate=True, trigger=EvaluationTrigger.ExecUpdate,
            )

    async def on_execution_progress(self, message: ExecutionProgress) -> None:
        """Record a forward move (Running, Publishing); stale or replayed progress is ignored."""
        execution = await self._reported(message.execution_id, message.node_id)
        if execution is None:
            return
        text = message.message or message.state.name
        await self._transition(execution, message.state, text, evaluate=False)

    async def on_run_result(self, message: RunResult) -> None:
        """Completed + outputs + an evaluation, once; a result no longer wanted is noted and discarded."""
        execution = await self._reported(message.execution_id, message.node_id)
        if execution is None:
            return
        recorded = await self._transition(
            execution,
            S.Completed,
            "Completed successfully",
            evaluate=True,
            trigger=EvaluationTrigger.ExecUpdate,
            details=message.details,
            update_fields={"run_output": message.run_output, "published_result": message.published_result},
            steps=message.steps,
        )
        if not recorded:
            await self._note_discarded_result(message.execution_id)

    async def on_compute_error(self, message: ComputeError) -> None:
        """Failed + an evaluation, unless the execution already ended or is no longer wanted."""
        execution = await self._reported(message.execution_id, message.node_id)
        if execution is None:
            return
        await self._transition(
            execution,
            S.Failed,
            message.message or "execution failed",
            evaluate=True,
            trigger=EvaluationTrigger.ExecFailure,
            details=message.details,
            update_fields={"run_output": message.run_output} if message.run_output else {},
            steps=message.steps,
        )

    async def _reported(self, execution_id: str, node_id: str) -> ExecutionBrief | None:
        """The execution a report is about, or None (logged) when it is unknown or on another node.

        An empty `node_id` is a report from inside this process, where there is no one to doubt. Only
        its IDs and states are read: every job has four reports or more, and the stored execution
        carries the whole job.
        """
        execution = await self._store.execution_brief(execution_id)
        if execution is None:
            log.warning("report for unknown execution %s ignored", execution_id)
            return None
        if not node_id or execution.node_id == node_id:
            return execution
        log.warning("node %s reported on execution %s, which runs on %s: ignored", node_id, execution_id,
                    execution.node_id)
        return None

    async def _transition(
        self,
        execution: ExecutionBrief,
        new_state: ExecutionStateType,
        message: str,
        *,
        evaluate: bool,
        trigger: EvaluationTrigger = EvaluationTrigger.ExecUpdate,
        details: dict[str, str] | None = None,
        update_fields: dict[str, object] | None = None,
        steps: Sequence[ExecutionStep] = (),
    ) -> bool:
        """Record the report if the execution is still wanted and it moves forward; True if recorded.

        `execution` is as read when the report arrived; the store checks the same conditions again
        inside the transaction, so a change since that read is a ConflictError, never a double record.
        `steps` (a final report's) become history events before the report's own, those that move
        forward from the state read.
        """
        execution_id = execution.id
        previous = execution.compute_state
        sources = _forward_sources(new_state)
        if previous not in sources or execution.desired_state not in _WANTED:
            log.debug("execution %s is %s: report %s ignored", execution_id, previous.name, new_state.name)
            return False
        update = ExecutionUpdate(
            execution_id=execution_id,
            # The same conditions again, checked by the store inside the transaction: a concurrent
            # change since the read above makes this a ConflictError, never a double recording.
            expected_states=sources,
            expected_desired_states=_WANTED,
            compute_state=ExecutionState(StateType=new_state, Message=message, Details=details or {}),
        )
        update.events, last = self._step_events(execution, previous, new_state, steps)
        update.events.append(execution_event(execution, last, new_state, message, details=details))
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
                    evaluation = await evaluation_of(self._store, execution.job_id, trigger, self._clock_ns())
                    await self._store.create_evaluation(evaluation)
        except ConflictError:
            return False
        if evaluation is not None:
            self._enqueue(evaluation)
        return True

    def _step_events(
        self, execution: ExecutionBrief, previous: ExecutionStateType, target: ExecutionStateType,
        steps: Sequence[ExecutionStep],
    ) -> tuple[list[JobHistory], ExecutionStateType]:
        """History events of the `steps` that move forward from `previous` and come before `target`,
        timed when the compute node reached them (within [the execution's last change, now], and never
        before the step before: another machine's clock may run ahead or behind), and the state the
        last one reached."""
        events: list[JobHistory] = []
        current = previous
        now = self._clock_ns()
        earliest = min(execution.modify_time_ns, now)
        for step in steps:
            if step.state not in STEP_STATES:
                continue  # AskForBidAccepted and the like are the orchestrator's to record, not a node's
            rank = _RANK[step.state]
            if rank <= _RANK.get(current, len(_PROGRESS)) or rank >= _RANK.get(target, len(_PROGRESS)):
                continue
            event = execution_event(execution, current, step.state, step.message)
            at = earliest = min(max(step.time_ns, earliest), now)
            event.time = rfc3339_nano(at)
            event.event.timestamp = rfc3339(at)
            events.append(event)
            current = step.state
        return events, current

    async def _note_discarded_result(self, execution_id: str) -> None:
        """Leave one history event saying a result arrived for an execution no longer wanted."""
        try:
            execution = await self._store.get_execution(execution_id)
        except NotFoundError:
            return
        if execution.compute_state.state_type is S.Completed:
            return  # a duplicate of the result already recorded
        text = _late_result_message(execution)
        async with self._store.transaction():
            query = HistoryQuery(execution_id=execution.id, event_type="execution", all_versions=True)
            if any(e.event.message == text for e in await self._store.list_history(execution.job_id, query)):
                return  # the same late result again (a replay): noted once
            await self._store.add_history([execution_note(execution, text)])
        log.info("execution %s: %s", execution_id, text)
