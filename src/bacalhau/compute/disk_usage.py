"""The disk limit of a task (Resources.Disk), enforced on what it writes to its result paths.

Whatever the storage driver or filesystem under the engine (overlay2 on ext4 has no per-container
quota; `--storage-opt size` needs xfs with pquota), the result paths are plain host folders the node
created: the node measures them while the task runs and stops the task once they hold more than its
limit. The check runs every `interval_s` in a thread (a walk of the folders), so a task can overshoot
by what it writes in one interval before it is stopped; the execution then fails with the sizes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path

CHECK_INTERVAL_S = 0.5


def tree_size(paths: Iterable[Path]) -> int:
    """Bytes of the regular files under `paths` (symlinks not followed; vanished entries skipped)."""
    total = 0
    stack = [str(p) for p in paths]
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


async def first_excess(paths: list[Path], limit_bytes: int, *, interval_s: float = CHECK_INTERVAL_S) -> int:
    """Return the bytes found as soon as `paths` hold more than `limit_bytes`; runs until cancelled."""
    while True:
        used = await asyncio.to_thread(tree_size, paths)
        if used > limit_bytes:
            return used
        await asyncio.sleep(interval_s)
