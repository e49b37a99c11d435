"""Placement pieces every scheduler shares: which nodes fit, what to say when too few do, new executions.

The search for feasible nodes is bounded (`enough`, Nomad's limit iterator) for the partitioned
schedulers, and runs over the whole fleet for the per-node ones (ops, daemon: every node is the point).
"""

from __future__ import annotations

import itertools
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import AllocatedResources, DesiredState, Execution, ExecutionState
from bacalhau.models.job import Job
from bacalhau.models.node import ConnectionStatus, Membership, NodeState
from bacalhau.models.node_rejections import RejectionKind
from bacalhau.models.state import (
    EvaluationTrigger,
    ExecutionDesiredStateType,
    ExecutionStateType,
    JobStateType,
)
from bacalhau.orchestrator.evaluations import new_evaluation
from bacalhau.orchestrator.scheduler.plan import JobTransition, Plan, Snapshot, StopExecution
from bacalhau.orchestrator.selection.feasibility import rejection
from bacalhau.orchestrator.selection.rejections import NodeRejection, summarize, to_details

IdFactory = Callable[[str], str]
# Holders of the job's data checked for a placement at most (they are ranked: the best come first). Each
# check is a feasibility check the sample would otherwise have made: 8 keeps the total about the same
# as without ranking (bench/scheduler_locality.py), and 8 holders that all fail to fit are rare.
MAX_HOLDERS_CHECKED = 8


def new_id(prefix: str) -> str:
    """`e-<uuid4>`: an execution ID as Bacalhau makes them."""
    return f"{prefix}{uuid.uuid4()}"


def check_node_alive(node: NodeState) -> str | None:
    """Why executions on this node can no longer finish, or None."""
    if node.membership is Membership.REJECTED:
        return "node has been rejected"
    if node.connection_state.status is not ConnectionStatus.CONNECTED:
        return "node has disappeared"
    return None


def feasible(
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
    needed = snap.task_resources
    nodes: Iterable[NodeState] = snap.nodes
    if enough > 0 and len(snap.nodes) > enough:
        start = zlib.crc32(job_key(snap).encode()) % len(snap.nodes)
        rotated = itertools.chain(snap.nodes[start:], snap.nodes[:start])
        first = _holders_first(snap, max(1, enough // 4), exclude, refused)
        if first:
            ok.extend(first)  # checked already
            # Lazily: the search stops after `enough` nodes, so the fleet is never walked whole.
            chosen = {n.info.node_id for n in first}
            nodes = (n for n in rotated if n.info.node_id not in chosen)
        else:
            nodes = rotated
    for node in nodes:
        if enough > 0 and len(ok) >= enough:
            break
        node_id = node.info.node_id
        if node_id in refused:
            rejections.append(NodeRejection(node_id, kind=RejectionKind.BID_REJECTED, detail=refused[node_id]))
            continue
        if node_id in exclude:
            rejections.append(NodeRejection(node_id, kind=RejectionKind.ALREADY_RUNS_JOB))
            continue
        if node_id in snap.draining:
            rejections.append(NodeRejection(node_id, kind=RejectionKind.SHUTTING_DOWN))
            continue
        if node_id in snap.cordoned:
            rejections.append(NodeRejection(node_id, kind=RejectionKind.CORDONED))
            continue
        found = rejection(snap.job, node, needed)
        if found is None:
            ok.append(node)
        else:
            rejections.append(found)
    return ok, rejections


def _holders_first(snap: Snapshot, most: int, exclude: set[str], refused: dict[str, str]) -> list[NodeState]:
    """The nodes holding the job's data that can take it now, to look at before the sample: most bytes
    held first, at most `most` of them (the sample keeps room for nodes holding nothing). Only holders
    with a free slot: ranking puts a backlogged node after every free one anyway, so checking whether a
    busy holder fits would be wasted (a burst that made every holder busy spills over to free nodes,
    which then hold the data too). At most MAX_HOLDERS_CHECKED holders are looked at."""
    ranked = snap.holdings.ranked
    if not ranked:
        return []
    by_id = snap.node_by_id
    first: list[NodeState] = []
    needed = snap.task_resources
    for node_id in ranked[:MAX_HOLDERS_CHECKED]:
        node = by_id.get(node_id)
        info = node.info.compute_node_info if node is not None else None
        # Cheapest test first: most holders skipped are busy ones.
        if node is None or info is None or info.enqueued_executions > 0 or not info.queue_capacity.is_zero():
            continue
        if node_id in exclude or node_id in refused or node_id in snap.draining or node_id in snap.cordoned:
            continue
        if rejection(snap.job, node, needed) is None:
            first.append(node)
            if len(first) >= most:
                break
    return first


def not_enough_nodes(
    plan: Plan,
    snap: Snapshot,
    *,
    wanted: int,
    found: int,
    rejections: list[NodeRejection],
    active: Sequence[Execution] = (),
    keep_running: bool = False,
    cause: str = "",
) -> Plan:
    """Too few nodes fit: queue the job while its QueueTimeout lasts (or a node is expected back), else
    fail it and stop its `active` executions (a failed job runs nothing). `keep_running`: a long-running
    job under way is never failed for a replica with nowhere to go now; it waits, Running, saying why."""
    job = snap.job
    reason = f"not enough nodes to run job. requested: {wanted}, available: {found}"
    if not snap.nodes:
        reason += ". No compute nodes are connected"
    elif rejections:
        reason += ". " + summarize(rejections)
    if cause:
        reason += f". The {cause}"
    # Every node's reason, grouped, for `job describe` and tools (the message says the first few).
    details = to_details(rejections)
    if keep_running:
        message = f"waiting for a node: {reason}"
        if job.state.message != message:  # one history event per change of reason, not one per retry
            plan.job_transition = JobTransition(JobStateType.Running, message, details)
        plan.new_evaluations.append(
            delayed_evaluation(job, snap, snap.now_ns + snap.queue_backoff_ns, EvaluationTrigger.JobQueue)
        )
        plan.comment = reason
        return plan
    queue_timeout_ns = job.task.timeouts.queue_timeout * 1_000_000_000
    deadline = job.create_time + queue_timeout_ns
    if queue_timeout_ns > 0 and snap.now_ns < deadline:
        retry_at = min(snap.now_ns + snap.queue_backoff_ns, deadline)
        plan.job_transition = JobTransition(JobStateType.Queued, f"Job queued. {reason}", details)
        plan.new_evaluations.append(delayed_evaluation(job, snap, retry_at, EvaluationTrigger.JobQueue))
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
            JobStateType.Queued, f"Job queued. {reason}; waiting for node(s) {names} to reconnect", details
        )
        plan.new_evaluations.append(
            delayed_evaluation(job, snap, snap.now_ns + snap.queue_backoff_ns, EvaluationTrigger.JobQueue)
        )
        plan.comment = reason
        return plan
    if queue_timeout_ns > 0:
        reason += f" (still not enough after the queue timeout of {job.task.timeouts.queue_timeout}s)"
    plan.job_transition = JobTransition(JobStateType.Failed, reason, details)
    plan.stop_executions.extend(StopExecution(e.id, "Execution stopped due to job failure") for e in active)
    plan.comment = reason
    return plan


def delayed_evaluation(job: Job, snap: Snapshot, due_ns: int, trigger: EvaluationTrigger) -> Evaluation:
    """The job's next evaluation, due at `due_ns`.

    JobQueue: a queued job's retry, run sooner when a node joins (broker.wake_delayed). ExecFailure: a
    retry's backoff, which a joining node does not shorten. NodeLeave: a drain deadline."""
    return new_evaluation(job, trigger, snap.now_ns, wait_until_ns=due_ns)


def job_key(snap: Snapshot) -> str:
    """What spreads this job's executions among equally ranked nodes: its ID and version."""
    return f"{snap.job.id}/{snap.job.version}"


def mark_running(plan: Plan, has_work: bool, message: str = "") -> None:
    """Move the job to Running when it has work and is not Running yet."""
    if has_work and plan.job.state.state_type is not JobStateType.Running:
        plan.job_transition = JobTransition(JobStateType.Running, message)


def new_execution(
    plan: Plan,
    snap: Snapshot,
    node: NodeState,
    partition: int,
    previous: Execution | None,
    make_id: IdFactory,
    note: str = "",
) -> Execution:
    """Add a new execution of the job on `node` to the plan; `note` says why (a retry) in its history."""
    job = snap.job
    execution = Execution(
        ID=make_id("e-"),
        Namespace=job.namespace,
        EvalID=plan.evaluation.id,
        Name=job.name,
        NodeID=node.info.node_id,
        JobID=job.id,
        Job=job,
        JobVersion=job.version,
        AllocatedResources=AllocatedResources(Tasks={job.task.name: snap.task_resources.model_copy()}),
        DesiredState=DesiredState(StateType=ExecutionDesiredStateType.Running),
        ComputeState=ExecutionState(StateType=ExecutionStateType.New),
        PreviousExecution=previous.id if previous else "",
        PartitionIndex=partition,
        CreateTime=snap.now_ns,
        ModifyTime=snap.now_ns,
    )
    plan.new_executions.append(execution)
    held = snap.holdings.describe(node.info.node_id)
    note = "; ".join(part for part in (note, held) if part)
    if note:
        plan.notes[execution.id] = note
    return execution
