"""Executions this node ends for its own reasons, not the task's: what it tells the orchestrator.

Each is a failure the orchestrator may retry (here after a restart, or on another node), marked
DETAIL_NODE_LOST: the node lost the execution, it did not fail the task, so a retry may come back here.
A hand-back (the node stopped on purpose) is also marked DETAIL_HANDED_BACK, so it does not use up the
job's retries.
"""

from __future__ import annotations

from bacalhau.models import constants as c
from bacalhau.models.errors import ErrorCode
from bacalhau.transport.messages import ComputeError

RESTART_MESSAGE = "execution interrupted: the compute node restarted before it finished"
LOST_MESSAGE = "execution lost: the compute node restarted and its task (container) was gone, so its result is lost"
STOP_MESSAGE = "execution interrupted: the compute node stopped while it was running"
HANDED_BACK_MESSAGE = "execution handed back: the compute node is shutting down"


def retryable_details() -> dict[str, str]:
    """Details of a failure that is not the job's fault (a restart, a hand-back): run it again."""
    return {
        "ErrorCode": str(ErrorCode.ExecutionError),
        "Hint": "the execution can be retried on this or another node",
        "Retryable": "true",
        "FailsExecution": "true",
        c.DETAIL_NODE_LOST: "true",
    }


def interruption(execution_id: str, job_id: str, message: str, *, handed_back: bool = False) -> ComputeError:
    """The report of an execution this node ended (see the module docstring)."""
    details = retryable_details()
    if handed_back:
        details[c.DETAIL_HANDED_BACK] = "true"
    return ComputeError(execution_id=execution_id, job_id=job_id, message=message, details=details)
