"""What changed in a compute node's info, and so whether its orchestrator must be told before the next check.

Live capacity and queue length go with every heartbeat; the rest (labels, engines, limits, the data the
node holds) is sent as soon as it changes; the input cache's counters only at the periodic check.
"""

from __future__ import annotations

from typing import Any

from bacalhau.models.node import NodeInfo


def static_key(info: NodeInfo) -> tuple[Any, ...]:
    """What Bacalhau's `HasStaticConfigChanged` compares (everything but live capacity and counts), and
    the data the node holds."""
    compute = info.compute_node_info
    return (
        tuple(sorted(info.labels.items())),
        info.node_type,
        tuple(info.supported_protocols),
        None if compute is None else (
            tuple(compute.execution_engines), tuple(compute.publishers), tuple(compute.storage_sources),
            compute.max_capacity.to_wire(), compute.max_job_requirements.to_wire(), compute.address,
            # Ours: the data the node holds (placement ranks by it), sent as soon as it changes.
            compute.data_holdings.content_key() if compute.data_holdings is not None else None,
        ),
    )


def counters_key(info: NodeInfo) -> object:
    """What changes without changing placements: the input cache's size and hit counts (ours)."""
    compute = info.compute_node_info
    holdings = compute.data_holdings if compute is not None else None
    cache = holdings.input_cache if holdings is not None else None
    return cache.to_wire() if cache is not None else None
