"""What every scheduler decides first, whatever the job type.

    evaluation ─> older versions' executions still running ─> stopped
        job terminal? ─yes─> stop what still runs                                       (done)
        beyond JobAdmissionControl.Limits? ─yes─> Failed (stored before the limits held)  (done)
        executions on lost nodes ─> Failed, retryable (the node's fault)
        executions on drained nodes ─> daemon: stopped now; others: moved once the drain deadline passed
        a failure that is the job's own (retry strategy "classified") ─> Failed with its reason   (done)
        otherwise ─> JobView for the type's scheduler (partitioned: batch, service; per node: ops, daemon)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bacalhau.models import constants as c
from bacalhau.models.execution import Execution
from bacalhau.models.retry import RetryPolicy
from bacalhau.models.state import EvaluationTrigger, ExecutionStateType, JobStateType
from bacalhau.models.validation import limit_problems, over_limits_message
from bacalhau.orchestrator.events import short_id
from bacalhau.orchestrator.scheduler.executions import NODE_LOST_MESSAGE, counts_as_attempt, is_active, is_retryable
from bacalhau.orchestrator.scheduler.placement import check_node_alive, delayed_evaluation
from bacalhau.orchestrator.scheduler.plan import JobTransition, Plan, Snapshot, StopExecution

_STOPPED_FOR_FAILURE = "Execution stopped due to job failure"


@dataclass
class JobView:
    """The job's executions as its type's scheduler needs them."""

    policy: RetryPolicy
    # Executions of the job's current version.
    current: list[Execution]
    # Those still running, minus the ones this plan stops (lost or moved).
    active: list[Execution]
    # Stopped by this plan because their node is gone: failed attempts from the next evaluation on.
    lost: list[Execution] = field(default_factory=list)


def begin(snap: Snapshot, plan: Plan) -> JobView | None:
    """Apply what holds for every job type to `plan`; None when the plan is complete (nothing to place)."""
    job = snap.job
    current = [e for e in snap.executions if e.job_version == job.version]
    active = [e for e in current if is_active(e)]
    # Executions of older versions still running after an update/rerun must stop.
    for old in snap.executions:
        if old.job_version != job.version and is_active(old):
            plan.stop_executions.append(StopExecution(old.id, "Execution stopped for job update"))

    if job.state.state_type.is_terminal:
        reason = {
            JobStateType.Stopped: "Execution stop requested because job has been stopped",
            JobStateType.Failed: _STOPPED_FOR_FAILURE,
        }.get(job.state.state_type, "Execution stopped because job is complete")
        plan.stop_executions.extend(StopExecution(e.id, reason) for e in active)
        plan.comment = f"job is {job.state.state_type.name}"
        return None

    # Submit refuses such specs; one stored before the limits held (or written around the API) ends here.
    over = limit_problems(job, snap.limits)
    if over:
        fail(plan, active, over_limits_message(over), {"IsError": "true"})
        return None

    try:
        policy = snap.retry.for_job(job.meta)
    except ValueError:
        policy = snap.retry  # submit validates the keys; a job stored before that runs on the default
    view = JobView(policy=policy, current=current, active=active)
    _stop_lost(snap, plan, view)
    _move_off_drained(snap, plan, view)

    fatal = [e for e in current if counts_as_attempt(e) and not policy.retries(is_retryable(e))]
    if fatal:
        first = min(fatal, key=lambda e: (e.create_time, e.id))
        message = "Job failed because one or more executions failed"
        if first.compute_state.message:
            message += f": {first.compute_state.message}"
        hint = first.compute_state.details.get("Hint", "")
        not_retried = (
            "not retried: the failure is the job's own, another node would fail the same way "
            "(Meta retry.strategy=always retries every failure)"
        )
        fail(plan, view.active, message, {"IsError": "true", "Hint": f"{hint}; {not_retried}" if hint else not_retried})
        return None
    return view


def fail(plan: Plan, active: list[Execution], message: str, details: dict[str, str] | None = None) -> None:
    """The job fails with `message`; whatever still runs is stopped."""
    plan.job_transition = JobTransition(JobStateType.Failed, message, details or {})
    plan.stop_executions.extend(StopExecution(e.id, _STOPPED_FOR_FAILURE) for e in active)
    plan.comment = message


def _stop_lost(snap: Snapshot, plan: Plan, view: JobView) -> None:
    """Executions on nodes that vanished cannot finish: failed, retryable (the node's fault). A node still
    within its grace to reconnect after an orchestrator restart keeps its executions meanwhile."""
    nodes_by_id = snap.node_by_id if view.active else {}  # a fresh job never builds the map
    for e in view.active:
        if e.node_id in snap.awaiting_reconnect:
            continue
        node = nodes_by_id.get(e.node_id)
        if node is None or check_node_alive(node) is not None:
            plan.stop_executions.append(
                StopExecution(
                    e.id, NODE_LOST_MESSAGE, ExecutionStateType.Failed,
                    details={"Retryable": "true", c.DETAIL_NODE_LOST: "true"},
                )
            )
            view.lost.append(e)
    if view.lost:
        lost_ids = {e.id for e in view.lost}
        view.active = [e for e in view.active if e.id not in lost_ids]


def _move_off_drained(snap: Snapshot, plan: Plan, view: JobView) -> None:
    """Executions on a node an operator drained: a daemon's stop at once (it belongs to the node); the
    others finish there until the drain deadline, then are stopped and placed elsewhere. Either way
    the stop is handed back, not a failure: it uses up none of the job's attempts."""
    if not snap.cordoned:
        return
    daemon = snap.job.type == c.JOB_TYPE_DAEMON
    moved: set[str] = set()
    next_deadline: int | None = None
    for e in view.active:
        if e.node_id not in snap.cordoned:
            continue
        deadline = snap.cordoned[e.node_id]
        if daemon:
            reason = f"Execution stopped because node {short_id(e.node_id)} was drained"
        elif deadline is not None and deadline <= snap.now_ns:
            reason = f"Execution moved because node {short_id(e.node_id)} was drained and its deadline passed"
        else:
            if deadline is not None:
                next_deadline = deadline if next_deadline is None else min(next_deadline, deadline)
            continue
        plan.stop_executions.append(
            StopExecution(e.id, reason, ExecutionStateType.Cancelled, details={c.DETAIL_HANDED_BACK: "true"})
        )
        moved.add(e.id)
    if moved:
        view.active = [e for e in view.active if e.id not in moved]
    if next_deadline is not None:
        plan.new_evaluations.append(delayed_evaluation(snap.job, snap, next_deadline, EvaluationTrigger.NodeLeave))
