"""The `s3` publisher: an execution's results uploaded to S3 (or any S3-compatible store).

Params (Bacalhau's): `Bucket` and `Key` (both required), `Endpoint`, `Region`, `Encoding`. The Key may
hold placeholders, filled in at publish time: `{jobID}`, `{executionID}`, `{nodeID}`, `{date}` (YYYYMMDD)
and `{time}` (HHMMSS), in the node's local time as Bacalhau's `time.Now()`.

    Encoding "" / gzip: results folder --tar.gz (entries at the top)--> one object at Key (+ ".tar.gz")
    Encoding plain:     every regular file of the folder --> Key/ + its relative path (Key gets a "/")

The PublishedResult is an `s3` SpecConfig (Bucket, final Key, Endpoint, Region, Encoding and, for an
archive, its VersionID and ChecksumSHA256 when the store reports them) that an `s3` input can read back.
Credentials are the node's own. Republishing overwrites the same keys, so publishing is idempotent.
Clients stay open between publishes (s3/pool.py); `stop()` closes them.
"""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bacalhau.compute.publishers.archive import write_archive
from bacalhau.models.constants import PUBLISHER_S3
from bacalhau.models.errors import FieldError, PublishError, ValidationFailed
from bacalhau.models.job import SpecConfig
from bacalhau.s3.client import ClientSettings, endpoint_label, resolve_region
from bacalhau.s3.errors import translated
from bacalhau.s3.location import S3Location, publisher_location
from bacalhau.s3.pool import DEFAULT_MAX_CLIENTS, ClientPool
from bacalhau.s3.upload import upload_file, upload_tree

ENCODING_GZIP = "gzip"
ENCODING_PLAIN = "plain"
ARCHIVE_SUFFIX = ".tar.gz"


def render_key(template: str, *, job_id: str, execution_id: str, node_id: str, now: datetime) -> str:
    """`template` with Bacalhau's placeholders filled in (unknown `{...}` are left as they are)."""
    values = {
        "{jobID}": job_id,
        "{executionID}": execution_id,
        "{nodeID}": node_id,
        "{date}": now.strftime("%Y%m%d"),
        "{time}": now.strftime("%H%M%S"),
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template


class S3Publisher:
    """Uploads results to S3 as one tar.gz archive (default) or as plain files under a prefix."""

    def __init__(
        self,
        *,
        default_region: str = "",
        client_settings: ClientSettings | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        scratch_dir: Path | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        """`default_region` is used when the spec names none (then AWS_REGION, then us-east-1); at most
        `max_clients` (endpoint, region) clients stay open; archives are built in `scratch_dir` (default:
        the system's temporary folder); `clock` fills {date}/{time}."""
        self._default_region = default_region
        self._clients = ClientPool(settings=client_settings or ClientSettings(), max_clients=max_clients)
        self._scratch_dir = scratch_dir
        self._clock = clock

    async def start(self) -> None:
        """Nothing to do: clients are opened on first use."""

    async def stop(self) -> None:
        """Close the S3 clients (and connections) kept open between transfers. Idempotent."""
        await self._clients.aclose()

    def is_installed(self) -> bool:
        """S3 needs nothing local; whether the node's credentials open a bucket shows when publishing."""
        return True

    def validate(self, spec: SpecConfig) -> None:
        """Raise ValidationFailed unless Bucket and Key are given and Encoding is '', gzip or plain."""
        self._parse(spec)

    def _fresh_scratch(self) -> Path:
        """A private folder to build the archive in (the scratch dir itself may not exist yet)."""
        if self._scratch_dir is not None:
            self._scratch_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="s3-publish-", dir=self._scratch_dir))

    async def publish(
        self, spec: SpecConfig, execution_id: str, job_id: str, results_dir: Path, *, node_id: str = ""
    ) -> SpecConfig:
        """Upload `results_dir` and return where it went as an `s3` SpecConfig. Raises PublishError
        (retryable for network trouble, throttling and 5xx; not for a missing bucket or refused credentials)."""
        try:
            location, encoding = self._parse(spec)
        except ValidationFailed as exc:
            raise PublishError(f"cannot publish {execution_id} to S3: {exc}", hint=exc.hint) from exc
        key = render_key(location.key, job_id=job_id, execution_id=execution_id, node_id=node_id, now=self._clock())
        if encoding == ENCODING_PLAIN:
            key = key if key.endswith("/") else key + "/"
        elif not key.endswith(ARCHIVE_SUFFIX):
            key += ARCHIVE_SUFFIX
        target = S3Location(bucket=location.bucket, key=key, endpoint=location.endpoint, region=location.region)
        region = resolve_region(location.region, self._default_region)
        subject = f"publishing the results of {execution_id} to {target.uri}"
        params: dict[str, Any] = {"Bucket": target.bucket, "Key": key}
        try:
            with translated(
                PublishError, subject=subject, location=target, endpoint_url=endpoint_label(target.endpoint, region)
            ):
                async with self._clients.lease(target.endpoint, region) as client:
                    if encoding == ENCODING_PLAIN:
                        await upload_tree(client, results_dir, target.bucket, key)
                    else:
                        params.update(await self._upload_archive(client, results_dir, target))
        except (OSError, tarfile.TarError) as exc:
            raise PublishError(
                f"{subject}: could not read or pack the results: {exc}",
                hint="check free disk space and permissions on the compute node",
                retryable=True,
            ) from exc
        if target.endpoint:
            params["Endpoint"] = target.endpoint
        params["Region"] = region
        params["Encoding"] = encoding
        return SpecConfig(type=PUBLISHER_S3, params={name: value for name, value in params.items() if value})

    async def _upload_archive(self, client: Any, results_dir: Path, target: S3Location) -> dict[str, str]:
        scratch = await asyncio.to_thread(self._fresh_scratch)
        try:
            archive = scratch / "results.tar.gz"
            await asyncio.to_thread(write_archive, results_dir, archive)
            uploaded = await upload_file(client, archive, target.bucket, target.key)
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        return {"VersionID": uploaded.version_id, "ChecksumSHA256": uploaded.checksum_sha256}

    def _parse(self, spec: SpecConfig) -> tuple[S3Location, str]:
        errors: list[FieldError] = []
        try:
            location = publisher_location(spec)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
        encoding = spec.param("Encoding") or ""
        if not isinstance(encoding, str) or encoding.lower() not in ("", ENCODING_GZIP, ENCODING_PLAIN):
            errors.append(FieldError("Publisher.Params.Encoding", f"{encoding!r} is not one of gzip, plain"))
        if errors:
            raise ValidationFailed(errors, hint="the s3 publisher needs Bucket and Key; Encoding is gzip or plain")
        return location, str(encoding).lower() or ENCODING_GZIP
