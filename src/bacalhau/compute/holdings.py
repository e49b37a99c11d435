"""What input data this compute node holds, reported to the orchestrator so jobs come to their data.

    sources (HoldsData)                        HoldingsReporter                    orchestrator
    ─ input cache: url / s3 entries  ─┐   every `interval_s`: gather, order    NodeInfo.ComputeNodeInfo
    ─ local: allow-listed folders     ├──► by last use, keep the newest 512, ──► .DataHoldings ──► ranks
    ─ ipfs: CIDs this node fetched   ─┘   changed? -> on_change (node info)     nodes by bytes held

Each source answers cheaply from what it already knows (the cache's index; a folder scan redone at most
every minute and bounded in files; CIDs it fetched, checked against the repo at most every minute), so
a report costs a small SQLite read per second. A change is sent with the node's info at once (the link
compares it, transport.info_changes.static_key); the cache's hit counters travel with every info update but do
not by themselves cause one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bacalhau.models.data_holdings import MAX_REPORTED_ENTRIES, DataHoldings, HeldData, InputCacheSummary

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class HeldItem:
    """One piece of data a source holds: its locality key, size in bytes, and last use (epoch seconds)."""

    key: str
    size: int
    last_used: float


@runtime_checkable
class HoldsData(Protocol):
    """A plugin that keeps input data on the node and can say which, cheaply (see the module doc)."""

    def kept_kinds(self) -> list[str]:
        """The key kinds whose inputs it keeps after staging them (e.g. url, s3, ipfs); [] if none."""
        ...

    async def held(self) -> list[HeldItem]:
        """What it holds now. Never raises: a source that cannot tell reports nothing (and logs why)."""
        ...


@runtime_checkable
class CacheStatistics(Protocol):
    """A plugin that can summarise an input cache for node info (the InputCache)."""

    def summary(self) -> InputCacheSummary:
        """Size, entries and hit counts now."""
        ...


class HoldingsReporter:
    """Gathers the sources' holdings into one bounded DataHoldings and says when it changed."""

    def __init__(
        self,
        sources: Iterable[object],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        max_entries: int = MAX_REPORTED_ENTRIES,
    ) -> None:
        """`sources`: any plugins; those that are HoldsData are asked (each once), a CacheStatistics one
        gives the InputCache summary."""
        unique = list({id(s): s for s in sources}.values())
        self._sources = [s for s in unique if isinstance(s, HoldsData)]
        self._cache = next((s for s in unique if isinstance(s, CacheStatistics)), None)
        self._interval_s = interval_s
        self._max_entries = max_entries
        self._current = DataHoldings(keeps=sorted({k for s in self._sources for k in s.kept_kinds()}))
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (synchronously) whenever what the node holds changes."""
        self._listeners.append(listener)

    def report(self) -> DataHoldings | None:
        """The latest holdings, with the input cache's counters as of now; None when nothing can be held."""
        if not self._sources:
            return None
        summary = self._cache.summary() if self._cache is not None else None
        return self._current.model_copy(update={"input_cache": summary})

    async def refresh(self) -> bool:
        """Ask every source again; True (and listeners told) when the holdings changed."""
        items: list[HeldItem] = []
        for source in self._sources:
            items.extend(await source.held())
        # One entry per key (two sources never share one, but a source may repeat itself), newest first.
        newest: dict[str, HeldItem] = {}
        for item in items:
            if item.key not in newest or item.last_used > newest[item.key].last_used:
                newest[item.key] = item
        ordered = sorted(newest.values(), key=lambda i: (-i.last_used, i.key))
        holdings = DataHoldings(
            keeps=self._current.keeps,
            entries=[HeldData(Key=i.key, Bytes=i.size) for i in ordered[: self._max_entries]],
            truncated=len(ordered) > self._max_entries,
            held_entries=len(ordered),
            held_bytes=sum(i.size for i in ordered),
        )
        if holdings.content_key() == self._current.content_key():
            return False
        self._current = holdings
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                logger.exception("a data holdings listener failed")
        return True

    async def start(self) -> None:
        """Take a first inventory, then refresh every `interval_s` until `stop`."""
        if self._task is not None or not self._sources:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="compute-data-holdings")

    async def stop(self) -> None:
        """End the refresh loop. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.refresh()
            except Exception:  # a broken source must not end the reports of the others
                logger.exception("could not take the node's data holdings")
