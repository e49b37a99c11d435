"""Batch and service jobs: `Count` partitions, each with one execution at a time, on distinct nodes.

    batch:   a partition is done once an execution of it completed; the job is Completed when all are.
    service: a replica is never done: one that exits (whatever its code) or fails is replaced, after a
             backoff; the job never completes on its own (`job stop` ends it).

    partitions without a running (or, for batch, completed) execution
       │  a failed attempt that was the job's fault already failed the job (job_state.begin)
       │  batch: a partition at `attempts` failed attempts ─> Failed, naming it and its last failure
       v
    due now? (last attempt ended + backoff * 2^(failures-1), capped)   ─no─> evaluation at the due time
       v
    feasible nodes (bounded search), ranked; each partition takes the best one that is unused in this
    plan, runs no other partition of the job, and has not failed this partition before (strategy
    "classified"); a retry may fall back to a node that runs another partition ("distinct when possible")
       │ every due partition placed ─> new executions (a retry's history says why and where), Running
       └ some cannot be placed ──> QueueTimeout left? Queued + evaluation later : Failed, every node's reason

The work of an evaluation is bounded by the job's executions and the nodes, never by a field's value:
Count only enters as a number, and untried partitions are enumerated only up to what the nodes can take.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

from bacalhau.models import constants as c
from bacalhau.models.execution import Execution
from bacalhau.models.node import NodeState
from bacalhau.models.node_rejections import RejectionKind
from bacalhau.models.retry import RetryStrategy
from bacalhau.models.state import EvaluationTrigger, JobStateType
from bacalhau.orchestrator.scheduler.executions import (
    counts_as_attempt,
    describe_end,
    ended,
    ended_at,
    failed_on_node,
    is_completed,
    last_of,
    recent_ends,
    refusals,
)
from bacalhau.orchestrator.scheduler.job_state import JobView, fail
from bacalhau.orchestrator.scheduler.placement import (
    IdFactory,
    delayed_evaluation,
    feasible,
    job_key,
    mark_running,
    new_execution,
    not_enough_nodes,
)
from bacalhau.orchestrator.scheduler.plan import JobTransition, Plan, Snapshot, StopExecution
from bacalhau.orchestrator.scheduler.reuse import remember_result, reuse_result
from bacalhau.orchestrator.selection.feasibility import rejection
from bacalhau.orchestrator.selection.ranking import rank_nodes
from bacalhau.orchestrator.selection.rejections import NodeRejection

# How many feasible nodes an evaluation looks for before ranking (at least twice the executions it
# places). Checking and ranking every node made one placement cost O(fleet): 1,000 nodes cut the rate
# from ~150/s to ~64/s. Best-of-a-sample is Nomad's choice too (its limit iterator); the sample is still
# ranked (fewest queued, most free capacity), so placement quality only drops when a few nodes are far
# better than all others, and a job's sample differs from the next job's.
CANDIDATES_PER_EVALUATION = 8


def schedule_partitioned(plan: Plan, snap: Snapshot, view: JobView, make_id: IdFactory) -> Plan:
    """Batch and service jobs (see the module docstring), after job_state.begin."""
    job = snap.job
    service = job.type == c.JOB_TYPE_SERVICE
    wanted = job.effective_count
    if not service and reuse_result(plan, snap, view.current, make_id):
        return plan
    completed = set() if service else {e.partition_index for e in view.current if is_completed(e)}
    if not service and sum(1 for p in completed if 0 <= p < wanted) >= wanted:
        plan.job_transition = JobTransition(JobStateType.Completed, "")
        remember_result(plan, snap, [e for e in view.current if is_completed(e)])
        reason = "Execution stop requested because there are more executions than needed"
        plan.stop_executions.extend(StopExecution(e.id, reason) for e in view.active)
        return plan

    running = {e.partition_index for e in view.active}
    placed = {p for p in completed | running if 0 <= p < wanted}
    missing_count = wanted - len(placed)
    if missing_count <= 0:
        mark_running(plan, bool(view.active))
        return plan

    # The partitions tried before (bounded by the executions) and what became of them.
    history: defaultdict[int, list[Execution]] = defaultdict(list)
    for e in view.current:
        if 0 <= e.partition_index < wanted and e.partition_index not in placed and ended(e):
            history[e.partition_index].append(e)
    for e in view.lost:  # ended by this very plan: the node's fault, so an attempt
        if 0 <= e.partition_index < wanted and e.partition_index not in placed:
            history[e.partition_index].append(e)
    lost_ids = {e.id for e in view.lost}
    policy = view.policy

    def failures(p: int) -> int:
        return sum(1 for e in history[p] if e.id in lost_ids or counts_as_attempt(e))

    if not service:
        exhausted = [p for p in history if failures(p) >= policy.attempts]
        if exhausted:
            p = min(exhausted)
            last = last_of(history[p])
            assert last is not None
            fail(
                plan, view.active,
                f"Job failed because it has been retried too many times: partition {p} failed {failures(p)} "
                f"times (retry attempts {policy.attempts}); last: {describe_end(last)}",
                {"IsError": "true", "Hint": "fix what the executions' errors say, or raise Meta retry.attempts"},
            )
            return plan

    # Backoff: a partition tried before may be due later; it then gets an evaluation at that time.
    due_later: dict[int, int] = {}
    for p, tried in history.items():
        last = last_of(tried)
        assert last is not None
        streak = recent_ends(tried, snap.now_ns) if service else failures(p)
        due = ended_at(last) + policy.delay_ns(streak) if last.id not in lost_ids else snap.now_ns
        if due > snap.now_ns:
            due_later[p] = due
    to_place_count = missing_count - len(due_later)
    if to_place_count <= 0:
        _wait_for(plan, snap, due_later)
        mark_running(plan, bool(view.active))
        return plan

    # A service that ran is not failed for a replica with nowhere to go now (a drained or lost node): it
    # waits for one, Running, as Bacalhau's queue would not (it fails the job after QueueTimeout).
    under_way = service and job.state.state_type is JobStateType.Running
    # Retries first (they waited), then untried partitions in order; enumerated only as far as the nodes
    # could take them (more than the fleet can never all be placed: Count is only a number here).
    retries = sorted(p for p in history if p not in due_later)
    untried = (p for p in itertools.count() if p not in placed and p not in history)
    placeable = min(to_place_count, len(snap.nodes))
    to_place = (retries + list(itertools.islice(untried, max(0, placeable - len(retries)))))[:placeable]
    avoid: dict[int, set[str]] = {}
    if policy.strategy is RetryStrategy.CLASSIFIED:
        for p in retries:
            failed_on = {e.node_id for e in history[p] if e.id not in lost_ids and failed_on_node(e)}
            if failed_on:
                avoid[p] = failed_on

    # Nodes running a partition now (not those this plan stops: lost, or moved off a drained node).
    busy = {e.node_id for e in view.active}
    if not service:
        busy |= {e.node_id for e in view.current if is_completed(e)}
    refused = refusals(view.current)
    avoided = set().union(*avoid.values()) if avoid else set()
    enough = max(CANDIDATES_PER_EVALUATION, 2 * placeable) + len(avoided)
    candidates, rejections = feasible(snap, exclude=busy, refused=refused, enough=enough)
    ranked = rank_nodes(candidates, spread=job_key(snap), held=snap.holdings.by_node)
    chosen, unplaced = _assign(to_place, ranked, avoid)
    if len(to_place) < to_place_count:
        return not_enough_nodes(
            plan, snap, wanted=to_place_count, found=len(candidates), rejections=rejections, active=view.active,
            keep_running=under_way,
        )
    if unplaced and any(p in history for p in unplaced):
        _fall_back_to_busy(snap, view, chosen, unplaced, avoid, busy, refused, set(history))
    if unplaced:
        for p in unplaced:
            for node_id in sorted(avoid.get(p, ())):
                rejections.append(NodeRejection(node_id, kind=RejectionKind.ALREADY_FAILED, detail=str(p)))
        found = len(to_place) - len(unplaced)
        return not_enough_nodes(
            plan, snap, wanted=to_place_count, found=found, rejections=rejections, active=view.active,
            keep_running=under_way, cause=_what_failed([last_of(history[p]) for p in unplaced if p in history]),
        )

    for p, node in chosen:
        previous = last_of(history[p]) if p in history else None
        note = ""
        if previous is not None:
            what = "replacing replica" if service else f"retry {failures(p) + 1} of {policy.attempts} of partition"
            note = f"{what} {p} after {describe_end(previous)}"
        new_execution(plan, snap, node, p, previous, make_id, note)
    if due_later:
        _wait_for(plan, snap, due_later)
    mark_running(plan, True, snap.reuse.refusal)  # an opted-in job that may not be reused says why
    return plan


def _assign(
    partitions: list[int], ranked: list[NodeState], avoid: dict[int, set[str]]
) -> tuple[list[tuple[int, NodeState]], list[int]]:
    """Give each partition the best unused node it does not avoid. O(partitions + nodes) when nothing
    is avoided; a partition with nodes to avoid scans past them."""
    used: set[str] = set()
    chosen: list[tuple[int, NodeState]] = []
    unplaced: list[int] = []
    cursor = 0
    for p in partitions:
        skip = avoid.get(p)
        if not skip:
            while cursor < len(ranked) and ranked[cursor].info.node_id in used:
                cursor += 1
            node = ranked[cursor] if cursor < len(ranked) else None
        else:
            node = next((n for n in ranked if n.info.node_id not in used and n.info.node_id not in skip), None)
        if node is None:
            unplaced.append(p)
            continue
        used.add(node.info.node_id)
        chosen.append((p, node))
    return chosen, unplaced


def _fall_back_to_busy(
    snap: Snapshot,
    view: JobView,
    chosen: list[tuple[int, NodeState]],
    unplaced: list[int],
    avoid: dict[int, set[str]],
    busy: set[str],
    refused: dict[str, str],
    retried: set[int],
) -> None:
    """Distinct nodes "when possible": a retry no fresh node can take may go to a node that already ran
    (first) or runs (then) another partition of the job, never one that failed this partition, refused
    the job or is drained. Looks only at those nodes, not at the fleet."""
    used = {node.info.node_id for _, node in chosen}
    running = {e.node_id for e in view.active}
    spare = [
        snap.node_by_id[node_id] for node_id in sorted(busy)
        if node_id in snap.node_by_id and node_id not in used and node_id not in refused
        and node_id not in snap.draining and node_id not in snap.cordoned
        and rejection(snap.job, snap.node_by_id[node_id], snap.task_resources) is None
    ]
    # A node whose partition is done is idle for this job: better than one still running one of it.
    ranked = sorted(
        rank_nodes(spare, spread=job_key(snap), held=snap.holdings.by_node), key=lambda n: n.info.node_id in running
    )
    for p in [p for p in unplaced if p in retried]:
        node = next((n for n in ranked if n.info.node_id not in avoid.get(p, ())), None)
        if node is None:
            continue
        ranked.remove(node)
        chosen.append((p, node))
        unplaced.remove(p)


def _what_failed(failed: list[Execution | None]) -> str:
    """For a retry with nowhere to go: what its last attempt failed on, which is what the user can act
    on ("1 node already failed partition 0" alone hides it). Empty when nothing was tried."""
    tried = [e for e in failed if e is not None]
    if not tried:
        return ""
    last = max(tried, key=lambda e: (e.create_time, e.id))
    return f"last attempt at partition {last.partition_index}: {describe_end(last)}"


def _wait_for(plan: Plan, snap: Snapshot, due_later: dict[int, int]) -> None:
    """An evaluation when the earliest backed-off partition is due."""
    due = min(due_later.values())
    plan.new_evaluations.append(delayed_evaluation(snap.job, snap, due, EvaluationTrigger.ExecFailure))
    waiting = ", ".join(str(p) for p in sorted(due_later)[:10])
    plan.comment = f"partition(s) {waiting} retried in {(due - snap.now_ns) / 1e9:.1f}s (backoff)"
