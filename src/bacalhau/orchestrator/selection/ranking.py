"""Ranking feasible nodes: the fewest queued executions first, then the most free CPU and memory.

Ties are broken by a hash of the job and the node: deterministic for one job (the scheduler stays a
pure function of its inputs) yet different from job to job. Breaking ties by node ID instead sent
every job of a burst to the same node: a node's capacity is only learned from its heartbeats, so
between two beats all candidates look alike and the first ID won every time.
"""

from __future__ import annotations

import zlib

from bacalhau.models.node import NodeState


def rank_nodes(nodes: list[NodeState], *, spread: str = "") -> list[NodeState]:
    """Best node first. `spread` (e.g. the job ID) decides among equally good nodes."""
    salt = spread.encode()

    def key(node: NodeState) -> tuple[int, float, int, int, str]:
        node_id = node.info.node_id
        tie = zlib.crc32(salt + node_id.encode())
        info = node.info.compute_node_info
        if info is None:
            return (1 << 30, 0.0, 0, tie, node_id)
        return (
            info.enqueued_executions,
            -info.available_capacity.cpu,
            -info.available_capacity.memory,
            tie,
            node_id,
        )

    return sorted(nodes, key=key)
