"""Why nodes could not take a job, as the API carries it: reasons grouped by kind, with counts.

The scheduler groups its per-node rejections (orchestrator/selection/rejections.py) and stores the
groups JSON-encoded under `Details["NodeRejections"]` of the Queued or Failed job state it sets, and of
that state change's history event. Details is map[string]string on the wire, as in Bacalhau, so the
groups travel as one string value and a Go client still reads the job. `bacalhau job describe`
decodes them (`rejection_groups`) into its "Why not scheduled" section and its `NotScheduled` list.

    [{"Kind": "ConstraintNotMatched", "Reason": "lacks label zone=eu", "Detail": "zone=eu",
      "Count": 3, "Nodes": ["n-1", "n-2", "n-3"]},
     {"Kind": "NotEnoughMemory", "Reason": "has too little memory (need 8.0 GB, largest offers 4.0 GB)",
      "Detail": "memory", "Count": 2, "Nodes": [...], "Need": {"Memory": 8000000000},
      "LargestOffered": {"Memory": 4000000000}}]
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any, Final

from pydantic import Field

from bacalhau.models.fields import NoneList
from bacalhau.models.wire import WireModel

# The job state (and history event) detail holding the JSON list of RejectionGroup.
DETAIL_NODE_REJECTIONS: Final = "NodeRejections"


class RejectionKind(enum.StrEnum):
    """Why a node cannot run a job, as a category to count by. The value is the wire name."""

    NOT_APPROVED = "NotApproved"  # Detail: the membership (PENDING or REJECTED)
    DISCONNECTED = "Disconnected"
    NO_COMPUTE = "NoCompute"
    ENGINE_UNSUPPORTED = "EngineUnsupported"  # Detail: the engine type
    PUBLISHER_UNSUPPORTED = "PublisherUnsupported"  # Detail: the publisher type
    INPUT_SOURCE_UNSUPPORTED = "InputSourceUnsupported"  # Detail: the storage source type
    CONSTRAINT_NOT_MATCHED = "ConstraintNotMatched"  # Detail: the constraint, `zone=eu`, `zone in (eu,us)`
    NOT_ENOUGH_CPU = "NotEnoughCPU"
    NOT_ENOUGH_MEMORY = "NotEnoughMemory"
    NOT_ENOUGH_DISK = "NotEnoughDisk"
    NOT_ENOUGH_GPU = "NotEnoughGPU"
    BID_REJECTED = "BidRejected"  # Detail: the node's message
    ALREADY_RUNS_JOB = "AlreadyRunsJob"
    ALREADY_FAILED = "AlreadyFailed"  # Detail: the partition it failed (a retry avoids the node), or ""
    SHUTTING_DOWN = "ShuttingDown"
    CORDONED = "Cordoned"  # drained by an operator: no new work until uncordoned
    OTHER = "Other"  # Detail: free text

    @property
    def is_resource(self) -> bool:
        """True for the kinds that say a resource falls short (they carry Need and LargestOffered)."""
        return self in RESOURCE_KINDS


# In the order a resource shortfall is named (`too little CPU and memory`).
RESOURCE_KINDS: Final = (
    RejectionKind.NOT_ENOUGH_CPU,
    RejectionKind.NOT_ENOUGH_MEMORY,
    RejectionKind.NOT_ENOUGH_DISK,
    RejectionKind.NOT_ENOUGH_GPU,
)


class RejectionGroup(WireModel):
    """Nodes rejected for the same reason: how many, a few of their IDs, and the reason in words.

    Kind stays a plain string: a newer server may send a kind this client does not know, and the
    group is still worth showing (it only labels the reason, no decision depends on it here).
    """

    kind: str = Field(RejectionKind.OTHER.value, alias="Kind")
    reason: str = Field("", alias="Reason")
    detail: str = Field("", alias="Detail")
    count: int = Field(0, alias="Count")
    # At most a few IDs (MAX_NODES_PER_GROUP in the scheduler): examples, not the full list.
    nodes: NoneList[str] = Field(default_factory=list, alias="Nodes")
    # Resource groups only, keyed CPU (cores), Memory and Disk (bytes), GPU (count): what the job needs
    # and the most any node of the group offers, for each resource that falls short.
    need: dict[str, int | float] = Field(default_factory=dict, alias="Need")
    largest_offered: dict[str, int | float] = Field(default_factory=dict, alias="LargestOffered")

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict; Need and LargestOffered only when there are figures to give."""
        wire = super().to_wire()
        for key in ("Need", "LargestOffered"):
            if not wire[key]:
                del wire[key]
        return wire


def rejection_groups(details: Mapping[str, str]) -> list[RejectionGroup]:
    """The groups stored under DETAIL_NODE_REJECTIONS in `details`; [] when absent or unreadable.

    Unreadable (another server's format, a hand-edited store) is not an error: the reasons are an aid
    to reading the job, and the job's message still says why it waits.
    """
    raw = details.get(DETAIL_NODE_REJECTIONS)
    if not raw:
        return []
    try:
        items = json.loads(raw)
        if not isinstance(items, list):
            return []
        return [RejectionGroup.model_validate(item) for item in items]
    except ValueError:  # json.JSONDecodeError and pydantic.ValidationError are both ValueErrors
        return []
