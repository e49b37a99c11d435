"""Creating evaluations: the requests to reconsider a job."""

from __future__ import annotations

import uuid
from typing import Protocol

from bacalhau.models.errors import NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.state import EvaluationStatus, EvaluationTrigger
from bacalhau.orchestrator.jobstore.base import JobStore


class Evaluated(Protocol):
    """What an evaluation is made from: a Job, or a JobBrief when the job was not read whole."""

    @property
    def id(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def priority(self) -> int: ...

    @property
    def type(self) -> str: ...


def new_evaluation(job: Evaluated, trigger: EvaluationTrigger, now_ns: int, *, wait_until_ns: int = 0) -> Evaluation:
    """A pending evaluation of `job`. IDs are plain uuid4, as Bacalhau's submit endpoint makes them."""
    return Evaluation(
        ID=str(uuid.uuid4()),
        Namespace=job.namespace,
        JobID=job.id,
        TriggeredBy=trigger,
        Priority=job.priority,
        Type=job.type,
        Status=EvaluationStatus.Pending,
        WaitUntil=wait_until_ns,
        CreateTime=now_ns,
        ModifyTime=now_ns,
    )


async def evaluation_of(store: JobStore, job_id: str, trigger: EvaluationTrigger, now_ns: int) -> Evaluation:
    """A pending evaluation of the stored job `job_id`, read as a JobBrief (not parsed whole). Raises
    NotFoundError when no job has this ID."""
    job = await store.job_brief(job_id)
    if job is None:
        raise NotFoundError(f"job not found: {job_id}", component="JobStore")
    return new_evaluation(job, trigger, now_ns)
