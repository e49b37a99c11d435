"""How much of one job's input data each node holds: what the scheduler ranks by and explains with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from bacalhau.models.resources import format_bytes


class Held(NamedTuple):
    """On one node: how many of the job's inputs it holds, and their bytes (those of known size). A named
    tuple: one is made per holder per evaluation, and a tuple is the cheapest object to make."""

    inputs: int = 0
    size: int = 0


@dataclass(frozen=True)
class JobHoldings:
    """For one job: node ID -> what it holds (only nodes holding something, at most MAX_HOLDERS_PER_INPUT
    per input), how many inputs name data, and their total size as far as any node reported it (0 when
    no node did)."""

    by_node: Mapping[str, Held] = field(default_factory=dict)
    inputs: int = 0
    total_size: int = 0
    # The holders, most bytes held first (then most inputs): the order the scheduler tries them in.
    ranked: tuple[str, ...] = ()
    # The keys of the job's inputs (locality/keys.py), for the worker's expect() after a placement.
    keys: tuple[str, ...] = ()

    def describe(self, node_id: str) -> str:
        """For a placement's history line: "holds 3.1 GB of 3.2 GB of inputs" ('' when nothing is held)."""
        held = self.by_node.get(node_id)
        if held is None or held.inputs == 0:
            return ""
        if held.size > 0 and self.total_size > 0:
            return f"holds {format_bytes(held.size)} of {format_bytes(self.total_size)} of inputs"
        return f"holds {held.inputs} of {self.inputs} input(s)"


NO_HOLDINGS = JobHoldings()

