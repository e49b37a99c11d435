"""Feasibility: can this node run this job at all? Every "no" carries a reason a user can act on."""

from __future__ import annotations

from dataclasses import dataclass

from bacalhau.models.job import Job
from bacalhau.models.node import ConnectionStatus, Membership, NodeState
from bacalhau.models.resources import Resources, parse_bytes, parse_cpu, parse_gpu
from bacalhau.models.selector import matches_requirement


@dataclass(frozen=True)
class NodeRejection:
    node_id: str
    reason: str

    def __str__(self) -> str:
        return f"node {self.node_id}: {self.reason}"


def task_resources(job: Job) -> Resources:
    """The job's task resources as numbers (already validated, so parsing cannot fail here)."""
    r = job.task.resources
    return Resources(cpu=parse_cpu(r.cpu), memory=parse_bytes(r.memory), disk=parse_bytes(r.disk), gpu=parse_gpu(r.gpu))


def check_node(job: Job, node: NodeState, needed: Resources | None = None) -> str | None:
    """Return why `node` cannot run `job`, or None when it can.

    `needed` is `task_resources(job)` computed once by a caller that checks many nodes (parsing the
    job's resource strings per node was a quarter of the scheduler's time at 1,000 nodes).
    """
    if node.membership is not Membership.APPROVED:
        return f"node is {node.membership.value.lower()}, not approved"
    if node.connection_state.status is not ConnectionStatus.CONNECTED:
        return "node is disconnected"
    compute = node.info.compute_node_info
    if compute is None:
        return "node does not run compute"
    task = job.task
    reason = _supports("engine", task.engine.type, compute.execution_engines)
    if reason:
        return reason
    if task.publisher.type:
        reason = _supports("publisher", task.publisher.type, compute.publishers)
        if reason:
            return reason
    for src in task.input_sources:
        reason = _supports("input source", src.source.type, compute.storage_sources)
        if reason:
            return reason
    for req in job.constraints:
        if not matches_requirement(node.info.labels, req):
            return f"does not match constraint {req.key} {req.operator} {','.join(req.values)}".rstrip()
    needed = needed if needed is not None else task_resources(job)
    limit = compute.max_job_requirements if not compute.max_job_requirements.is_zero() else compute.max_capacity
    if not needed.fits_in(limit):
        return f"not enough capacity: job requires {needed.describe()} but the node offers at most {limit.describe()}"
    return None


def _supports(kind: str, name: str, supported: list[str]) -> str | None:
    if any(s.lower() == name.lower() for s in supported):
        return None
    return f"does not support {kind} {name!r} (supports: {', '.join(supported) or 'none'})"
