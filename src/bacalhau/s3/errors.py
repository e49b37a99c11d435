"""botocore and aiohttp exceptions translated into our errors, with messages a user can act on.

Callers pick the error class (StorageError when reading inputs, PublishError when publishing) and a
subject naming what was being done (`s3 input 'data'`). Missing buckets, missing objects and refused
credentials are final (`retryable=False`); an unreachable endpoint, a broken connection, throttling
and 5xx answers may pass, so they are `retryable=True`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)

from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.s3.location import S3Location

E = TypeVar("E", bound=BacalhauError)

CREDENTIALS_HINT = (
    "the node reads AWS credentials from its own environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
    "AWS_SESSION_TOKEN, AWS_PROFILE or an instance role), never from the job"
)
_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_THROTTLE_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable"})
_NETWORK_ERRORS = (ConnectionClosedError, ResponseStreamingError, aiohttp.ClientError, asyncio.TimeoutError)


@contextmanager
def translated(error_type: type[E], *, subject: str, location: S3Location, endpoint_url: str) -> Iterator[None]:
    """Re-raise botocore/aiohttp exceptions from the block as `error_type` (`raise ... from exc`).

    Our own errors pass through untouched; so does anything else (local OSErrors are the caller's to word).
    """
    try:
        yield
    except BacalhauError:
        raise
    except (BotoCoreError, ClientError, *_NETWORK_ERRORS) as exc:
        raise translate(exc, error_type, subject=subject, location=location, endpoint_url=endpoint_url) from exc


def translate(exc: BaseException, error_type: type[E], *, subject: str, location: S3Location, endpoint_url: str) -> E:
    """The error of `error_type` that says what `exc` means for `location`."""
    if isinstance(exc, ClientError):
        return _client_error(exc, error_type, subject, location, endpoint_url)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return error_type(
            f"{subject}: no usable AWS credentials on the node for {location.uri} ({exc})",
            code=ErrorCode.Unauthorized,
            hint=CREDENTIALS_HINT,
        )
    if isinstance(exc, ProfileNotFound):
        return error_type(f"{subject}: {exc}", code=ErrorCode.ConfigurationError, hint=CREDENTIALS_HINT)
    if isinstance(exc, ReadTimeoutError):
        return error_type(
            f"{subject}: S3 endpoint {endpoint_url} stopped answering while transferring {location.uri}",
            code=ErrorCode.TimeOut,
            retryable=True,
        )
    if isinstance(exc, EndpointConnectionError):  # also ConnectTimeoutError and proxy failures
        return error_type(
            f"{subject}: cannot reach S3 endpoint {endpoint_url} ({exc})",
            code=ErrorCode.NetworkFailure,
            hint="check the Endpoint param (or the node's network) and that the S3 service is up",
            retryable=True,
        )
    if isinstance(exc, _NETWORK_ERRORS):
        return error_type(
            f"{subject}: the connection to S3 endpoint {endpoint_url} failed while transferring "
            f"{location.uri}: {type(exc).__name__}: {exc}",
            code=ErrorCode.NetworkFailure,
            retryable=True,
        )
    return error_type(f"{subject}: S3 request for {location.uri} failed: {exc}")


def _client_error(exc: ClientError, error_type: type[E], subject: str, location: S3Location, endpoint_url: str) -> E:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    detail = str(error.get("Message", "") or "").strip()
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "NoSuchBucket":
        return error_type(
            f"{subject}: bucket {location.bucket!r} does not exist"
            + (f" at {endpoint_url}" if location.endpoint else ""),
            code=ErrorCode.NotFound,
            hint="check the Bucket name, and the Endpoint and Region it lives in",
        )
    if code in _NOT_FOUND_CODES:
        return error_type(
            f"{subject}: no object matches {location.uri}",
            code=ErrorCode.NotFound,
            hint="check the Key; end it with `/` or `*` to fetch everything under a prefix",
        )
    if code == "NoSuchVersion" or (location.version_id and code == "InvalidArgument" and "version" in detail.lower()):
        return error_type(
            f"{subject}: version {location.version_id!r} of {location.uri} does not exist",
            code=ErrorCode.NotFound,
            hint="check the VersionID param",
        )
    if code in _ACCESS_CODES or status in (401, 403):
        return error_type(
            f"{subject}: access denied to {location.uri} ({code or status}: {detail or 'forbidden'}); "
            "check the node's AWS credentials",
            code=ErrorCode.Forbidden,
            hint=CREDENTIALS_HINT,
        )
    if status >= 500 or code in _THROTTLE_CODES:
        return error_type(
            f"{subject}: S3 endpoint {endpoint_url} answered {code or status}" + (f": {detail}" if detail else ""),
            code=ErrorCode.ServiceUnavailable,
            retryable=True,
        )
    return error_type(f"{subject}: S3 request for {location.uri} failed: {code or status}: {detail or exc}")
