"""Feasibility: can this node run this job at all? Every "no" carries a reason a user can act on.

`rejection` says why as data (a kind to count by, see rejections.py). It runs over up to 1,000 nodes
per evaluation: an accepted node leaves nothing behind (no object outlives its check), a rejected one a
single NodeRejection holding references, whose text is only written if someone reads it.
"""

from __future__ import annotations

from bacalhau.models.job import Job
from bacalhau.models.node import ConnectionStatus, Membership, NodeState
from bacalhau.models.node_rejections import RejectionKind
from bacalhau.models.resources import Resources, parse_bytes, parse_cpu, parse_gpu
from bacalhau.models.selector import matches_requirement
from bacalhau.orchestrator.selection.rejections import NodeRejection, constraint_text, first_shortfall

__all__ = ["NodeRejection", "RejectionKind", "rejection", "task_resources"]


def task_resources(job: Job) -> Resources:
    """The job's task resources as numbers (already validated, so parsing cannot fail here)."""
    r = job.task.resources
    return Resources(cpu=parse_cpu(r.cpu), memory=parse_bytes(r.memory), disk=parse_bytes(r.disk), gpu=parse_gpu(r.gpu))


def rejection(job: Job, node: NodeState, needed: Resources | None = None) -> NodeRejection | None:
    """Why `node` cannot run `job` (the first check it fails), or None when it can.

    `needed` is `task_resources(job)` computed once by a caller that checks many nodes (parsing the
    job's resource strings per node was a quarter of the scheduler's time at 1,000 nodes).
    """
    node_id = node.info.node_id
    if node.membership is not Membership.APPROVED:
        return NodeRejection(node_id, kind=RejectionKind.NOT_APPROVED, detail=node.membership.value)
    if node.connection_state.status is not ConnectionStatus.CONNECTED:
        return NodeRejection(node_id, kind=RejectionKind.DISCONNECTED)
    compute = node.info.compute_node_info
    if compute is None:
        return NodeRejection(node_id, kind=RejectionKind.NO_COMPUTE)
    task = job.task
    if not _supports(task.engine.type, compute.execution_engines):
        return NodeRejection(node_id, kind=RejectionKind.ENGINE_UNSUPPORTED, detail=task.engine.type)
    if task.publisher.type and not _supports(task.publisher.type, compute.publishers):
        return NodeRejection(node_id, kind=RejectionKind.PUBLISHER_UNSUPPORTED, detail=task.publisher.type)
    for src in task.input_sources:
        if not _supports(src.source.type, compute.storage_sources):
            return NodeRejection(node_id, kind=RejectionKind.INPUT_SOURCE_UNSUPPORTED, detail=src.source.type)
    for req in job.constraints:
        if not matches_requirement(node.info.labels, req):
            return NodeRejection(node_id, kind=RejectionKind.CONSTRAINT_NOT_MATCHED, detail=constraint_text(req))
    needed = needed if needed is not None else task_resources(job)
    limit = compute.max_job_requirements if not compute.max_job_requirements.is_zero() else compute.max_capacity
    if not needed.fits_in(limit):
        # References, not copies: the group summary reads them only if the job is not placed.
        return NodeRejection(node_id, kind=first_shortfall(needed, limit), needed=needed, offered=limit)
    return None


def _supports(name: str, supported: list[str]) -> bool:
    if name in supported:  # the usual spelling: no lower-casing at all
        return True
    lowered = name.lower()  # once, not once per supported name
    return any(candidate.lower() == lowered for candidate in supported)
