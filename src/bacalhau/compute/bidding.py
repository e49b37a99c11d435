"""Should this node take this execution, and if not, why not.

    decide_bid (pure): plugins support it, its params pass, it fits the node's maximum capacity
    decide: that, then JobAdmissionControl.Locality=local: every input already on this node (each
            storage's has_locally: nothing is downloaded to find out), else refused saying how many
            inputs would need downloading and which

Being busy right now is never a reason to refuse: an execution that fits the node's capacity waits in
the queue instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from bacalhau.compute.capacity import execution_resources
from bacalhau.compute.registry import PluginRegistry
from bacalhau.config.types import LOCALITY_LOCAL
from bacalhau.models.errors import BacalhauError
from bacalhau.models.execution import Execution
from bacalhau.models.job import InputSource
from bacalhau.models.printable import one_line
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


async def decide(
    execution: Execution, *, registry: PluginRegistry, max_capacity: Resources, locality: str
) -> BidDecision:
    """`decide_bid`, then the node's data locality (JobAdmissionControl.Locality)."""
    decision = decide_bid(execution, registry=registry, max_capacity=max_capacity)
    if not decision.accepted or locality != LOCALITY_LOCAL or execution.job is None:
        return decision
    sources = execution.job.task.input_sources
    missing = await missing_inputs(sources, registry)
    if not missing:
        return decision
    named = ", ".join(_describe(source) for source in missing[:3]) + (", ..." if len(missing) > 3 else "")
    return BidDecision(
        False,
        f"this node does not have all input data locally ({len(missing)} of {len(sources)} inputs require "
        f"downloading: {named}; JobAdmissionControl.Locality=local)",
    )


async def missing_inputs(sources: list[InputSource], registry: PluginRegistry) -> list[InputSource]:
    """The inputs that are not on this node already (an input its storage cannot tell about counts)."""
    missing = []
    for source in sources:
        try:
            local = await registry.storage(source.source.type).has_locally(source)
        except Exception:  # a plugin that cannot tell: not local, never a crash of the bid
            local = False
        if not local:
            missing.append(source)
    return missing


def _describe(source: InputSource) -> str:
    """`urlDownload https://host/x`, `ipfs Qm...`, `s3 bucket/key`: the input's type and what it names."""
    params = source.source.params
    what = next((str(params[k]) for k in ("URL", "CID", "SourcePath", "Key") if params.get(k)), "")
    if source.source.type.lower() == "s3" and params.get("Bucket"):
        what = f"{params['Bucket']}/{params.get('Key', '')}"
    return one_line(f"{source.source.type} {what}".strip(), max_chars=120)
