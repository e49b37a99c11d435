"""Expired execution records: what results retention does with the execution store.

Once an execution ended longer ago than the retention, its record goes, after what it published and
the node still keeps for it (IPFS pins) is let go of::

    store.ended_before(cutoff), BATCH at a time, up to MAX_BATCHES per sweep (the oldest first)
      -> each PinningPublisher.release(their PublishedResults,
                                       in_use = CIDs still named by a record not expiring now)
           its `pending` executions (their storage could not be reached) keep their records:
           the next sweep tries again
      -> store.delete_ended(the others), one short transaction per BATCH

Never an active execution (the store refuses to delete one, whatever it is given). Between batches the
event loop gets a turn: the store's calls run on it. What is left past MAX_BATCHES waits for the next
sweep, which starts again from the oldest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from bacalhau.compute.publishers.base import PinningPublisher
from bacalhau.compute.store import EndedRecord, ExecutionStore

BATCH = 500
MAX_BATCHES = 20


@dataclass(frozen=True)
class PruneReport:
    """What one prune did: records deleted, pins released (and the bytes that freed), records kept back
    because their pins could not be released."""

    pruned: int = 0
    unpinned: int = 0
    freed_bytes: int = 0
    pending: int = 0


async def prune_expired_records(
    store: ExecutionStore, pins: Sequence[PinningPublisher], *, cutoff_ns: int
) -> PruneReport:
    """Release the pins of, then delete, the records of executions that ended at or before `cutoff_ns`."""
    expired = await _expired(store, cutoff_ns)
    if not expired:
        return PruneReport()
    ids = [record.execution_id for record in expired]
    published = {r.execution_id: r.published_result for r in expired if r.published_result is not None}
    pending: set[str] = set()
    unpinned = freed = 0
    for publisher in pins:
        if not published:
            break
        released = await publisher.release(
            published, in_use=lambda cids: store.published_cids_in_use(cids, excluding=ids)
        )
        pending |= released.pending
        unpinned += released.unpinned
        freed += released.freed_bytes
    prunable = [execution_id for execution_id in ids if execution_id not in pending]
    pruned = 0
    for start in range(0, len(prunable), BATCH):
        if start:
            await asyncio.sleep(0)
        pruned += store.delete_ended(prunable[start : start + BATCH], cutoff_ns=cutoff_ns)
    return PruneReport(pruned=pruned, unpinned=unpinned, freed_bytes=freed, pending=len(pending))


async def _expired(store: ExecutionStore, cutoff_ns: int) -> list[EndedRecord]:
    found: list[EndedRecord] = []
    after: tuple[int, str] | None = None
    for _ in range(MAX_BATCHES):
        batch = store.ended_before(cutoff_ns, after=after, limit=BATCH)
        found.extend(batch)
        if len(batch) < BATCH:
            break
        after = (batch[-1].end_time_ns, batch[-1].execution_id)
        await asyncio.sleep(0)
    return found
