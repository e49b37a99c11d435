"""Uploads to S3: one file (a single PUT, or a multipart upload when large) and a whole folder tree.

A single PUT carries the file's SHA-256 (`x-amz-checksum-sha256`), so the store rejects a corrupted body
and the returned ChecksumSHA256 can later verify a download. Multipart uploads send parts concurrently
and are aborted on any failure or cancellation, so no half-finished upload lingers in the bucket.
S3 errors propagate as botocore/aiohttp exceptions: callers wrap calls in `errors.translated(...)`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bacalhau.s3.transfer import DEFAULT_CONCURRENCY, first_failure

PART_BYTES = 8 << 20
MULTIPART_THRESHOLD_BYTES = 16 << 20


@dataclass(frozen=True)
class UploadResult:
    """What S3 reports about an uploaded object ('' when the store did not say)."""

    key: str
    size: int
    version_id: str = ""
    checksum_sha256: str = ""


async def upload_file(
    client: Any,
    path: Path,
    bucket: str,
    key: str,
    *,
    part_bytes: int = PART_BYTES,
    multipart_threshold_bytes: int = MULTIPART_THRESHOLD_BYTES,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> UploadResult:
    """Upload the file at `path` to `bucket`/`key`, replacing any object there. Idempotent."""
    size = (await asyncio.to_thread(path.stat)).st_size
    if size < multipart_threshold_bytes:
        data = await asyncio.to_thread(path.read_bytes)
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        response = await client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=checksum)
        return UploadResult(
            key=key,
            size=size,
            version_id=str(response.get("VersionId") or ""),
            checksum_sha256=str(response.get("ChecksumSHA256") or checksum),
        )
    return await _multipart(client, path, size, bucket, key, part_bytes=part_bytes, concurrency=concurrency)


async def _multipart(
    client: Any, path: Path, size: int, bucket: str, key: str, *, part_bytes: int, concurrency: int
) -> UploadResult:
    # S3 allows at most 10,000 parts: grow the part size for very large files.
    part_bytes = max(part_bytes, -(-size // 10_000))
    created = await client.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = created["UploadId"]
    gate = asyncio.Semaphore(max(1, concurrency))
    etags: dict[int, str] = {}

    async def send(number: int, offset: int) -> None:
        async with gate:
            data = await asyncio.to_thread(_read_range, path, offset, min(part_bytes, size - offset))
            response = await client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            etags[number] = str(response["ETag"])

    try:
        try:
            async with asyncio.TaskGroup() as group:
                for number, offset in enumerate(range(0, size, part_bytes), start=1):
                    group.create_task(send(number, offset))
        except BaseExceptionGroup as failures:
            raise first_failure(failures) from None
        parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
        response = await client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        # Best effort, also when cancelled: an unfinished multipart upload keeps costing storage.
        with contextlib.suppress(Exception):
            await asyncio.shield(client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id))
        raise
    return UploadResult(key=key, size=size, version_id=str(response.get("VersionId") or ""))


async def upload_tree(
    client: Any, root: Path, bucket: str, prefix: str, *, concurrency: int = DEFAULT_CONCURRENCY
) -> list[UploadResult]:
    """Upload every regular file under `root` to `prefix` + its path relative to `root` (POSIX separators).

    Symbolic links are skipped, never followed: a task could otherwise point one at a file of the node.
    Empty folders have no S3 counterpart and are skipped too.
    """
    files = await asyncio.to_thread(_regular_files, root)
    gate = asyncio.Semaphore(max(1, concurrency))
    results: dict[str, UploadResult] = {}

    async def send(relative: str) -> None:
        async with gate:
            results[relative] = await upload_file(client, root / relative, bucket, prefix + relative, concurrency=1)

    try:
        async with asyncio.TaskGroup() as group:
            for relative in files:
                group.create_task(send(relative))
    except BaseExceptionGroup as failures:
        raise first_failure(failures) from None
    return [results[relative] for relative in files]


def _regular_files(root: Path) -> list[str]:
    found: list[str] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def _read_range(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)
