"""What the allow-listed folders of a compute node hold, sized, for placement by data (compute/holdings.py).

Each allow-listed root that exists is reported with its total size, and so are its largest immediate
children (a job names `/data/sales/2026.csv`: the orchestrator matches it to `/data/sales`, or at
least `/data`). Sizes come from a walk bounded in files (`max_files` across all roots): past it the
sizes are lower bounds, which is all ranking needs. Symlinks are not followed (a link out of the
allow-list must not be counted as held here).
"""

from __future__ import annotations

import os
import time

from bacalhau.compute.holdings import HeldItem
from bacalhau.locality.keys import local_key

MAX_SCANNED_FILES = 20_000
MAX_CHILDREN_PER_ROOT = 64


def scan_roots(
    roots: list[str], *, max_files: int = MAX_SCANNED_FILES, max_children: int = MAX_CHILDREN_PER_ROOT
) -> list[HeldItem]:
    """The roots and their largest children with their sizes (blocking: run it in a thread)."""
    now = time.time()
    budget = [max_files]
    items: list[HeldItem] = []
    for root in roots:
        if not os.path.isdir(root):
            if os.path.isfile(root):
                items.append(HeldItem(key=local_key(root), size=_size(root, budget), last_used=now))
            continue
        children: list[HeldItem] = []
        try:
            with os.scandir(root) as listing:
                names = sorted(entry.path for entry in listing if not entry.is_symlink())
        except OSError:
            continue
        for path in names:
            children.append(HeldItem(key=local_key(path), size=_size(path, budget), last_used=now))
        total = sum(c.size for c in children)
        items.append(HeldItem(key=local_key(root), size=total, last_used=now))
        children.sort(key=lambda c: (-c.size, c.key))
        items.extend(children[:max_children])
    return items


def _size(path: str, budget: list[int]) -> int:
    """Bytes under `path` (a file: its size), counting at most budget[0] more files."""
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            budget[0] -= 1
            return os.lstat(path).st_size if budget[0] >= 0 else 0
    except OSError:
        return 0
    total = 0
    for folder, dirs, files in os.walk(path, onerror=None, followlinks=False):
        for name in files:
            if budget[0] <= 0:
                return total
            budget[0] -= 1
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
        dirs.sort()
    return total
