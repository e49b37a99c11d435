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

Clients stay open between stagings (s3/pool.py: warm connections, no per-input set-up); `stop()` closes
them, which the registry does for plugins with a lifespan when the node stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path

from bacalhau.compute.storage.base import PreparedInput, input_name
from bacalhau.compute.storage.workdir import staging_folder
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
    download_object,
    download_prefix,
    object_filename,
)


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
    ) -> None:
        """`max_bytes` caps one input (all its objects together); `default_region` is used when the input
        names none (then AWS_REGION, then us-east-1); at most `max_clients` (endpoint, region) clients stay
        open; `concurrency` objects of a prefix download at once, in `chunk_bytes` reads."""
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
                await self._download(location, region, subject, folder)
            except OSError as exc:
                raise StorageError(f"{subject}: could not save {location.uri} on the node: {exc}") from exc
        return PreparedInput(source=source, host_path=folder, read_only=True, owned=True)

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Delete the numbered folder `prepare` made. Idempotent."""
        if prepared.owned:
            await asyncio.to_thread(shutil.rmtree, prepared.host_path, True)

    async def has_locally(self, source: InputSource) -> bool:
        """Never: an object is downloaded for every execution."""
        return False

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
        try:
            return source_location(source.source)
        except ValidationFailed as exc:
            # Say which input is wrong: a job may have several s3 inputs.
            raise ValidationFailed(
                [FieldError(f"InputSources[{input_name(source)}].{e.path}", e.message) for e in exc.errors],
                hint=exc.hint,
            ) from exc
