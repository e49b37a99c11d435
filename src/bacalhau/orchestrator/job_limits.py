"""Stored jobs beyond JobAdmissionControl.Limits: failed with the reason at start-up, never run.

Submit refuses such specs (models/validation.py). A job stored before the limits held, by an older
version, or written into the store directly is found when the orchestrator recovers:

    recover ─> job not terminal ─> limit_problems? ─no──> arm its timeout as usual
                                        │yes
                                        v
               Failed (message names each field, value, limit and key) + an evaluation that stops
               whatever still runs; its timer is never armed

The scheduler applies the same check at every evaluation, so a job that slips past this (limits lowered
while it runs) ends the same way at its next evaluation.
"""

from __future__ import annotations

from bacalhau.models.errors import ConflictError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.job import Job
from bacalhau.models.limits import JobLimits
from bacalhau.models.state import EvaluationTrigger, JobStateType
from bacalhau.models.validation import limit_problems, over_limits_message
from bacalhau.orchestrator.evaluations import new_evaluation
from bacalhau.orchestrator.events import job_state_event
from bacalhau.orchestrator.jobstore.base import JobStore

_ACTIVE = frozenset({JobStateType.Pending, JobStateType.Queued, JobStateType.Running})


async def fail_if_over_limits(store: JobStore, job: Job, limits: JobLimits, now_ns: int) -> Evaluation | None:
    """Fail `job` when a number of its spec is beyond `limits`; return the evaluation to enqueue (it stops
    the job's executions), or None when the job is within its limits or no longer active."""
    problems = limit_problems(job, limits)
    previous = job.state.state_type
    if not problems or previous not in _ACTIVE:
        return None
    message = over_limits_message(problems)
    details = {"IsError": "true", "Hint": "submit the job again within JobAdmissionControl.Limits"}
    evaluation = new_evaluation(job, EvaluationTrigger.JobCancel, now_ns)
    try:
        async with store.transaction():
            await store.update_job_state(
                job.id,
                JobStateType.Failed,
                message,
                expected=_ACTIVE,
                events=[job_state_event(job, previous, JobStateType.Failed, message, details)],
                details=details,
            )
            await store.create_evaluation(evaluation)
    except ConflictError:
        return None
    return evaluation
