"""Ops and daemon jobs: one execution on every matching node.

    ops:    every matching, connected, approved node runs the task once; the job is Completed when
            all have completed, Failed once one has failed for good (its fault, or out of attempts).
    daemon: every matching node, now and every node that joins or becomes eligible later (node-join
            evaluations), runs it for as long as the job runs; an execution that exits or fails is
            started again on its node after a backoff; the job never completes on its own, a node
            that leaves takes its execution with it, a drained node's execution is stopped.

    all feasible nodes (the whole fleet: each node is the point)
       for each node without a running execution of the job:
          never ran it            ─> new execution
          ops: completed there    ─> nothing (done)
          its last one ended      ─> retry on that same node (the work is the node's), once the
                                     backoff passed; ops: at most `attempts` per node
       ops: nothing running, nothing left ─> Completed (or Failed when a node failed for good)
"""

from __future__ import annotations

from collections import defaultdict

from bacalhau.models import constants as c
from bacalhau.models.execution import Execution
from bacalhau.models.state import EvaluationTrigger, JobStateType
from bacalhau.orchestrator.events import short_id
from bacalhau.orchestrator.scheduler.executions import (
    counts_as_attempt,
    describe_end,
    ended,
    ended_at,
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
    mark_running,
    new_execution,
    not_enough_nodes,
)
from bacalhau.orchestrator.scheduler.plan import JobTransition, Plan, Snapshot, StopExecution
from bacalhau.orchestrator.selection.feasibility import rejection
from bacalhau.orchestrator.selection.rejections import summarize, to_details


def schedule_per_node(plan: Plan, snap: Snapshot, view: JobView, make_id: IdFactory) -> Plan:
    """Ops and daemon jobs (see the module docstring), after job_state.begin."""
    job = snap.job
    daemon = job.type == c.JOB_TYPE_DAEMON
    policy = view.policy
    lost_ids = {e.id for e in view.lost}
    running_on = {e.node_id for e in view.active}
    by_node: defaultdict[str, list[Execution]] = defaultdict(list)
    for e in view.current:
        if ended(e) or e.id in lost_ids:
            by_node[e.node_id].append(e)

    def failures(node_id: str) -> int:
        return sum(1 for e in by_node[node_id] if e.id in lost_ids or counts_as_attempt(e))

    if not daemon:
        exhausted = sorted(n for n in by_node if n not in running_on and failures(n) >= policy.attempts)
        if exhausted:
            last = last_of(by_node[exhausted[0]])
            assert last is not None
            fail(
                plan, view.active,
                f"Job failed because it has been retried too many times: node {exhausted[0][:12]} failed it "
                f"{failures(exhausted[0])} times (retry attempts {policy.attempts}); last: {describe_end(last)}",
                {"IsError": "true", "Hint": "fix what the executions' errors say, or raise Meta retry.attempts"},
            )
            return plan

    if daemon and view.active:
        running_on = _stop_where_no_longer_matching(plan, snap, view)
    refused = refusals(view.current)
    candidates, rejections = feasible(snap, exclude=running_on, refused=refused)
    if not view.current and not candidates:
        if daemon:
            # A daemon waits for its nodes, however long: it runs on each matching node that joins.
            message = "no node matches yet; the job starts on every matching node that joins"
            if rejections:
                message += ": " + summarize(rejections)
            if job.state.state_type is JobStateType.Pending:
                plan.job_transition = JobTransition(JobStateType.Running, message, to_details(rejections))
            plan.comment = message
            return plan
        return not_enough_nodes(plan, snap, wanted=1, found=0, rejections=rejections)

    due_later: list[int] = []
    for node in candidates:
        node_id = node.info.node_id
        tried = by_node.get(node_id)
        if not tried:
            new_execution(plan, snap, node, 0, None, make_id)
            continue
        last = last_of(tried)
        assert last is not None
        if not daemon and any(is_completed(e) for e in tried):
            continue  # ops: done on this node
        streak = recent_ends(tried, snap.now_ns) if daemon else failures(node_id)
        due = snap.now_ns if last.id in lost_ids else ended_at(last) + policy.delay_ns(streak)
        if due > snap.now_ns:
            due_later.append(due)
            continue
        what = "restarting on its node" if daemon else f"retry {failures(node_id) + 1} of {policy.attempts} on its node"
        new_execution(plan, snap, node, 0, last, make_id, f"{what} after {describe_end(last)}")
    if due_later:
        plan.new_evaluations.append(delayed_evaluation(job, snap, min(due_later), EvaluationTrigger.ExecFailure))

    if plan.new_executions or view.active or due_later or daemon:
        mark_running(plan, bool(plan.new_executions or view.active or daemon))
        return plan
    # Ops with nothing running and nothing left to try: done, unless a node's last attempt failed and
    # cannot be tried again there (the node left): the job did not run everywhere it was meant to.
    unfinished = sorted(
        (last for last in (last_of(tried) for tried in by_node.values()) if last is not None and not is_completed(last)),
        key=lambda e: (e.create_time, e.id),
    )
    expected_back = snap.awaiting_reconnect | snap.draining
    if any(e.node_id in expected_back for e in unfinished):
        # Its node is stopping or restarting on purpose: the execution is tried there again on its return.
        plan.new_evaluations.append(
            delayed_evaluation(job, snap, snap.now_ns + snap.queue_backoff_ns, EvaluationTrigger.JobQueue)
        )
        plan.comment = "waiting for node(s) expected back to run the job again"
    elif unfinished:
        fail(plan, view.active, f"Job failed because one or more executions failed: {describe_end(unfinished[0])}",
             {"IsError": "true"})
    elif any(is_completed(e) for e in view.current):
        plan.job_transition = JobTransition(JobStateType.Completed, "")
    return plan


def _stop_where_no_longer_matching(plan: Plan, snap: Snapshot, view: JobView) -> set[str]:
    """A daemon follows its nodes: where a node's labels, engines or capacity changed so that the job no
    longer fits it, the execution there stops. Returns the nodes it keeps running on."""
    needed = snap.task_resources
    nodes = snap.node_by_id
    keep: list[Execution] = []
    for e in view.active:
        node = nodes.get(e.node_id)
        expected_back = e.node_id in snap.awaiting_reconnect or e.node_id in snap.draining  # not a mismatch
        why = rejection(snap.job, node, needed) if node is not None and not expected_back else None
        if why is None:
            keep.append(e)
            continue
        reason = f"Execution stopped because node {short_id(e.node_id)} no longer matches the job: {why.reason}"
        plan.stop_executions.append(StopExecution(e.id, reason, details={c.DETAIL_HANDED_BACK: "true"}))
    view.active = keep
    return {e.node_id for e in keep}
