"""Resources.Disk on result paths: what counts, and when the watch fires."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bacalhau.compute.disk_usage import DiskUse, first_excess, tree_size


def test_tree_size_counts_files_in_subfolders_but_not_through_symlinks(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one").write_bytes(b"x" * 1000)
    (tmp_path / "a" / "b" / "two").write_bytes(b"y" * 500)
    outside = tmp_path / "outside"
    outside.write_bytes(b"z" * 10_000)
    os.symlink(outside, tmp_path / "a" / "link")
    assert tree_size([tmp_path / "a"]) == 1500
    assert tree_size([tmp_path / "missing"]) == 0


async def test_the_watch_fires_once_the_folders_outgrow_the_limit(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    out.mkdir()
    watch = asyncio.create_task(first_excess([out], 4096, interval_s=0.01))
    (out / "small").write_bytes(b"x" * 4096)  # at the limit: still fine
    await asyncio.sleep(0.05)
    assert not watch.done()
    (out / "more").write_bytes(b"x")
    async with asyncio.timeout(5):
        assert await watch == DiskUse(results_bytes=4097)


async def test_scratch_bytes_count_towards_the_limit_and_are_measured_less_often(tmp_path: Path) -> None:
    """A container's writable layer counts with the result paths; the engine is asked every few checks."""
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "result").write_bytes(b"x" * 1000)
    asked: list[int] = []

    async def scratch() -> int:
        asked.append(len(asked))
        return 0 if len(asked) < 3 else 5000

    async with asyncio.timeout(5):
        use = await first_excess([out], 4096, scratch=scratch, interval_s=0.001, scratch_every=4)
    assert use == DiskUse(results_bytes=1000, scratch_bytes=5000)
    assert use.total == 6000
    assert len(asked) == 3  # checks 0, 4 and 8 asked the engine; the others reused its last answer


async def test_no_result_paths_but_a_writable_layer_is_still_watched(tmp_path: Path) -> None:
    async def scratch() -> int:
        return 10_000

    async with asyncio.timeout(5):
        assert await first_excess([], 4096, scratch=scratch, interval_s=0.001) == DiskUse(0, 10_000)
