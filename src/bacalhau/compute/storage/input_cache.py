"""A compute node's input cache: what `urlDownload` and `s3` inputs fetched, kept for the next staging.

Entries are keyed by the *identity* of a source (a URL; an endpoint, bucket, key, version and filter),
and each remembers the validator its content was fetched under. A staging claims its key, revalidates,
and either links the entry or downloads again:

    claim(key) ──► entry? ──no──────────────────────────────────────────┐
                     │yes                                               ▼
                     ▼                                       download into scratch/
           still valid? (URL: a conditional GET            (the provider's own code)
           answered 304, or the job's Checksum matches;               │
           S3: the HEAD / listing gives the same ETags)               ▼
              │yes            │no ──────────────────────────►  store(): fits and has a validator?
              ▼                                                  │yes                  │no
           hit(): link the entry's files into                    ▼                      ▼
           the staging folder (a copy across                 rename into entries/,   move into the
           filesystems); no body transferred                 index row, link it      staging folder

Layout under the cache root (`<DataDir>/compute/input-cache` unless InputSources.Cache.Path says):

    index.db           one row per complete entry (cache_index.py says why SQLite)
    entries/<id>/      an entry: the files exactly as a staging folder holds them, read-only (0444)
    scratch/<tmp>/     downloads in progress, emptied when the cache opens

Crash safety: a download becomes an entry by renaming its scratch folder into entries/ and only then
writing its row; eviction deletes the row before the folder. So a row always names a complete entry,
and at open the cache deletes what a crash left between the two steps (folders without rows, rows
without folders, scratch). A staging links the files, so a later eviction never pulls them from under
a running task (the inode lives on until the staging folder is removed).

Size: entries total at most `max_bytes`; adding one evicts the least recently staged first, never an
entry whose key is claimed (being staged, or waited for), and an input larger than `max_bytes` (or one
that cannot fit beside claimed entries) is staged without being cached.

Concurrency: one claim per key at a time (an asyncio lock per key, so one node process per cache): a
second execution staging the same source waits for the first, then finds its entry and revalidates it
instead of downloading it again. Hit counts are this process's (since the node started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bacalhau.compute.disk_usage import tree_size
from bacalhau.compute.holdings import HeldItem
from bacalhau.compute.storage.cache_index import CacheEntry, CacheIndex
from bacalhau.locality.keys import KIND_S3, KIND_URL
from bacalhau.models.data_holdings import MAX_REPORTED_ENTRIES, InputCacheSummary
from bacalhau.models.errors import StorageError

logger = logging.getLogger(__name__)

# Read-only for everyone: neither the task nor the node can change an entry through one of its links.
_ENTRY_FILE_MODE = 0o444
_HINT = "the input cache can be deleted safely (it is rebuilt as inputs are fetched), or disabled with InputSources.Cache.Enabled=false"


@dataclass(frozen=True)
class InputCacheStats:
    """What `agent debug` shows in its InputCache section. A hit is a staging that transferred no body."""

    path: str
    max_bytes: int
    size_bytes: int = 0
    entries: int = 0
    hits: int = 0
    misses: int = 0

    def to_wire(self) -> dict[str, Any]:
        """As the `InputCache` section of `/api/v1/agent/debug`."""
        stagings = self.hits + self.misses
        return {
            "Path": self.path,
            "MaxSizeBytes": self.max_bytes,
            "SizeBytes": self.size_bytes,
            "Entries": self.entries,
            "Hits": self.hits,
            "Misses": self.misses,
            "HitRate": round(self.hits / stagings, 4) if stagings else 0.0,
        }


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class InputCache:
    """Entries on disk plus their index; opened lazily at first use, closed by `close()`."""

    def __init__(self, *, root: Path, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        """`root` holds the cache; `max_bytes` bounds its entries (0: nothing is kept); `clock` gives the
        last-use times eviction orders by (wall clock seconds: they survive restarts)."""
        self.root = root
        self.max_bytes = max(0, max_bytes)
        self._clock = clock
        self._index: CacheIndex | None = None
        self._claims: dict[str, _KeyLock] = {}
        # Admissions one at a time: making room and adding must see the same totals.
        self._admitting = asyncio.Lock()
        self.hits = 0
        self.misses = 0

    def contains(self, key: str) -> bool:
        """True when an entry for `key` is indexed; no network, no revalidation. False if the cache fails."""
        try:
            with self._translated():
                return self._open().get(key) is not None
        except StorageError:
            return False

    @contextlib.asynccontextmanager
    async def claim(self, key: str, *, label: str) -> AsyncIterator[CacheClaim]:
        """Hold `key` (waiting for any other staging of it) and yield its current entry to revalidate,
        stage or replace. Scratch folders the block made and did not store are removed at its end."""
        slot = self._claims.setdefault(key, _KeyLock())
        slot.users += 1
        try:
            async with slot.lock:
                claim = CacheClaim(cache=self, key=key, label=label, entry=await self._present(key))
                try:
                    yield claim
                finally:
                    for folder in claim.scratch_folders:
                        await asyncio.to_thread(shutil.rmtree, folder, True)
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._claims[key]

    def stats(self) -> InputCacheStats:
        """Size, entries and hit counts now; zeros for what the index cannot tell. Never raises."""
        stats = InputCacheStats(path=str(self.root), max_bytes=self.max_bytes, hits=self.hits, misses=self.misses)
        try:
            with self._translated():
                count, size = self._open().totals()
        except StorageError as exc:
            logger.warning("input cache statistics unavailable: %s", exc.message)
            return stats
        return InputCacheStats(
            path=stats.path,
            max_bytes=self.max_bytes,
            size_bytes=size,
            entries=count,
            hits=self.hits,
            misses=self.misses,
        )

    def summary(self) -> InputCacheSummary:
        """The stats as node info carries them (`bacalhau node describe`)."""
        stats = self.stats()
        return InputCacheSummary(
            SizeBytes=stats.size_bytes, MaxSizeBytes=stats.max_bytes, Entries=stats.entries,
            Hits=stats.hits, Misses=stats.misses, HitRate=stats.to_wire()["HitRate"],
        )

    def kept_kinds(self) -> list[str]:
        """url and s3 inputs are kept (HoldsData), unless MaxSize leaves no room for any."""
        return [KIND_URL, KIND_S3] if self.max_bytes > 0 else []

    async def held(self) -> list[HeldItem]:
        """The newest entries (HoldsData): a read of the index, or nothing before the first staging made it."""
        if self._index is None and not (self.root / "index.db").exists():
            return []  # nothing was ever cached here: do not create the cache just to say so
        try:
            with self._translated():
                entries = self._open().newest(MAX_REPORTED_ENTRIES)
        except StorageError as exc:
            logger.warning("%s; reporting no cached inputs", exc.message)
            return []
        return [HeldItem(key=e.key, size=e.size_bytes, last_used=e.last_used) for e in entries]

    def close(self) -> None:
        """Close the index (reopened on next use). Idempotent."""
        if self._index is not None:
            self._index.close()
            self._index = None

    # --- for CacheClaim ----------------------------------------------------------------------------------

    def entry_dir(self, entry: CacheEntry) -> Path:
        """The folder holding `entry`'s files."""
        return self.root / "entries" / entry.entry_id

    def scratch_dir(self) -> Path:
        """Where downloads in progress go (same filesystem as the entries: storing is a rename)."""
        return self.root / "scratch"

    def touch(self, entry: CacheEntry) -> None:
        """Record a staging of `entry` now (the LRU order). A failing index is logged, not raised."""
        try:
            with self._translated():
                self._open().touch(entry.key, self._clock())
        except StorageError as exc:
            logger.warning("%s", exc.message)

    async def admit(
        self, *, key: str, label: str, validator: str, folder: Path, sha256: str, replacing: CacheEntry | None
    ) -> CacheEntry | None:
        """Make `folder` the entry of `key` if it fits (evicting least recently used entries of unclaimed
        keys); None, leaving `folder` alone, if it does not or if the cache fails (logged: a broken cache
        costs the hits, never the staging). The entry it replaces is deleted."""
        size = await asyncio.to_thread(tree_size, [folder])
        if self.max_bytes <= 0 or size > self.max_bytes:
            logger.debug(
                "not caching %s: %d bytes do not fit InputSources.Cache.MaxSize (%d)", label, size, self.max_bytes
            )
            return None
        async with self._admitting:
            try:
                room = await self._make_room(size, replacing=replacing)
            except StorageError as exc:
                logger.warning("%s; not caching %s", exc.message, label)
                return None
            if not room:
                logger.debug("not caching %s: the entries in use leave no room for %d bytes", label, size)
                return None
            entry = CacheEntry(
                key=key,
                label=label,
                validator=validator,
                entry_id=uuid.uuid4().hex,
                size_bytes=size,
                sha256=sha256,
                last_used=self._clock(),
            )
            try:
                await asyncio.to_thread(_seal, folder, self.entry_dir(entry))
                with self._translated():
                    self._open().put(entry)  # replaces the row of `replacing`: same key
            except (OSError, StorageError) as exc:
                logger.warning("input cache at %s: could not store %s: %s", self.root, label, exc)
                with contextlib.suppress(OSError):  # give the files back to the staging
                    await asyncio.to_thread(os.rename, self.entry_dir(entry), folder)
                return None
        if replacing is not None:
            await asyncio.to_thread(shutil.rmtree, self.entry_dir(replacing), True)
        return entry

    async def evict(self, entry: CacheEntry) -> None:
        """Delete `entry`: its row first, then its folder (a crash between leaves an orphan folder, which
        the next open removes, never a row without its files)."""
        with self._translated():
            self._open().remove(entry.entry_id)
        await asyncio.to_thread(shutil.rmtree, self.entry_dir(entry), True)

    # --- internals ---------------------------------------------------------------------------------------

    async def _present(self, key: str) -> CacheEntry | None:
        try:
            with self._translated():
                entry = self._open().get(key)
        except StorageError as exc:
            logger.warning("%s; staging without it", exc.message)
            return None
        if entry is not None and not await asyncio.to_thread(self.entry_dir(entry).is_dir):
            await self.evict(entry)  # someone removed its files: forget it
            return None
        return entry

    async def _make_room(self, size: int, *, replacing: CacheEntry | None) -> bool:
        with self._translated():
            index = self._open()
            _, total = index.totals()
            candidates = index.by_last_use()
        if replacing is not None:
            total -= replacing.size_bytes
        for entry in candidates:
            if total + size <= self.max_bytes:
                break
            if entry.key in self._claims:
                continue  # being staged (or about to be): never pulled from under a staging
            await self.evict(entry)
            total -= entry.size_bytes
        return total + size <= self.max_bytes

    def _open(self) -> CacheIndex:
        if self._index is None:
            index = CacheIndex(self.root / "index.db")
            try:
                _reconcile(index, self.root)
            except BaseException:
                index.close()
                raise
            self._index = index
        return self._index

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"input cache at {self.root} failed: {exc}", hint=_HINT) from exc


@dataclass
class CacheClaim:
    """One staging's hold on a key: its current `entry` (None: nothing cached) and what it may do with it."""

    cache: InputCache
    key: str
    label: str
    entry: CacheEntry | None
    scratch_folders: list[Path] = field(default_factory=list)

    async def scratch(self, fallback: Path) -> Path:
        """A new empty folder to download into; removed at the end of the claim unless stored. Made in
        the folder `fallback` (the staging folder) when the cache's own cannot be made."""
        try:
            folder = await asyncio.to_thread(_make_scratch, self.cache.scratch_dir())
        except OSError as exc:
            logger.warning("input cache at %s: %s; downloading %s without it", self.cache.root, exc, self.label)
            folder = await asyncio.to_thread(_make_scratch, fallback)
        self.scratch_folders.append(folder)
        return folder

    async def hit(self, dest: Path) -> None:
        """Stage the (revalidated) entry into the folder `dest`, counting a hit. Raises StorageError."""
        if self.entry is None:
            raise StorageError(f"input cache: no entry to stage for {self.label}")
        await self._link(self.entry, dest)
        self.cache.touch(self.entry)
        self.cache.hits += 1

    async def store(self, folder: Path, dest: Path, *, validator: str, sha256: str = "") -> bool:
        """Stage the files downloaded into `folder` into `dest`, keeping them as this key's entry when
        there is a `validator` to revalidate them by and they fit; count a miss. Returns whether they were
        cached. The entry the key had is stale either way: replaced, or dropped."""
        self.cache.misses += 1
        entry = None
        if validator:
            entry = await self.cache.admit(
                key=self.key, label=self.label, validator=validator, folder=folder, sha256=sha256, replacing=self.entry
            )
        if entry is None:
            if self.entry is not None:
                with contextlib.suppress(StorageError):  # a stale row left behind is revalidated next time
                    await self.cache.evict(self.entry)
            self.entry = None
            await asyncio.to_thread(_move_tree, folder, dest)
            return False
        self.entry = entry
        await self._link(entry, dest)
        return True

    async def _link(self, entry: CacheEntry, dest: Path) -> None:
        try:
            await asyncio.to_thread(_link_tree, self.cache.entry_dir(entry), dest)
        except OSError as exc:
            raise StorageError(f"input cache: could not stage {self.label} from {self.cache.root}: {exc}") from exc


def _reconcile(index: CacheIndex, root: Path) -> None:
    """Delete what a crash left: scratch downloads, folders with no row, rows with no folder."""
    entries_dir, scratch = root / "entries", root / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    entries_dir.mkdir(parents=True, exist_ok=True)
    indexed = set()
    for entry in index.by_last_use():
        if (entries_dir / entry.entry_id).is_dir():
            indexed.add(entry.entry_id)
        else:
            index.remove(entry.entry_id)
    for child in entries_dir.iterdir():
        if child.name not in indexed:
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def _make_scratch(scratch: Path) -> Path:
    scratch.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="fetch-", dir=scratch))


def _seal(folder: Path, target: Path) -> None:
    """Make `folder`'s files read-only, then rename it to `target` (atomic: an entry is whole or absent)."""
    for top, _, files in os.walk(folder):
        for name in files:
            os.chmod(os.path.join(top, name), _ENTRY_FILE_MODE)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(folder, target)


def _link_tree(source: Path, dest: Path) -> None:
    """Recreate `source`'s tree under `dest`: hard links where the filesystem allows, copies elsewhere."""
    for top, dirs, files in os.walk(source):
        relative = os.path.relpath(top, source)
        out = dest if relative == "." else dest / relative
        for name in dirs:
            (out / name).mkdir(exist_ok=True)
        for name in files:
            src, dst = os.path.join(top, name), out / name
            try:
                os.link(src, dst)
            except OSError:  # another filesystem (EXDEV), or one without hard links: copy
                shutil.copy2(src, dst)


def _move_tree(source: Path, dest: Path) -> None:
    """Move what `source` holds into `dest` (renames on one filesystem, copies across)."""
    for child in source.iterdir():
        shutil.move(child, dest / child.name)
