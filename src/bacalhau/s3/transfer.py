"""Downloads from S3 onto local disk: one object to a file, or every object under a prefix to a folder tree.

Each object streams into a hidden `.part` file beside its destination and is renamed into place only
once complete (and checked), so a reader never sees half a file. The body is read in large chunks
(`CHUNK_BYTES`); each chunk is written (and hashed, when a ChecksumSHA256 is to be verified) by a worker
thread while the next one downloads, so disk and hashing overlap the network instead of adding to it.

S3 errors propagate as botocore/aiohttp exceptions: callers wrap calls in `errors.translated(...)`.
What only this module can see (size cap, checksum mismatch, nothing under a prefix, unsafe keys) is
raised as StorageError worded with the caller's `subject`.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import os
import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bacalhau.models.errors import ErrorCode, StorageError
from bacalhau.s3.location import S3Location, is_composite_checksum

CHUNK_BYTES = 1 << 20
DEFAULT_CONCURRENCY = 4
_DIRECTORY_CONTENT_TYPE = "application/x-directory"
SIZE_HINT = "raise InputSources.MaxDownloadBytes in the compute node's config"


@dataclass(frozen=True)
class ObjectEntry:
    """One listed object: its full key and size in bytes."""

    key: str
    size: int


class ByteBudget:
    """How many bytes a staging may still write; shared by every object of one input."""

    def __init__(self, max_bytes: int, *, subject: str, uri: str) -> None:
        self.max_bytes = max_bytes
        self.left = max_bytes
        self._subject = subject
        self._uri = uri

    def ensure(self, n: int) -> None:
        """StorageError now if `n` more bytes would pass the cap (sizes S3 declares, checked before fetching)."""
        if n > self.left:
            raise self._too_large(f"{self.max_bytes - self.left + n} bytes")

    def take(self, n: int) -> None:
        """Spend `n` bytes received; StorageError once the cap is passed."""
        self.left -= n
        if self.left < 0:
            raise self._too_large(f"more than {self.max_bytes} bytes")

    def _too_large(self, size: str) -> StorageError:
        return StorageError(
            f"{self._subject}: {self._uri} is larger than the node's limit ({size} > {self.max_bytes} bytes)",
            code=ErrorCode.ResourceExhausted,
            hint=SIZE_HINT,
        )


async def download_object(
    client: Any,
    location: S3Location,
    dest: Path,
    *,
    subject: str,
    budget: ByteBudget,
    key: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> bool:
    """Stream object `key` (default: `location.key`, at `location.version_id`) to the file `dest`.

    Verifies `location.checksum_sha256` when set. Returns False, writing nothing, when the key is a
    directory marker (Content-Type application/x-directory) rather than an object.
    """
    key = location.key if key is None else key
    params: dict[str, str] = {"Bucket": location.bucket, "Key": key}
    if location.version_id:
        params["VersionId"] = location.version_id
    expected = location.checksum_sha256
    composite = bool(expected) and is_composite_checksum(expected)
    if composite:
        # A multipart object's checksum covers its parts: only S3's stored value can be compared.
        params["ChecksumMode"] = "ENABLED"
    response = await client.get_object(**params)
    async with response["Body"] as body:
        length = response.get("ContentLength")
        if response.get("ContentType", "") == _DIRECTORY_CONTENT_TYPE and not length:
            return False
        if isinstance(length, int):
            budget.ensure(length)

        def mismatch(actual: str) -> StorageError:
            return StorageError(
                f"{subject}: checksum mismatch for s3://{location.bucket}/{key}: expected ChecksumSHA256 "
                f"{expected}, got {actual}",
                hint="check the ChecksumSHA256 param (base64 of the object's SHA-256), or the object changed",
            )

        if composite:
            stored = str(response.get("ChecksumSHA256") or "")
            if stored != expected:
                raise mismatch(stored or "no checksum stored with the object")
        await _stream_to_file(
            body,
            dest,
            budget=budget,
            chunk_bytes=chunk_bytes,
            expected_sha256="" if composite else expected,
            mismatch=mismatch,
        )
    return True


async def list_objects(client: Any, location: S3Location, *, page_size: int = 1000) -> list[ObjectEntry]:
    """Every object under `location.prefix` whose key passes `location.filter`, in key order (paginated)."""
    entries: list[ObjectEntry] = []
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=location.bucket, Prefix=location.prefix, PaginationConfig={"PageSize": page_size})
    async for page in pages:
        for item in page.get("Contents", []) or []:
            key = str(item["Key"])
            if location.matches(key):
                entries.append(ObjectEntry(key=key, size=int(item.get("Size", 0))))
    return entries


async def download_prefix(
    client: Any,
    location: S3Location,
    dest_dir: Path,
    *,
    subject: str,
    budget: ByteBudget,
    concurrency: int = DEFAULT_CONCURRENCY,
    chunk_bytes: int = CHUNK_BYTES,
) -> list[Path]:
    """Download every listed object under the prefix into `dest_dir`, keeping the key structure below the
    prefix's folder (`data/2024/` -> `a/b.csv` for key `data/2024/a/b.csv`; `logs/app-*` -> `app-1.log`).

    StorageError when nothing matches, when a key would land outside `dest_dir`, or when a
    ChecksumSHA256 is given but more than one object matches (a checksum names one object).
    """
    entries = await list_objects(client, location)
    if not entries:
        raise StorageError(
            f"{subject}: no object matches {location.uri}"
            + (f" with Filter {location.filter!r}" if location.filter else ""),
            code=ErrorCode.NotFound,
            hint="check the Key prefix and the Filter regex",
        )
    if location.checksum_sha256 and len(entries) > 1:
        raise StorageError(
            f"{subject}: ChecksumSHA256 names one object but {len(entries)} objects match {location.uri}",
            hint="use a Key naming a single object, or narrow the Filter",
        )
    budget.ensure(sum(e.size for e in entries))
    base = location.prefix[: location.prefix.rfind("/") + 1]
    targets = [(entry, _relative_path(dest_dir, entry.key, base, subject)) for entry in entries]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def fetch(entry: ObjectEntry, target: Path) -> None:
        async with gate:
            if entry.key.endswith("/"):  # a "folder" placeholder object
                await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
                return
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
            await download_object(
                client, location, target, subject=subject, budget=budget, key=entry.key, chunk_bytes=chunk_bytes
            )

    try:
        async with asyncio.TaskGroup() as group:
            for entry, target in targets:
                group.create_task(fetch(entry, target))
    except BaseExceptionGroup as failures:
        raise first_failure(failures) from None
    return [target for _, target in targets]


def _relative_path(dest_dir: Path, key: str, base: str, subject: str) -> Path:
    """Where `key` lands under `dest_dir`; StorageError for a key that would escape it."""
    relative = key[len(base) :] if key.startswith(base) else key
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if ".." in parts or any("\\" in p or "\x00" in p for p in parts):
        raise StorageError(f"{subject}: refusing to stage S3 key {key!r}: it would land outside the input folder")
    return dest_dir.joinpath(*parts) if parts else dest_dir


def first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf exception of a TaskGroup's (possibly nested) group: the one worth reporting."""
    first = group.exceptions[0]
    return first_failure(first) if isinstance(first, BaseExceptionGroup) else first


async def _stream_to_file(
    body: Any,
    dest: Path,
    *,
    budget: ByteBudget,
    chunk_bytes: int,
    expected_sha256: str,
    mismatch: Callable[[str], StorageError],
) -> None:
    """Copy `body` into `dest` through a temporary file, checking the SHA-256 (if expected) before the rename.

    Writes happen on the event loop's thread, one chunk at a time: a 1 MiB write into the page cache
    blocks for well under a millisecond, while handing each chunk to a worker thread cost ~15% of the
    throughput on 2 cores (every hop has to win the GIL back from the busy loop; bench/s3_staging.py).
    """
    hasher = _ChunkHasher() if expected_sha256 else None
    fd, tmp = _open_temp(dest.parent)
    try:
        while data := await body.read(chunk_bytes):
            budget.take(len(data))
            _write(fd, data)
            if hasher is not None:
                await hasher.update(data)
        if hasher is not None:
            actual = base64.b64encode(await hasher.digest()).decode()
            if actual != expected_sha256:
                raise mismatch(actual)
        _finish(fd, tmp, dest)
    except BaseException:
        _discard(fd, tmp)
        raise
    finally:
        if hasher is not None:
            hasher.close()


class _ChunkHasher:
    """SHA-256 of a download, computed on a worker thread while the next chunk arrives.

    hashlib releases the GIL for large buffers, so on 2 cores hashing overlaps the network read
    instead of adding ~0.75 ms per MiB to the loop thread (bench/s3_staging.py --checksum).
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-sha256")
        self._pending: concurrent.futures.Future[None] | None = None

    async def update(self, data: bytes) -> None:
        """Queue `data` after the previous chunk (one in flight keeps the order and bounds memory)."""
        if self._pending is not None:
            await asyncio.wrap_future(self._pending)
        self._pending = self._worker.submit(self._hash.update, data)

    async def digest(self) -> bytes:
        """The digest once every queued chunk is hashed."""
        if self._pending is not None:
            await asyncio.wrap_future(self._pending)
            self._pending = None
        return self._hash.digest()

    def close(self) -> None:
        """Stop the worker (a chunk in flight finishes first)."""
        self._worker.shutdown(wait=False)


def _open_temp(folder: Path) -> tuple[int, Path]:
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=folder)
    return fd, Path(name)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # a short write is rare on regular files, but possible
        view = view[os.write(fd, view) :]


def _finish(fd: int, tmp: Path, dest: Path) -> None:
    os.close(fd)
    tmp.replace(dest)


def _discard(fd: int, tmp: Path) -> None:
    os.close(fd)
    tmp.unlink(missing_ok=True)


def object_filename(key: str) -> str:
    """The file name a single object is staged under: its key's basename."""
    return posixpath.basename(key.rstrip("/")) or "object"
