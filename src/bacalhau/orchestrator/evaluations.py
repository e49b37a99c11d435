"""Creating evaluations: the requests to reconsider a job."""

from __future__ import annotations

import uuid

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.job import Job
from bacalhau.models.state import EvaluationStatus, EvaluationTrigger


def new_evaluation(job: Job, trigger: EvaluationTrigger, now_ns: int, *, wait_until_ns: int = 0) -> Evaluation:
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
