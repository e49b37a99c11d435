"""What a compute node tells the orchestrator about itself: plugins, capacity, queue, labels.

Labels are the config's `Labels` plus Bacalhau's automatic `Architecture` and `Operating-System`
labels, spelled as Go's GOARCH/GOOS (`amd64`, `linux`, from `bacalhau.version`) so job constraints
written for Bacalhau match. A label set in the config wins over an automatic one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bacalhau.compute.store import ExecutionRecord
from bacalhau.models.data_holdings import DataHoldings
from bacalhau.models.node import NODE_TYPE_COMPUTE, PROTOCOL_NCL_V1, ComputeNodeInfo, NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.version import build_version

LABEL_ARCHITECTURE = "Architecture"
LABEL_OPERATING_SYSTEM = "Operating-System"


def node_labels(configured: Mapping[str, str]) -> dict[str, str]:
    """Automatic labels overlaid by the configured ones."""
    version = build_version()
    return {LABEL_ARCHITECTURE: version.goarch, LABEL_OPERATING_SYSTEM: version.goos, **configured}


def compute_node_info(
    *,
    node_id: str,
    labels: Mapping[str, str],
    engines: list[str],
    publishers: list[str],
    storages: list[str],
    max_capacity: Resources,
    available_capacity: Resources,
    queued_capacity: Resources,
    running: int,
    enqueued: int,
    data_holdings: DataHoldings | None = None,
) -> NodeInfo:
    """Assemble the NodeInfo of a compute node."""
    return NodeInfo(
        node_id=node_id,
        node_type=NODE_TYPE_COMPUTE,
        labels=node_labels(labels),
        supported_protocols=[PROTOCOL_NCL_V1],
        compute_node_info=ComputeNodeInfo(
            execution_engines=engines,
            publishers=publishers,
            storage_sources=storages,
            max_capacity=max_capacity,
            # Bacalhau's QueueUsedCapacity is serialised as QueueCapacity: what the queue holds.
            queue_capacity=queued_capacity,
            available_capacity=available_capacity,
            max_job_requirements=max_capacity,
            running_executions=running,
            enqueued_executions=enqueued,
            data_holdings=data_holdings,
        ),
        bacalhau_version=build_version(),
    )


def active_jobs(running: Iterable[ExecutionRecord]) -> list[dict[str, Any]]:
    """The `ActiveJobs` section of `agent debug`: one entry per running execution, as Bacalhau names it."""
    return [
        {
            "ExecutionID": record.execution_id,
            "JobID": record.job_id,
            "State": record.state.name,
            "AllocatedResources": record.execution.allocated_resources.to_wire(),
        }
        for record in running
    ]
