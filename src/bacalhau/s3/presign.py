"""Presigned GET URLs: a time-limited link to one object that needs no credentials to follow.

Signing is local computation with the node's credentials (botocore's normal chain): no request is made
to S3, so a URL for a missing object is still produced; following it then answers 404.
"""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from bacalhau.models.errors import ErrorCode, StorageError
from bacalhau.s3.client import resolve_region
from bacalhau.s3.errors import CREDENTIALS_HINT

MAX_EXPIRES_S = 7 * 24 * 3600  # SigV4's limit


def presign_get(bucket: str, key: str, endpoint: str, region: str, expires_s: int, *, version_id: str = "") -> str:
    """A SigV4 presigned GET URL for `bucket`/`key` valid for `expires_s` seconds (1 s to 7 days).

    `endpoint` '' means AWS S3; any other endpoint is addressed path-style. Raises StorageError when the
    node has no credentials to sign with or the arguments are unusable.
    """
    if not bucket:
        raise StorageError("cannot presign a URL without a bucket")
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise StorageError(f"cannot presign a URL valid for {expires_s}s: it must be between 1s and 7 days")
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint else "auto"},
        region_name=resolve_region(region),
    )
    try:
        session = botocore.session.get_session()
        client = session.create_client("s3", endpoint_url=endpoint or None, config=config)
        if session.get_credentials() is None:
            # botocore would silently produce an unsigned URL; that is never what a caller wants.
            raise StorageError(
                f"cannot presign s3://{bucket}/{key}: no AWS credentials on the node",
                code=ErrorCode.Unauthorized,
                hint=CREDENTIALS_HINT,
            )
        url: str = client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
    except (BotoCoreError, ValueError) as exc:
        raise StorageError(f"cannot presign s3://{bucket}/{key}: {exc}", hint=CREDENTIALS_HINT) from exc
    return url
