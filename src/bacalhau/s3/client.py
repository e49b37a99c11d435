"""An aiobotocore S3 client for one (endpoint, region), with the node's credentials and sane limits.

Credentials come only from botocore's normal chain on the node (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, AWS_PROFILE and the shared files, then container/instance roles); a job can name a
bucket, never a key to open it with. With an Endpoint (MinIO, SeaweedFS, Ceph, ...) requests use
path-style addressing, which every S3-compatible store understands; without one, AWS S3's own.

botocore's "flexible checksums" (CRC32 trailers on uploads, CRC validation on downloads) are only used
when an operation requires them: several S3-compatible stores reject aws-chunked uploads, and the
SHA-256 a job asks for is checked by transfer.py while streaming.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

from bacalhau.s3.errors import translate, translated
from bacalhau.s3.location import S3Location, is_composite_checksum, publisher_location, source_location

__all__ = [
    "DEFAULT_REGION",
    "ClientSettings",
    "S3Location",
    "endpoint_label",
    "is_composite_checksum",
    "new_session",
    "open_client",
    "publisher_location",
    "resolve_region",
    "source_location",
    "translate",
    "translated",
]

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class ClientSettings:
    """Timeouts and retries for every request. botocore's `standard` retry mode backs off with jitter on
    throttling, 5xx and connection errors; `max_attempts` counts the first try."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_attempts: int = 3
    max_pool_connections: int = 16


def resolve_region(region: str, default_region: str = "") -> str:
    """The region to sign for: the param, else the node's default, else AWS_REGION/AWS_DEFAULT_REGION, else us-east-1."""
    return (
        region
        or default_region
        or os.environ.get("AWS_REGION", "")
        or os.environ.get("AWS_DEFAULT_REGION", "")
        or DEFAULT_REGION
    )


def endpoint_label(endpoint: str, region: str) -> str:
    """The endpoint URL requests go to, for messages (AWS's regional one when no Endpoint is given)."""
    return endpoint or f"https://s3.{region}.amazonaws.com"


def new_session() -> AioSession:
    """An aiobotocore session: it resolves the node's credentials (once, refreshing them if they expire)
    and caches botocore's service models, so a plugin keeps one and opens clients from it (~10 ms each
    instead of ~150 ms with a new session)."""
    return get_session()


@asynccontextmanager
async def open_client(
    endpoint: str, region: str, *, settings: ClientSettings | None = None, session: AioSession | None = None
) -> AsyncIterator[Any]:
    """Yield an aiobotocore S3 client for `endpoint` ('' = AWS) and `region`; close it (and its pool) on exit.

    `session` defaults to a new one (which reads the environment now). Raises botocore errors unchanged
    (e.g. ProfileNotFound): wrap the block in `translated(...)`.
    """
    settings = settings or ClientSettings()
    config = AioConfig(
        region_name=region,
        signature_version="s3v4",
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"max_attempts": max(1, settings.max_attempts), "mode": "standard"},
        max_pool_connections=settings.max_pool_connections,
        s3={"addressing_style": "path" if endpoint else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = session or new_session()
    async with session.create_client("s3", endpoint_url=endpoint or None, config=config) as client:
        yield client
