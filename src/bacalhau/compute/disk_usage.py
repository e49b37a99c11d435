"""The disk limit of a task (Resources.Disk), enforced on everything it writes: its result paths and,
for an engine that gives a task its own filesystem (a container's writable layer), what it writes there.

Whatever the storage driver or filesystem under the engine (overlay2 on ext4 has no per-container
quota; `--storage-opt size` needs xfs with pquota), both are measurable from the node: the result
paths are plain host folders the node created (a walk of the folders, in a thread), and the engine
reports a container's writable layer size (Docker's `SizeRw`). The node adds them up while the task
runs and stops the task once the sum is over its limit::

    every interval_s:  results = tree_size(result paths)
    every scratch_every-th interval:  scratch = engine's measure   (costlier: the engine walks the layer)
    results + scratch > limit  ->  DiskUse returned; the runner stops the task and fails the execution

A task can overshoot by what it writes between two measures before it is stopped; the execution then
fails with both sizes, so the user sees where the bytes went.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CHECK_INTERVAL_S = 0.5
# The writable layer is measured by the engine walking its files: every 4th check (2 s) is enough to
# stop a runaway writer early without keeping the engine busy for a quiet task.
SCRATCH_EVERY = 4


@dataclass(frozen=True)
class DiskUse:
    """What a task wrote: to its result paths, and outside its mounts (a container's writable layer)."""

    results_bytes: int
    scratch_bytes: int = 0

    @property
    def total(self) -> int:
        """Everything the task wrote, the figure compared with its limit."""
        return self.results_bytes + self.scratch_bytes


def tree_size(paths: Iterable[Path]) -> int:
    """Bytes of the regular files under `paths`, or of a path that is itself a regular file (symlinks not
    followed; vanished entries skipped)."""
    total = 0
    stack: list[str] = []
    for path in paths:
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
        elif stat.S_ISDIR(info.st_mode):
            stack.append(str(path))
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # removed while we looked
        except OSError:
            continue
    return total


async def first_excess(
    paths: list[Path],
    limit_bytes: int,
    *,
    scratch: Callable[[], Awaitable[int]] | None = None,
    interval_s: float = CHECK_INTERVAL_S,
    scratch_every: int = SCRATCH_EVERY,
) -> DiskUse:
    """Return what the task wrote as soon as it is more than `limit_bytes`; runs until cancelled.

    `scratch` measures what the task wrote outside `paths` (None: nothing can be written there)."""
    scratch_bytes = 0
    checks = 0
    while True:
        results_bytes = await asyncio.to_thread(tree_size, paths) if paths else 0
        if scratch is not None and checks % scratch_every == 0:
            scratch_bytes = await scratch()
        checks += 1
        use = DiskUse(results_bytes, scratch_bytes)
        if use.total > limit_bytes:
            return use
        await asyncio.sleep(interval_s)
