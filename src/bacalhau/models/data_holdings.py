"""What input data a compute node holds, as it reports it to the orchestrator (ours, not Bacalhau's).

Sent inside `ComputeNodeInfo.DataHoldings` with the node's info: a Go orchestrator ignores the field,
ours ranks nodes by the bytes of a job's inputs they hold (bacalhau/locality). Keys are
bacalhau.locality.keys' (hashes for URLs and S3 locations: no credential is ever in a report).
"""

from __future__ import annotations

from pydantic import Field

from bacalhau.models.fields import NoneList
from bacalhau.models.wire import WireModel

# Entries a node reports at most (its most recently used first), and the orchestrator reads at most:
# ~100 bytes each on the wire (a report stays under ~26 KB); the orchestrator's index costs ~250 bytes
# per (key, node) pair (measured, bench/scheduler_locality.py), so 1,000 full reports ~65 MB at worst.
MAX_REPORTED_ENTRIES = 256


class HeldData(WireModel):
    """One piece of data: its key and its size in bytes (0 when unknown)."""

    key: str = Field("", alias="Key")
    size: int = Field(0, ge=0, alias="Bytes")


class InputCacheSummary(WireModel):
    """The node's input cache, for `bacalhau node describe` (counts since the node started)."""

    size_bytes: int = Field(0, alias="SizeBytes")
    max_size_bytes: int = Field(0, alias="MaxSizeBytes")
    entries: int = Field(0, alias="Entries")
    hits: int = Field(0, alias="Hits")
    misses: int = Field(0, alias="Misses")
    # hits / (hits + misses), 0 before any staging.
    hit_rate: float = Field(0.0, alias="HitRate")


class DataHoldings(WireModel):
    """`Keeps`: the key kinds (url, s3, ipfs) whose data the node keeps after staging an input, so the
    orchestrator may expect it to hold an input it was just given (before its next report says so).
    `Entries`: what it holds now, most recently used first. `Truncated`: more than were sent."""

    keeps: NoneList[str] = Field(default_factory=list, alias="Keeps")
    entries: NoneList[HeldData] = Field(default_factory=list, alias="Entries")
    truncated: bool = Field(False, alias="Truncated")
    # What all entries add up to (the orchestrator keeps only these once it has indexed the entries:
    # node list/describe and the node store carry the summary, not 512 keys per node).
    held_entries: int = Field(0, alias="HeldEntries")
    held_bytes: int = Field(0, alias="HeldBytes")
    input_cache: InputCacheSummary | None = Field(None, alias="InputCache")

    def content_key(self) -> tuple[object, ...]:
        """What changes the orchestrator's placements (not the cache's counters): a change is sent at once."""
        # Order-insensitive: a cache hit reorders the entries (by last use) without changing what is held.
        return (tuple(sorted(self.keeps)), tuple(sorted((e.key, e.size) for e in self.entries)), self.truncated)


def summarised(holdings: DataHoldings) -> DataHoldings:
    """`holdings` without its entries (their count and bytes stay): what is shown and stored of a node."""
    return holdings.model_copy(update={"entries": []})
