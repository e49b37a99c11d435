"""Inline inputs staged once per content and shared, read-only, by the executions that use it.

The same module or config file usually comes inline again and again (`bacalhau wasm run ./main.wasm`
in a loop, a job file submitted many times). Staging it privately cost every execution a folder, a file,
and their removal afterwards; on a slow disk each new file or folder is 0.05-0.8 ms of kernel time, and
a trivial WASM job spent more there than running. Here the first execution writes the decoded content
under `<root>/<key>/<name>`, and the next ones mount that same file:

    acquire(key) ──► entry written? ──yes──► count one more user, return its path
                        │no
                        ▼
                  being written by another execution? ──yes──► wait for it, then as above
                        │no
                        ▼
                  write into <root>/<key>/ (the caller's function), files 0444 ──► entry, one user

    release(path) ──► one user fewer ──► over max_entries or max_bytes? evict the least recently
                                          used entries that nobody uses (their folder deleted)

The key is a digest of the data URL and the staged name, so an entry never serves other content. An
entry is read-only for everyone and mounted read-only (inline inputs always are), so no task can change
what the next one reads. The index lives in this process only: the root is emptied when the node starts
(`open`), so a crash mid-write never leaves a half-written entry in use. Entries are bounded in number
and bytes; content larger than `max_entry_bytes` is not shared (the caller stages it privately).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES: Final = 256
DEFAULT_MAX_BYTES: Final = 256 * 1024 * 1024
# Content above this is staged per execution: a rare giant blob should not push out the common ones.
DEFAULT_MAX_ENTRY_BYTES: Final = 16 * 1024 * 1024
_READ_ONLY: Final = 0o444


def inline_key(url: str, name: str) -> str:
    """The entry for this data URL staged under this file name."""
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass"))
    digest.update(b"\0" + name.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass
class _Entry:
    path: Path  # <root>/<key>/<name>
    size: int
    users: int = 0


# Writes an entry: given its folder (not made yet), stages the content as one file there and returns its path.
Writer = Callable[[Path], Awaitable[Path]]


class InlineStore:
    """Shared, read-only staged copies of inline content (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    ) -> None:
        self.root = root
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently acquired first
        self._writing: dict[str, asyncio.Future[None]] = {}
        self._bytes = 0
        self._opened = False

    def open(self) -> None:
        """Empty the root (what an earlier process left is not indexed here). Raises OSError."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self._opened = True

    def stats(self) -> tuple[int, int]:
        """(entries, bytes) held now."""
        return len(self._entries), self._bytes

    async def acquire(self, key: str, size: int, write: Writer) -> Path | None:
        """The shared staged path of `key`, counted as in use until `release`; None when `size` is over
        the per-entry bound (stage privately instead). `write` runs at most once per entry; its
        exceptions propagate (nothing is kept); a caller that waited for a failed write tries its own."""
        if size > self.max_entry_bytes:
            return None
        if not self._opened:
            self.open()
        while (pending := self._writing.get(key)) is not None:
            await asyncio.wait([pending])  # if that write fails, this caller writes (and fails) itself
        entry = self._entries.get(key)
        if entry is None:
            entry = await self._write(key, write)
        self._entries.move_to_end(key)
        entry.users += 1
        return entry.path

    def release(self, path: Path) -> None:
        """One user of the entry holding `path` is done; evict what is over the bounds. Never raises."""
        entry = self._entries.get(path.parent.name)
        if entry is not None and entry.path == path and entry.users > 0:
            entry.users -= 1
        self._evict()

    async def _write(self, key: str, write: Writer) -> _Entry:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writing[key] = done
        folder = self.root / key
        try:
            path = await write(folder)
            size = _seal(path)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        else:
            entry = self._entries[key] = _Entry(path=path, size=size)
            self._bytes += size
            return entry
        finally:
            del self._writing[key]
            done.set_result(None)

    def _evict(self) -> None:
        for key in list(self._entries):
            if len(self._entries) <= self.max_entries and self._bytes <= self.max_bytes:
                return
            entry = self._entries[key]
            if entry.users:
                continue
            del self._entries[key]
            self._bytes -= entry.size
            shutil.rmtree(self.root / key, ignore_errors=True)


def _seal(path: Path) -> int:
    """Make the staged file read-only; return its size. The mode is defence in depth (every mount of an
    entry is read-only already): a filesystem without modes is fine."""
    try:
        os.chmod(path, _READ_ONLY)
    except (OSError, NotImplementedError) as exc:
        logger.debug("cannot make %s read-only: %s", path, exc)
    return path.stat().st_size
