"""Staging folders: each staged input gets a folder of its own under the execution's work dir."""

from __future__ import annotations

from pathlib import Path


def fresh_numbered_dir(work_dir: Path) -> Path:
    """Create and return `work_dir/<n>` for the smallest unused n (mkdir is the atomic claim)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        candidate = work_dir / str(n)
        try:
            candidate.mkdir()
        except FileExistsError:
            n += 1
            continue
        return candidate
