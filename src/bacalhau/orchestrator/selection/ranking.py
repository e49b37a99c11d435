"""Ranking feasible nodes: prefer the node with the most free capacity, then the fewest queued jobs."""

from __future__ import annotations

from bacalhau.models.node import NodeState


def rank_nodes(nodes: list[NodeState]) -> list[NodeState]:
    """Best node first; ties broken by node ID so the choice is deterministic."""

    def key(node: NodeState) -> tuple[int, float, int, str]:
        info = node.info.compute_node_info
        if info is None:
            return (1, 0.0, 0, node.info.node_id)
        return (
            info.enqueued_executions,
            -info.available_capacity.cpu,
            -info.available_capacity.memory,
            node.info.node_id,
        )

    return sorted(nodes, key=key)
