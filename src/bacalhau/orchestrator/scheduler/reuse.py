"""The result cache's two moments in a batch job's scheduling (orchestrator/result_reuse.py has the rules).

    fresh job, an identical one completed  ->  a Completed execution copied from that one, job Completed
    job completes, it had a fingerprint    ->  remember its completed execution for the next identical job
"""

from __future__ import annotations

from bacalhau.models.execution import DesiredState, Execution, ExecutionState
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.result_reuse import DETAIL_REUSED_FROM
from bacalhau.orchestrator.scheduler.placement import IdFactory
from bacalhau.orchestrator.scheduler.plan import JobTransition, Plan, Snapshot


def reuse_result(plan: Plan, snap: Snapshot, current: list[Execution], make_id: IdFactory) -> bool:
    """Complete a fresh job with a copy of the identical job's result; True when it did."""
    source = snap.reusable
    if source is None or current or not snap.reuse.fingerprint:
        return False
    job = snap.job
    reason = f"result reused from execution {source.id} of job {source.job_id} (Meta results.reuse)"
    execution = source.model_copy(
        update={
            "id": make_id("e-"),
            "namespace": job.namespace,
            "eval_id": plan.evaluation.id,
            "name": job.name,
            "job_id": job.id,
            "job": job,
            "job_version": job.version,
            "desired_state": DesiredState(StateType=ExecutionDesiredStateType.Stopped, Message=reason),
            "compute_state": ExecutionState(
                StateType=ExecutionStateType.Completed, Message=reason, Details={DETAIL_REUSED_FROM: source.id}
            ),
            "previous_execution": "",
            "next_execution": "",
            "followup_eval_id": "",
            "partition_index": 0,
            "revision": 0,
            "create_time": snap.now_ns,
            "modify_time": snap.now_ns,
        },
        deep=True,
    )
    plan.reused_executions.append(execution)
    plan.notes[execution.id] = reason
    plan.job_transition = JobTransition(JobStateType.Completed, reason)
    plan.comment = reason
    return True


def remember_result(plan: Plan, snap: Snapshot, completed: list[Execution]) -> None:
    """The job is completing: its result becomes the one identical jobs reuse (if it may be reused, and
    is not itself a reused one: the original stays the source)."""
    if not snap.reuse.fingerprint or not completed:
        return
    execution = min(completed, key=lambda e: (e.partition_index, e.modify_time, e.id))
    source = execution.compute_state.details.get(DETAIL_REUSED_FROM, "")
    if not source:
        plan.remember_result = (snap.reuse.fingerprint, execution.id)
