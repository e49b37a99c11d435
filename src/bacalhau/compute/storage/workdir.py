"""Staging folders: each staged input gets a folder of its own under the execution's work dir."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


def fresh_numbered_dir(work_dir: Path) -> Path:
    """Create and return `work_dir/<n>` for the smallest unused n (mkdir is the atomic claim)."""
    try:
        work_dir.mkdir(parents=True)
        n = 0  # made just now, so empty: no listing (each metadata call is ~0.4 ms on a slow disk)
    except FileExistsError:
        # Start past the folders already there (one listing), not at 0: n inputs must not cost n^2 mkdirs.
        n = len(os.listdir(work_dir))
    while True:
        candidate = work_dir / str(n)
        try:
            candidate.mkdir()
        except FileExistsError:
            n += 1
            continue
        return candidate


@asynccontextmanager
async def staging_folder(work_dir: Path) -> AsyncIterator[Path]:
    """A fresh numbered folder for one input, removed with everything in it if the block fails or is
    cancelled: a failed staging never leaves partial files behind."""
    folder = await asyncio.to_thread(fresh_numbered_dir, work_dir)
    try:
        yield folder
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise


async def remove_staged(folder: Path, *files: Path) -> None:
    """Delete `folder`: its known `files`, then the emptied folder, with a few calls on the event loop (a
    worker thread would contend for the GIL with the job's own reports, handled just then); whatever
    else it holds (an unpacked archive, leftovers) goes in a worker thread. Idempotent."""
    try:
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        os.rmdir(folder)
    except FileNotFoundError:
        pass
    except OSError:  # not empty, or a file to delete is a folder
        await asyncio.to_thread(shutil.rmtree, folder, True)
