"""The `s3` input source: objects from S3 (or any S3-compatible store) staged onto the compute node's disk.

Every input gets a fresh numbered folder of the work dir, and that folder is what is mounted at the
input's Target, as Bacalhau mounts its `s3-input-*` folder:

    Key "data/2024/report.csv"        -> <n>/report.csv                  (one object: its basename)
    Key "data/2024/" or "data/2024/*" -> <n>/a.csv, <n>/sub/b.csv         (a prefix: keys below its folder)
    Key "logs/app-*"                  -> <n>/app-1.log, <n>/app-2.log     (a partial prefix: same rule)
    Key ""                            -> the whole bucket

`Filter` (a regex searched in each listed key) narrows a prefix. `ChecksumSHA256` is verified while
streaming (base64 SHA-256, S3's format); `VersionID` fetches that version of one object. Credentials are
the node's own (environment / profile / instance role), never the job's. Whatever fails, or if the
staging is cancelled, the folder is removed: nothing partial is left behind.

With the node's input cache (input_cache.py), an entry is kept per source identity (endpoint, bucket,
key, VersionID, Filter, ChecksumSHA256) with the ETag(s) it was fetched under, and each later staging
revalidates it: a HEAD of the object (ListObjectsV2 of a prefix: the keys, ETags and sizes) that
matches stages the cached files without a GET of any body; anything else downloads again and replaces
the entry. A prefix is listed twice on a miss (here and by the download): an object changing between
the two only means the entry is refetched at the next staging.

Clients stay open between stagings (s3/pool.py: warm connections, no per-input set-up); `stop()` closes
them, which the registry does for plugins with a lifespan when the node stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bacalhau.compute.storage.base import PreparedInput, input_name
from bacalhau.compute.storage.input_cache import CacheClaim, InputCache
from bacalhau.compute.storage.workdir import staging_folder
from bacalhau.locality.keys import s3_key
from bacalhau.models.errors import FieldError, StorageError, ValidationFailed
from bacalhau.models.job import InputSource
from bacalhau.s3.client import ClientSettings, endpoint_label, resolve_region
from bacalhau.s3.errors import translated
from bacalhau.s3.location import S3Location, source_location
from bacalhau.s3.pool import DEFAULT_MAX_CLIENTS, ClientPool
from bacalhau.s3.transfer import (
    CHUNK_BYTES,
    DEFAULT_CONCURRENCY,
    ByteBudget,
    ObjectEntry,
    download_object,
    download_prefix,
    object_filename,
)

# How S3 consoles mark a "folder" object (transfer.py skips such objects the same way).
_DIRECTORY_CONTENT_TYPE = "application/x-directory"


class S3Storage:
    """Stages `s3` inputs into a private folder that cleanup deletes."""

    def __init__(
        self,
        *,
        max_bytes: int,
        default_region: str = "",
        client_settings: ClientSettings | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        concurrency: int = DEFAULT_CONCURRENCY,
        chunk_bytes: int = CHUNK_BYTES,
        cache: InputCache | None = None,
    ) -> None:
        """`max_bytes` caps one input (all its objects together); `default_region` is used when the input
        names none (then AWS_REGION, then us-east-1); at most `max_clients` (endpoint, region) clients stay
        open; `concurrency` objects of a prefix download at once, in `chunk_bytes` reads; `cache`, when
        given, keeps what was downloaded for the next staging of the same objects."""
        self._cache = cache
        self._max_bytes = max_bytes
        self._default_region = default_region
        self._clients = ClientPool(settings=client_settings or ClientSettings(), max_clients=max_clients)
        self._concurrency = max(1, concurrency)
        self._chunk_bytes = max(64 << 10, chunk_bytes)

    async def start(self) -> None:
        """Nothing to do: clients are opened on first use."""

    async def stop(self) -> None:
        """Close the S3 clients (and connections) kept open between transfers. Idempotent."""
        await self._clients.aclose()

    def is_installed(self) -> bool:
        """S3 needs nothing local; whether the node's credentials open a bucket shows when staging."""
        return True

    def validate(self, source: InputSource) -> None:
        """Raise ValidationFailed for a missing Bucket or an unusable param (Endpoint, Filter, ChecksumSHA256...)."""
        self._location(source)

    async def prepare(self, source: InputSource, work_dir: Path) -> PreparedInput:
        """Download the object (or every object under the prefix) into a fresh numbered folder of `work_dir`.

        Returns the folder. Raises StorageError naming the input; leaves nothing behind on failure.
        """
        location = self._location(source)
        subject = f"s3 input {input_name(source)!r}"
        region = resolve_region(location.region, self._default_region)
        async with staging_folder(work_dir) as folder:
            try:
                if self._cache is None:
                    await self._download(location, region, subject, folder)
                else:
                    async with self._cache.claim(s3_key(location), label=location.uri) as claim:
                        await self._stage_through(claim, location, region, subject, folder)
            except OSError as exc:
                raise StorageError(f"{subject}: could not save {location.uri} on the node: {exc}") from exc
        return PreparedInput(source=source, host_path=folder, read_only=True, owned=True)

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Delete the numbered folder `prepare` made. Idempotent."""
        if prepared.owned:
            await asyncio.to_thread(shutil.rmtree, prepared.host_path, True)

    async def has_locally(self, source: InputSource) -> bool:
        """True when the input cache holds an entry for the source's bucket/key (and version, filter);
        asks S3 nothing, so the entry is only believed fresh: staging revalidates it by ETag."""
        if self._cache is None:
            return False
        try:
            location = self._location(source)
        except ValidationFailed:
            return False
        return self._cache.contains(s3_key(location))

    async def _stage_through(
        self, claim: CacheClaim, location: S3Location, region: str, subject: str, folder: Path
    ) -> None:
        """Stage via the cache: a hit when S3 reports the ETags the entry was fetched under."""
        endpoint_url = endpoint_label(location.endpoint, region)
        with translated(StorageError, subject=subject, location=location, endpoint_url=endpoint_url):
            async with self._clients.lease(location.endpoint, region) as client:
                location, validator = await _current_validator(client, location)
        if claim.entry is not None and validator and claim.entry.validator == validator:
            await claim.hit(folder)
            return
        scratch = await claim.scratch(fallback=folder)
        await self._download(location, region, subject, scratch)
        await claim.store(scratch, folder, validator=validator)

    async def _download(self, location: S3Location, region: str, subject: str, folder: Path) -> None:
        budget = ByteBudget(self._max_bytes, subject=subject, uri=location.uri)
        endpoint_url = endpoint_label(location.endpoint, region)
        with translated(StorageError, subject=subject, location=location, endpoint_url=endpoint_url):
            async with self._clients.lease(location.endpoint, region) as client:
                if not location.is_prefix:
                    target = folder / object_filename(location.key)
                    if await download_object(
                        client, location, target, subject=subject, budget=budget, chunk_bytes=self._chunk_bytes
                    ):
                        return
                    # A folder placeholder object: fetch what is under it, as Bacalhau does.
                    location = dataclasses.replace(location, key=location.key + "/", version_id="")
                await download_prefix(
                    client,
                    location,
                    folder,
                    subject=subject,
                    budget=budget,
                    concurrency=self._concurrency,
                    chunk_bytes=self._chunk_bytes,
                )

    def _location(self, source: InputSource) -> S3Location:
        """The source's S3Location; ValidationFailed naming the input."""
        try:
            return source_location(source.source)
        except ValidationFailed as exc:
            # Say which input is wrong: a job may have several s3 inputs.
            raise ValidationFailed(
                [FieldError(f"InputSources[{input_name(source)}].{e.path}", e.message) for e in exc.errors],
                hint=exc.hint,
            ) from exc


async def _current_validator(client: Any, location: S3Location) -> tuple[S3Location, str]:
    """What S3 says identifies the content now: the object's ETag (one HEAD), or a digest of the listed
    keys, ETags and sizes of a prefix ('' when nothing is listed: the download reports it). A folder
    placeholder object is listed as the prefix it stands for, as the download does; the location returned
    is the one to download."""
    if not location.is_prefix:
        params: dict[str, str] = {"Bucket": location.bucket, "Key": location.key}
        if location.version_id:
            params["VersionId"] = location.version_id
        try:
            head = await client.head_object(**params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
                raise
            # A HEAD's 404 has no body to say whether the bucket or the key is missing: let the download
            # fail with the precise error, as it would without the cache.
            return location, ""
        if not (head.get("ContentType", "") == _DIRECTORY_CONTENT_TYPE and not head.get("ContentLength")):
            etag = str(head.get("ETag") or "")
            return location, (f"etag:{etag}" if etag else "")
        location = dataclasses.replace(location, key=location.key + "/", version_id="")
    listed = await _list_with_etags(client, location)
    if not listed:
        return location, ""
    digest = hashlib.sha256("".join(f"{entry.key}\t{etag}\t{entry.size}\n" for entry, etag in listed).encode())
    return location, f"list:{digest.hexdigest()}"


async def _list_with_etags(client: Any, location: S3Location) -> list[tuple[ObjectEntry, str]]:
    """Every object under the prefix passing the Filter, in key order, with its ETag."""
    listed: list[tuple[ObjectEntry, str]] = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.prefix)
    async for page in pages:
        for item in page.get("Contents", []) or []:
            key = str(item["Key"])
            if location.matches(key):
                listed.append((ObjectEntry(key=key, size=int(item.get("Size", 0))), str(item.get("ETag", ""))))
    return listed
