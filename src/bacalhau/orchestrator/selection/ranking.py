"""Ranking feasible nodes: data first, then the fewest queued executions, then the most free CPU and memory.

    1. a node with work queued (no free slot) after every node with a free one
    2. the most bytes of the job's inputs the node holds, then the most such inputs (sizes unknown)
    3. the fewest queued executions, the most free CPU, the most free memory
    4. a hash of the job and the node

Data comes before queue length and free capacity because moving data is what compute over data
avoids: a node that holds 3 GB of the job's inputs beats an idler one that would download them. But
not before a free slot: a node that holds the data but is backlogged would make the job wait for a
whole other job, and an unbounded burst would pile onto the one node holding its input; with (1) the
burst fills the holder, then spills over to nodes that download (and hold it from then on).

Ties are broken by a hash of the job and the node: deterministic for one job (the scheduler stays a
pure function of its inputs) yet different from job to job. Breaking ties by node ID instead sent
every job of a burst to the same node: a node's capacity is only learned from its heartbeats, so
between two beats all candidates look alike and the first ID won every time.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from bacalhau.locality.held import Held
from bacalhau.models.node import NodeState

_NOTHING = Held()


def rank_nodes(nodes: list[NodeState], *, spread: str = "", held: Mapping[str, Held] | None = None) -> list[NodeState]:
    """Best node first. `spread` (e.g. the job ID) decides among equally good nodes; `held` says what of
    the job's input data each node holds (absent: nothing)."""
    salt = spread.encode()
    holdings = held or {}

    def key(node: NodeState) -> tuple[bool, int, int, int, float, int, int, str]:
        node_id = node.info.node_id
        tie = zlib.crc32(salt + node_id.encode())
        info = node.info.compute_node_info
        if info is None:
            return (True, 0, 0, 1 << 30, 0.0, 0, tie, node_id)
        has = holdings.get(node_id, _NOTHING)
        # The queue as heartbeats report it (QueueUsedCapacity), or as the last node info counted it.
        backlogged = info.enqueued_executions > 0 or not info.queue_capacity.is_zero()
        return (
            backlogged,
            -has.size,
            -has.inputs,
            info.enqueued_executions,
            -info.available_capacity.cpu,
            -info.available_capacity.memory,
            tie,
            node_id,
        )

    return sorted(nodes, key=key)
