"""The batch and ops schedulers: pure functions of (evaluation, snapshot) -> Plan.

Batch: `Count` partitions, each run once on its own node (distinct nodes, as Bacalhau does).
Ops: one execution on every matching node. Both end when every execution has ended.
The work of an evaluation is bounded by the job's executions and the nodes, never by a field's value:
Count only enters as a number, and missing partitions are enumerated only up to what the nodes can take.

    evaluation ─> job terminal? ─yes─> stop what still runs
                      │no
          beyond JobAdmissionControl.Limits? ─yes─> Failed (stored before the limits held)
                      │no
                      v
          failed executions? ─ not retryable / too many ─> Failed
                      │
          all partitions completed? ─yes─> Completed
                      │no
          place missing partitions on feasible nodes
             enough nodes ─> new executions, job Running
             not enough ─> QueueTimeout left? ─yes─> Queued + delayed evaluation
                                               └no──> Failed (with every node's reason)
"""

from __future__ import annotations

import itertools
import uuid
import zlib
from collections import Counter
from collections.abc import Callable

from bacalhau.models import constants as c
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import AllocatedResources, DesiredState, Execution, ExecutionState
from bacalhau.models.job import Job
from bacalhau.models.node import NodeState
from bacalhau.models.state import (
    EvaluationStatus,
    EvaluationTrigger,
    ExecutionDesiredStateType,
    ExecutionStateType,
    JobStateType,
)
from bacalhau.models.validation import limit_problems, over_limits_message
from bacalhau.orchestrator.scheduler.plan import JobTransition, Plan, Snapshot, StopExecution
from bacalhau.orchestrator.selection.feasibility import NodeRejection, check_node, task_resources
from bacalhau.orchestrator.selection.ranking import rank_nodes

NODE_LOST_MESSAGE = "Execution stop requested because node has disappeared"

# A partition whose executions failed for retryable reasons (node restarted or lost) is placed
# again at most this many times; failures caused by the task itself are never retried.
MAX_ATTEMPTS_PER_PARTITION = 3

# How many feasible nodes a batch evaluation looks for before ranking (at least twice the executions
# it places). Checking and ranking every node made one placement cost O(fleet): 1,000 nodes cut the
# rate from ~150/s to ~64/s. Best-of-a-sample is Nomad's choice too (its limit iterator); the sample
# is still ranked (fewest queued, most free capacity), so placement quality only drops when a few
# nodes are far better than all others, and a job's sample differs from the next job's.
CANDIDATES_PER_EVALUATION = 8

IdFactory = Callable[[str], str]


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4()}"


def schedule(evaluation: Evaluation, snap: Snapshot, new_id: IdFactory = _new_id) -> Plan:
    """Decide what should happen to the job of `evaluation`, given `snap`."""
    job = snap.job
    plan = Plan(evaluation=evaluation, job=job)
    current = [e for e in snap.executions if e.job_version == job.version]
    active = [e for e in current if _is_active(e)]
    # Executions of older versions still running after an update/rerun must stop.
    for old in snap.executions:
        if old.job_version != job.version and _is_active(old):
            plan.stop_executions.append(StopExecution(old.id, "Execution stopped for job update"))

    if job.state.state_type.is_terminal:
        reason = {
            JobStateType.Stopped: "Execution stop requested because job has been stopped",
            JobStateType.Failed: "Execution stopped due to job failure",
        }.get(job.state.state_type, "Execution stopped because job is complete")
        plan.stop_executions.extend(StopExecution(e.id, reason) for e in active)
        plan.comment = f"job is {job.state.state_type.name}"
        return plan

    # Submit refuses such specs; one stored before the limits held (or written around the API) ends here.
    over = limit_problems(job, snap.limits)
    if over:
        message = over_limits_message(over)
        plan.job_transition = JobTransition(JobStateType.Failed, message, {"IsError": "true"})
        plan.stop_executions.extend(StopExecution(e.id, "Execution stopped due to job failure") for e in active)
        plan.comment = message
        return plan

    # Only the nodes of active executions are looked up: no per-evaluation map of the whole fleet.
    needed_ids = {e.node_id for e in active}
    nodes_by_id = {n.info.node_id: n for n in snap.nodes if n.info.node_id in needed_ids} if needed_ids else {}
    # Executions on nodes that vanished cannot finish: fail them so their partition is placed again.
    # The node's fault, not the task's: retryable (bounded by MAX_ATTEMPTS_PER_PARTITION). A node still
    # within its grace to reconnect after an orchestrator restart keeps its executions meanwhile.
    lost: set[str] = set()
    for e in active:
        if e.node_id in snap.awaiting_reconnect:
            continue
        node = nodes_by_id.get(e.node_id)
        if node is None or check_node_alive(node) is not None:
            plan.stop_executions.append(
                StopExecution(
                    e.id, NODE_LOST_MESSAGE, ExecutionStateType.Failed, details={"Retryable": "true"}
                )
            )
            lost.add(e.id)
    active = [e for e in active if e.id not in lost]

    fatal = [
        e
        for e in current
        if e.compute_state.state_type is ExecutionStateType.Failed and e.id not in lost and not _retryable(e)
    ]
    if fatal:
        first = fatal[0]
        message = "Job failed because one or more executions failed"
        if first.compute_state.message:
            message += f": {first.compute_state.message}"
        plan.job_transition = JobTransition(JobStateType.Failed, message)
        plan.stop_executions.extend(StopExecution(e.id, "Execution stopped due to job failure") for e in active)
        return plan

    if job.type == c.JOB_TYPE_OPS:
        return _schedule_ops(plan, snap, current, active, lost, new_id)

    wanted = job.effective_count
    completed = {e.partition_index for e in current if e.compute_state.state_type is ExecutionStateType.Completed}
    running = {e.partition_index for e in active}
    if len(completed) >= wanted:
        plan.job_transition = JobTransition(JobStateType.Completed, "")
        plan.stop_executions.extend(StopExecution(e.id, "Execution stop requested because there are more executions than needed") for e in active)
        return plan

    # Every partition still to place is one without a running or completed execution. Only partitions
    # that were tried can have used up their attempts: looked up among the executions, not range(Count).
    placed = {p for p in completed | running if 0 <= p < wanted}
    missing_count = wanted - len(placed)
    failed_attempts = Counter(e.partition_index for e in current if _counts_as_attempt(e) and e.partition_index not in placed)
    if any(n >= MAX_ATTEMPTS_PER_PARTITION for p, n in failed_attempts.items() if 0 <= p < wanted):
        plan.job_transition = JobTransition(JobStateType.Failed, "Job failed because it has been retried too many times")
        plan.stop_executions.extend(StopExecution(e.id, "Execution stopped due to job failure") for e in active)
        return plan
    if missing_count <= 0:
        _mark_running(plan, bool(active))
        return plan

    # Distinct nodes: a node already holding (or having completed) a partition is not reused;
    # neither is a node that refused this job version. More partitions than nodes can never be placed:
    # the search is bounded by the fleet, whatever Count says.
    busy = {e.node_id for e in current if _is_active(e) or e.compute_state.state_type is ExecutionStateType.Completed}
    refused = {e.node_id: e.compute_state.message for e in current if e.compute_state.state_type in _REFUSED}
    placeable = min(missing_count, len(snap.nodes))
    candidates, rejections = _feasible(
        snap, exclude=busy, refused=refused, enough=max(CANDIDATES_PER_EVALUATION, 2 * placeable)
    )
    if len(candidates) < missing_count:
        return _not_enough_nodes(plan, snap, evaluation, wanted=missing_count, found=len(candidates), rejections=rejections)

    # Here missing_count <= len(candidates) <= len(nodes): enumerating the missing partitions is bounded.
    missing = itertools.islice((p for p in itertools.count() if p not in placed), missing_count)
    for partition, node in zip(missing, rank_nodes(candidates, spread=job_key(snap)), strict=False):
        previous = _last_attempt(current, partition)
        plan.new_executions.append(_new_execution(evaluation, snap, node, partition, previous, new_id))
    _mark_running(plan, True)
    return plan


_REFUSED = (ExecutionStateType.BidRejected, ExecutionStateType.AskForBidRejected)


def check_node_alive(node: NodeState) -> str | None:
    """Why executions on this node can no longer finish, or None."""
    from bacalhau.models.node import ConnectionStatus, Membership

    if node.membership is Membership.REJECTED:
        return "node has been rejected"
    if node.connection_state.status is not ConnectionStatus.CONNECTED:
        return "node has disappeared"
    return None


def _schedule_ops(
    plan: Plan, snap: Snapshot, current: list[Execution], active: list[Execution], lost: set[str], new_id: IdFactory
) -> Plan:
    tried = {e.node_id for e in current if e.id not in lost and e.compute_state.state_type is not ExecutionStateType.Failed}
    refused = {e.node_id: e.compute_state.message for e in current if e.compute_state.state_type in _REFUSED}
    candidates, rejections = _feasible(snap, exclude=tried, refused=refused)
    if not current and not candidates:
        return _not_enough_nodes(plan, snap, plan.evaluation, wanted=1, found=0, rejections=rejections)
    for node in candidates:
        previous = _last_attempt([e for e in current if e.node_id == node.info.node_id], 0)
        plan.new_executions.append(_new_execution(plan.evaluation, snap, node, 0, previous, new_id))
    if plan.new_executions or active:
        _mark_running(plan, True)
        return plan
    if any(e.compute_state.state_type is ExecutionStateType.Completed for e in current):
        plan.job_transition = JobTransition(JobStateType.Completed, "")
    return plan


def _feasible(
    snap: Snapshot, *, exclude: set[str], refused: dict[str, str], enough: int = 0
) -> tuple[list[NodeState], list[NodeRejection]]:
    """The nodes that can run the job, and why each other node cannot.

    `enough` > 0 stops the search once that many feasible nodes are found (Nomad's limit iterator):
    a placement then costs O(enough), not O(fleet). The search starts at a point of the node list
    that depends on the job, so different jobs sample different nodes and one job always the same.
    Rejections are complete only when the search ran to the end, which it does whenever fewer than
    `enough` nodes fit: exactly the case in which they are shown to the user.
    """
    ok: list[NodeState] = []
    rejections: list[NodeRejection] = []
    needed = task_resources(snap.job)
    nodes = snap.nodes
    if enough > 0 and len(nodes) > enough:
        start = zlib.crc32(job_key(snap).encode()) % len(nodes)
        nodes = nodes[start:] + nodes[:start]
    for node in nodes:
        if enough > 0 and len(ok) >= enough:
            break
        node_id = node.info.node_id
        if node_id in refused:
            rejections.append(NodeRejection(node_id, f"refused the job: {refused[node_id]}"))
            continue
        if node_id in exclude:
            rejections.append(NodeRejection(node_id, "already runs an execution of this job (executions need distinct nodes)"))
            continue
        if node_id in snap.draining:
            rejections.append(NodeRejection(node_id, "node is shutting down"))
            continue
        reason = check_node(snap.job, node, needed)
        if reason is None:
            ok.append(node)
        else:
            rejections.append(NodeRejection(node_id, reason))
    return ok, rejections


def _not_enough_nodes(
    plan: Plan, snap: Snapshot, evaluation: Evaluation, *, wanted: int, found: int, rejections: list[NodeRejection]
) -> Plan:
    job = snap.job
    reason = f"not enough nodes to run job. requested: {wanted}, available: {found}"
    if not snap.nodes:
        reason += ". No compute nodes are connected"
    elif rejections:
        reason += ". " + "; ".join(str(r) for r in rejections)
    queue_timeout_ns = job.task.timeouts.queue_timeout * 1_000_000_000
    deadline = job.create_time + queue_timeout_ns
    if queue_timeout_ns > 0 and snap.now_ns < deadline:
        retry_at = min(snap.now_ns + snap.queue_backoff_ns, deadline)
        plan.job_transition = JobTransition(JobStateType.Queued, f"Job queued. {reason}")
        plan.new_evaluations.append(_queue_retry(job, snap, retry_at))
        plan.comment = reason
        return plan
    expected_back = snap.awaiting_reconnect | snap.draining
    if expected_back:
        # A node stopping on purpose (draining, then awaited for the disconnect timeout), or one that was
        # connected before the orchestrator restarted, is expected back: wait for it rather than fail.
        # Bounded: once its grace ends it no longer counts, and the next evaluation (on its return, or
        # after QueueBackoff) decides.
        names = ", ".join(sorted(n[:12] for n in expected_back))
        plan.job_transition = JobTransition(
            JobStateType.Queued, f"Job queued. {reason}; waiting for node(s) {names} to reconnect"
        )
        plan.new_evaluations.append(_queue_retry(job, snap, snap.now_ns + snap.queue_backoff_ns))
        plan.comment = reason
        return plan
    if queue_timeout_ns > 0:
        reason += f" (still not enough after the queue timeout of {job.task.timeouts.queue_timeout}s)"
    plan.job_transition = JobTransition(JobStateType.Failed, reason)
    plan.comment = reason
    return plan


def _queue_retry(job: Job, snap: Snapshot, retry_at: int) -> Evaluation:
    """The queued job's next try: due at `retry_at`, or sooner when a node joins (wake_delayed)."""
    return Evaluation(
        ID=str(uuid.uuid4()),
        Namespace=job.namespace,
        JobID=job.id,
        TriggeredBy=EvaluationTrigger.JobQueue,
        Priority=job.priority,
        Type=job.type,
        Status=EvaluationStatus.Pending,
        WaitUntil=retry_at,
        CreateTime=snap.now_ns,
        ModifyTime=snap.now_ns,
    )


def job_key(snap: Snapshot) -> str:
    """What spreads this job's executions among equally ranked nodes: its ID and version."""
    return f"{snap.job.id}/{snap.job.version}"


def _mark_running(plan: Plan, has_work: bool) -> None:
    if has_work and plan.job.state.state_type is not JobStateType.Running:
        plan.job_transition = JobTransition(JobStateType.Running, "")


def _is_active(e: Execution) -> bool:
    return not e.compute_state.state_type.is_terminal and e.desired_state.state_type is not ExecutionDesiredStateType.Stopped


def _retryable(e: Execution) -> bool:
    return e.compute_state.details.get("Retryable", "").lower() == "true"


def _counts_as_attempt(e: Execution) -> bool:
    # An execution a stopping node handed back (it never ran, or was stopped on purpose) is not the
    # job's failure: restarting a node must not use up a job's retries.
    return e.compute_state.state_type is ExecutionStateType.Failed and e.compute_state.details.get(c.DETAIL_HANDED_BACK) != "true"


def _last_attempt(executions: list[Execution], partition: int) -> Execution | None:
    tried = [e for e in executions if e.partition_index == partition]
    return max(tried, key=lambda e: e.create_time) if tried else None


def _new_execution(
    evaluation: Evaluation,
    snap: Snapshot,
    node: NodeState,
    partition: int,
    previous: Execution | None,
    new_id: IdFactory,
) -> Execution:
    job = snap.job
    return Execution(
        ID=new_id("e-"),
        Namespace=job.namespace,
        EvalID=evaluation.id,
        Name=job.name,
        NodeID=node.info.node_id,
        JobID=job.id,
        Job=job,
        JobVersion=job.version,
        AllocatedResources=AllocatedResources(Tasks={job.task.name: task_resources(job)}),
        DesiredState=DesiredState(StateType=ExecutionDesiredStateType.Running),
        ComputeState=ExecutionState(StateType=ExecutionStateType.New),
        PreviousExecution=previous.id if previous else "",
        PartitionIndex=partition,
        CreateTime=snap.now_ns,
        ModifyTime=snap.now_ns,
    )
