"""Atomic fetch destinations: content lands at `dest` whole, or not at all.

    dest.parent/.<dest.name>.partial-XXXX/content   <- the fetch writes here
                 │ success: rename(content, dest)   (same folder, so same filesystem: atomic)
                 └ always:  remove .<dest.name>.partial-XXXX/

The staging folder is a hidden sibling of `dest` rather than a system temp dir so that the final rename
never crosses filesystems (which would turn it into a slow, non-atomic copy).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bacalhau.models.errors import ErrorCode, StorageError

STAGED_NAME = "content"


@asynccontextmanager
async def staged_destination(dest: Path, *, cid: str) -> AsyncIterator[Path]:
    """Yield a path to fetch `cid` into; on a clean exit, move it to `dest`.

    Raises StorageError when `dest` already exists, or when the body left nothing at the yielded path.
    Whatever happens, the staging folder is removed.
    """
    staging = await asyncio.to_thread(_make_staging_dir, dest, cid)
    try:
        target = staging / STAGED_NAME
        yield target
        await asyncio.to_thread(_commit, target, dest, cid)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)


def _make_staging_dir(dest: Path, cid: str) -> Path:
    if os.path.lexists(dest):
        raise StorageError(
            f"cannot fetch {cid} to {dest}: it already exists",
            code=ErrorCode.BadRequest,
            hint="fetch into a path that does not exist yet",
            details={"cid": cid},
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    except OSError as exc:
        raise StorageError(f"cannot fetch {cid} to {dest}: {exc}", details={"cid": cid}) from exc


def _commit(target: Path, dest: Path, cid: str) -> None:
    if not os.path.lexists(target):
        raise StorageError(f"fetching {cid} produced nothing", details={"cid": cid})
    if os.path.lexists(dest):  # appeared while we fetched: never overwrite someone else's files
        raise StorageError(f"cannot fetch {cid} to {dest}: it appeared during the fetch", details={"cid": cid})
    try:
        os.rename(target, dest)
    except OSError as exc:
        raise StorageError(f"cannot move {cid} into place at {dest}: {exc}", details={"cid": cid}) from exc
