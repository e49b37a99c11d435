"""Results retention: what executions leave on the compute node's disk is removed once they ended
longer ago than `Compute.Results.Retention` (default 168h; 0 keeps everything).

What it removes, per execution ID (the execution store says whether and when each one ended)::

    <DataDir>/compute/results/<id>/            stdout, stderr, exitCode, result folders (runner)
    <DataDir>/compute/published/<id>.tar.gz    the local publisher's archive of those results
    the IPFS pin of its published CID          unless an execution still kept published the same CID
                                               (embedded repo: the blocks go too; publishers/ipfs.py)
    its record in <DataDir>/compute/executions.db   after its pin is released (expired_records.py)

    every sweep_interval_s:
      list both folders (a worker thread) -> ask the store about the IDs found
        active (queued, running, publishing)            -> kept, whatever its age
        ended at T, T <= now - retention                -> removed
        ended more recently                             -> kept
        unknown to the store (a store deleted by hand)  -> removed once its mtime is older than retention
      then the execution store: records of executions ended at T <= now - retention, oldest first,
        a bounded number per sweep -> release their pins -> delete the records
      -> remember what is kept (count, bytes, IPFS pins, records; records pruned so far): `kept()`,
         shown by `bacalhau agent debug` (Results)

An execution's folder is written only while it is active, and every active execution is in the store
before its folder exists, so a sweep never removes results something is still writing. A `job get` of a
local result after the sweep answers 404 from the publisher; `job logs` of it finds no output.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bacalhau.compute.expired_records import PruneReport, prune_expired_records
from bacalhau.compute.publishers.base import PinningPublisher
from bacalhau.compute.store import ExecutionStore
from bacalhau.config.types import BacalhauConfig

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIX = ".tar.gz"
# A sweep looks at a folder listing, so it may run often; once an hour is soon enough for a retention
# counted in days, and a short retention (tests, small disks) is swept at a tenth of it.
MAX_SWEEP_INTERVAL_S = 3600.0
MIN_SWEEP_INTERVAL_S = 1.0


@dataclass(frozen=True)
class KeptResults:
    """What the node keeps: executions with results folders or archives, and their size on disk; the
    distinct CIDs its records say it published to IPFS (pinned while kept); its execution records, and
    how many records retention has pruned so far (ever: the store counts them)."""

    results_count: int = 0
    results_bytes: int = 0
    published_count: int = 0
    published_bytes: int = 0
    ipfs_pins_count: int = 0
    records_count: int = 0
    records_pruned: int = 0

    def to_wire(self) -> dict[str, int]:
        """As an `agent debug` section would show it."""
        return {
            "ResultsCount": self.results_count,
            "ResultsBytes": self.results_bytes,
            "PublishedCount": self.published_count,
            "PublishedBytes": self.published_bytes,
            "IpfsPinsCount": self.ipfs_pins_count,
            "RecordsCount": self.records_count,
            "RecordsPruned": self.records_pruned,
        }


@dataclass(frozen=True)
class SweepReport:
    """One sweep: how many folder entries and bytes it removed, what it did to the execution store (and
    IPFS pins), and what it kept."""

    removed_count: int
    removed_bytes: int
    kept: KeptResults
    records: PruneReport = field(default_factory=PruneReport)


@dataclass(frozen=True)
class _Entry:
    path: Path
    execution_id: str
    mtime_s: float
    size_bytes: int


class ResultsRetention:
    """Sweeps old results off the compute node's disk, in one task it owns (start/stop)."""

    def __init__(
        self,
        *,
        store: ExecutionStore,
        results_dir: Path,
        published_dir: Path,
        retention_s: float,
        pins: Sequence[PinningPublisher] = (),
        sweep_interval_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` gives wall-clock seconds, as the store's times are (Unix ns). retention_s 0: keep all.
        `pins`: the publishers whose pins of expired results are released (the registry's)."""
        self._store = store
        self._pins = list(pins)
        self._results_dir = results_dir
        self._published_dir = published_dir
        self.retention_s = retention_s
        self.sweep_interval_s = sweep_interval_s or min(
            MAX_SWEEP_INTERVAL_S, max(MIN_SWEEP_INTERVAL_S, retention_s / 10)
        )
        self._clock = clock
        self._kept = KeptResults()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(
        cls, config: BacalhauConfig, *, store: ExecutionStore, pins: Sequence[PinningPublisher] = ()
    ) -> ResultsRetention:
        """The sweeper of a compute node: its DataDir's folders and Compute.Results.Retention."""
        compute_dir = Path(config.data_dir) / "compute"
        return cls(
            store=store,
            results_dir=compute_dir / "results",
            published_dir=compute_dir / "published",
            retention_s=config.compute.results.retention_s,
            pins=pins,
        )

    def kept(self) -> KeptResults:
        """What the last sweep left on disk (zeros before the first one)."""
        return self._kept

    def start(self) -> None:
        """Start sweeping (the first sweep at once). Idempotent; nothing at all when retention is 0."""
        if self._task is None and self.retention_s > 0:
            self._task = asyncio.create_task(self._loop(), name="compute-results-retention")

    async def stop(self) -> None:
        """Stop sweeping; a sweep in progress is abandoned between two removals. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def sweep(self) -> SweepReport:
        """Remove what has expired now; return what was removed and what is kept."""
        entries = await asyncio.to_thread(self._list)
        ended = self._store.end_times({e.execution_id for e in entries})
        now_s = self._clock()
        cutoff_s = now_s - self.retention_s
        expired: list[_Entry] = []
        kept: list[_Entry] = []
        for entry in entries:
            if entry.execution_id in ended:
                end_ns = ended[entry.execution_id]
                gone = end_ns is not None and end_ns / 1e9 <= cutoff_s
            else:
                gone = entry.mtime_s <= cutoff_s
            (expired if gone else kept).append(entry)
        await asyncio.to_thread(_remove, expired)
        records = await prune_expired_records(self._store, self._pins, cutoff_ns=int(cutoff_s * 1e9))
        results = [e for e in kept if e.path.parent == self._results_dir]
        published = [e for e in kept if e.path.parent == self._published_dir]
        self._kept = KeptResults(
            results_count=len(results),
            results_bytes=sum(e.size_bytes for e in results),
            published_count=len(published),
            published_bytes=sum(e.size_bytes for e in published),
            ipfs_pins_count=self._store.published_cid_count(),
            records_count=self._store.record_count(),
            records_pruned=self._store.pruned_count(),
        )
        return SweepReport(
            removed_count=len(expired),
            removed_bytes=sum(e.size_bytes for e in expired),
            kept=self._kept,
            records=records,
        )

    async def _loop(self) -> None:
        while True:
            try:
                report = await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # a full disk or a closed store must not end retention for good
                logger.warning("results retention: the sweep failed; trying again later", exc_info=True)
            else:
                records = report.records
                if report.removed_count or records.pruned or records.unpinned:
                    logger.info(
                        "results retention: removed %d entries (%d bytes), %d IPFS pins (%d bytes) and %d"
                        " execution records older than %gs; kept %d results folders and %d archives",
                        report.removed_count,
                        report.removed_bytes,
                        records.unpinned,
                        records.freed_bytes,
                        records.pruned,
                        self.retention_s,
                        report.kept.results_count,
                        report.kept.published_count,
                    )
                if records.pending:
                    logger.warning(
                        "results retention: kept %d expired execution records whose IPFS pins could not be"
                        " released; trying again at the next sweep",
                        records.pending,
                    )
            await asyncio.sleep(self.sweep_interval_s)

    def _list(self) -> list[_Entry]:
        entries: list[_Entry] = []
        for folder, is_archive in ((self._results_dir, False), (self._published_dir, True)):
            try:
                children = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for child in children:
                name = child.name
                if is_archive:
                    # `.<id>.tar.gz.<hex>.tmp`: an archive being written; only its age tells (no ID in the store).
                    if name.startswith(".") and name.endswith(".tmp"):
                        execution_id = name
                    elif name.endswith(ARCHIVE_SUFFIX):
                        execution_id = name[: -len(ARCHIVE_SUFFIX)]
                    else:
                        continue
                else:
                    execution_id = name
                try:
                    stat = child.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                path = Path(child.path)
                size = _tree_bytes(path) if child.is_dir(follow_symlinks=False) else stat.st_size
                entries.append(_Entry(path, execution_id, stat.st_mtime, size))
        return entries


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _remove(entries: list[_Entry]) -> None:
    for entry in entries:
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            entry.path.unlink(missing_ok=True)
