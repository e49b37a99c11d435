"""The scheduler: a pure function of (evaluation, snapshot) -> Plan, by job type.

    job_state.begin: versions, terminal job, limits, lost nodes, drained nodes, the job's own failures
        │
        ├─ batch, service ──> partitioned.schedule_partitioned   (Count partitions on distinct nodes)
        └─ ops, daemon ─────> per_node.schedule_per_node         (one execution on every matching node)
"""

from __future__ import annotations

from bacalhau.models import constants as c
from bacalhau.models.evaluation import Evaluation
from bacalhau.orchestrator.scheduler.job_state import begin
from bacalhau.orchestrator.scheduler.partitioned import schedule_partitioned
from bacalhau.orchestrator.scheduler.per_node import schedule_per_node
from bacalhau.orchestrator.scheduler.placement import IdFactory, new_id
from bacalhau.orchestrator.scheduler.plan import Plan, Snapshot

_PER_NODE = frozenset({c.JOB_TYPE_OPS, c.JOB_TYPE_DAEMON})


def schedule(evaluation: Evaluation, snap: Snapshot, make_id: IdFactory = new_id) -> Plan:
    """Decide what should happen to the job of `evaluation`, given `snap`."""
    plan = Plan(evaluation=evaluation, job=snap.job)
    view = begin(snap, plan)
    if view is None:
        return plan
    if snap.job.type in _PER_NODE:
        return schedule_per_node(plan, snap, view, make_id)
    return schedule_partitioned(plan, snap, view, make_id)
