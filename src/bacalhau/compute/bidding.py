"""Should this node take this execution, and if not, why not.

A pure decision over the execution, the node's plugins and its maximum capacity. Being busy right now
is never a reason to refuse: an execution that fits the node's capacity waits in the queue instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from bacalhau.compute.capacity import execution_resources
from bacalhau.compute.registry import PluginRegistry
from bacalhau.models.errors import BacalhauError
from bacalhau.models.execution import Execution
from bacalhau.models.resources import Resources


@dataclass(frozen=True)
class BidDecision:
    """Accept, or reject with a reason the user will read in the job's history."""

    accepted: bool
    reason: str = ""
    # What the execution will hold while it runs (known only when accepted).
    resources: Resources | None = None


def decide_bid(execution: Execution, *, registry: PluginRegistry, max_capacity: Resources) -> BidDecision:
    """Check plugin support and params, then that the request fits the node's maximum capacity."""
    job = execution.job
    if job is None or not job.tasks:
        return BidDecision(False, "the execution carries no job task")
    task = job.task
    try:
        executor = registry.executor(task.engine.type)
        publisher = registry.publisher(task.publisher.type)
        storages = [(registry.storage(source.source.type), source) for source in task.input_sources]
        executor.validate(task.engine, network=task.network)
        publisher.validate(task.publisher)
        for storage, source in storages:
            storage.validate(source)
    except BacalhauError as exc:
        return BidDecision(False, exc.message)
    except Exception as exc:  # a plugin bug: refuse this execution, keep serving the others
        return BidDecision(False, f"this node could not check the job: {exc}")
    try:
        needed = execution_resources(execution)
    except ValueError as exc:
        return BidDecision(False, f"invalid resources: {exc}")
    if not needed.fits_in(max_capacity):
        return BidDecision(
            False, f"job requires {needed.describe()} but this node's capacity is {max_capacity.describe()}"
        )
    return BidDecision(True, resources=needed)
