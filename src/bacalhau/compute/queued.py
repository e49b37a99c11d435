"""What a compute node keeps in memory of an execution waiting for capacity.

Only its IDs and the resources it will hold: the execution itself, with its whole job, waits in the
node's store and is read back when it starts, so the node's memory does not grow with its backlog (a
hybrid node given thousands of jobs at once queues them all: busy is never a reason to refuse a bid).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from bacalhau.models.execution import Execution
from bacalhau.models.resources import Resources


@dataclass(frozen=True)
class QueuedExecution:
    """A queued execution as the queue needs it."""

    execution_id: str
    job_id: str
    resources: Resources

    @classmethod
    def of(cls, execution: Execution, resources: Resources) -> QueuedExecution:
        """The queue entry of `execution`, holding `resources` once it starts."""
        return cls(execution.id, execution.job_id, resources)


def queued_resources(items: Iterable[QueuedExecution]) -> Resources:
    """What the queued executions will hold together (the node info's QueueCapacity)."""
    return functools.reduce(Resources.add, (item.resources for item in items), Resources())
