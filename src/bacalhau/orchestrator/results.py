"""Result transformers: what `GET /jobs/:id/results` hands a client for each published result.

A published result says where the compute node put the results; a client needs something it can
fetch. As in Bacalhau:
- `local`: the compute node's URL, returned as a `urlDownload` spec.
- `s3`: presigned with the orchestrator's own credentials (`Publishers.Types.S3.PreSignedURLExpiration`),
  returned as `s3PreSigned` with the S3 fields plus `PreSignedURL`, so the user needs no AWS credentials.
  When presigning is disabled, or impossible (an `Encoding: plain` prefix, no credentials here), the
  spec is returned as it is and `job get` falls back to the user's own credentials.
- everything else (`ipfs` with its CID) as it is.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from bacalhau.models import constants as c
from bacalhau.models.job import SpecConfig

log = logging.getLogger(__name__)


class ResultTransformer(Protocol):
    async def transform(self, result: SpecConfig) -> SpecConfig:
        """Return the spec a client should download `result` from. Never raises: falls back to `result`."""
        ...


class LocalResultTransformer:
    """`local` results become `urlDownload` specs of the compute node's URL."""

    async def transform(self, result: SpecConfig) -> SpecConfig:
        """Rewrite a local result; leave every other one alone."""
        url = result.param("URL")
        if result.is_type(c.PUBLISHER_LOCAL) and isinstance(url, str):
            return SpecConfig(Type=c.STORAGE_URL, Params={"URL": url})
        return result


class S3ResultSigner:
    """`s3` results (gzip archives) become `s3PreSigned` specs carrying a presigned GET URL."""

    def __init__(self, *, expires_s: int) -> None:
        self._expires_s = expires_s

    async def transform(self, result: SpecConfig) -> SpecConfig:
        """Presign one archive object; a plain (folder) result or a signing failure is returned as is."""
        if not result.is_type(c.PUBLISHER_S3):
            return result
        bucket, key = result.param("Bucket"), result.param("Key")
        if not isinstance(bucket, str) or not isinstance(key, str) or not key or key.endswith("/"):
            return result  # a folder of objects has no single URL
        from bacalhau.s3.presign import presign_get  # botocore is heavy: only loaded once S3 is in use

        try:
            # Building a botocore client takes tens of milliseconds: keep it off the event loop.
            url = await asyncio.to_thread(
                presign_get,
                bucket,
                key,
                str(result.param("Endpoint") or ""),
                str(result.param("Region") or ""),
                self._expires_s,
            )
        except Exception as exc:  # no credentials here: the client can still use its own
            log.info("could not presign s3://%s/%s: %s", bucket, key, exc)
            return result
        return SpecConfig(Type=c.STORAGE_S3_PRESIGNED, Params={**result.params, "PreSignedURL": url})


class ChainedTransformer:
    """Applies transformers in order; what one returns is what the next sees."""

    def __init__(self, *transformers: ResultTransformer) -> None:
        self._transformers = transformers

    async def transform(self, result: SpecConfig) -> SpecConfig:
        """Run every transformer over the result."""
        for transformer in self._transformers:
            result = await transformer.transform(result)
        return result


def result_transformer(*, presign_s3: bool, presign_expires_s: int) -> ResultTransformer:
    """The orchestrator's transformer chain, from `Publishers.Types.S3` settings."""
    steps: list[ResultTransformer] = [LocalResultTransformer()]
    if presign_s3:
        steps.append(S3ResultSigner(expires_s=presign_expires_s))
    return ChainedTransformer(*steps)
