"""Where an object or a prefix lives in S3, read from a SpecConfig's params (CONTRACT.md sections 1.6, 1.7).

Param names are Bacalhau's (`Bucket`, `Key`, `Filter`, `Region`, `Endpoint`, `VersionID`, `ChecksumSHA256`),
looked up case-insensitively as Bacalhau's decoders do. A Key that is empty, ends with `/` or ends with `*`
names a prefix (everything under it); any other Key names one object. Credentials are never params: the
node reads them from its own environment.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bacalhau.models.errors import FieldError, ValidationFailed
from bacalhau.models.job import SpecConfig

_COMPOSITE_CHECKSUM_RE = re.compile(r"(?P<digest>[A-Za-z0-9+/=]+)-(?P<parts>[0-9]+)")


@dataclass(frozen=True)
class S3Location:
    """A bucket plus a key (one object) or a prefix, and how to reach and check it."""

    bucket: str
    key: str = ""
    endpoint: str = ""
    region: str = ""
    version_id: str = ""
    checksum_sha256: str = ""
    filter: str = ""

    @property
    def is_prefix(self) -> bool:
        """True when the Key names everything under a prefix rather than one object."""
        return self.key == "" or self.key.endswith(("/", "*"))

    @property
    def prefix(self) -> str:
        """The listing prefix: the Key without its trailing `*` (only meaningful when `is_prefix`)."""
        return self.key.removesuffix("*")

    @property
    def uri(self) -> str:
        """`s3://bucket/key`, for messages."""
        return f"s3://{self.bucket}/{self.key}"

    def matches(self, key: str) -> bool:
        """True when `key` passes the Filter (a regex searched anywhere in the key, as Go's MatchString)."""
        return not self.filter or re.search(self.filter, key) is not None


def is_composite_checksum(value: str) -> bool:
    """True for a multipart upload's checksum of part checksums (`<base64>-<parts>`), not a whole-object one."""
    return _COMPOSITE_CHECKSUM_RE.fullmatch(value) is not None


def source_location(spec: SpecConfig, *, field_prefix: str = "Source.Params.") -> S3Location:
    """The S3Location of an `s3` input source. Raises ValidationFailed listing every bad param."""
    errors: list[FieldError] = []
    location = _common(spec, field_prefix, errors)
    version_id = _string(spec, "VersionID", field_prefix, errors)
    checksum = _string(spec, "ChecksumSHA256", field_prefix, errors)
    filter_ = _string(spec, "Filter", field_prefix, errors)
    if checksum and not _valid_sha256(checksum):
        errors.append(
            FieldError(
                f"{field_prefix}ChecksumSHA256",
                f"{checksum!r} is not a base64-encoded SHA-256 digest (as in S3's ChecksumSHA256 field)",
            )
        )
    if filter_:
        try:
            re.compile(filter_)
        except re.error as exc:
            errors.append(FieldError(f"{field_prefix}Filter", f"{filter_!r} is not a valid regular expression: {exc}"))
    if version_id and location.is_prefix:
        errors.append(FieldError(f"{field_prefix}VersionID", "a VersionID needs a Key naming one object, not a prefix"))
    if errors:
        raise ValidationFailed(errors, hint="see the s3 input source params in the job spec")
    return S3Location(
        bucket=location.bucket,
        key=location.key,
        endpoint=location.endpoint,
        region=location.region,
        version_id=version_id,
        checksum_sha256=checksum,
        filter=filter_,
    )


def publisher_location(spec: SpecConfig, *, field_prefix: str = "Publisher.Params.") -> S3Location:
    """The S3Location (Bucket, Key template, Endpoint, Region) of an `s3` publisher. Key is required."""
    errors: list[FieldError] = []
    location = _common(spec, field_prefix, errors)
    if not location.key.strip() and not any(e.path.endswith(".Key") for e in errors):
        errors.append(FieldError(f"{field_prefix}Key", "required: the object key (or prefix) to publish results to"))
    if errors:
        raise ValidationFailed(errors, hint="see the s3 publisher params in the job spec")
    return location


def _common(spec: SpecConfig, field_prefix: str, errors: list[FieldError]) -> S3Location:
    bucket = _string(spec, "Bucket", field_prefix, errors).strip()
    if not bucket and not any(e.path.endswith(".Bucket") for e in errors):
        errors.append(FieldError(f"{field_prefix}Bucket", "required: the name of the S3 bucket"))
    key = _string(spec, "Key", field_prefix, errors)
    endpoint = _string(spec, "Endpoint", field_prefix, errors).strip().rstrip("/")
    region = _string(spec, "Region", field_prefix, errors).strip()
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            errors.append(
                FieldError(
                    f"{field_prefix}Endpoint",
                    f"{endpoint!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:9000)",
                )
            )
    return S3Location(bucket=bucket, key=key, endpoint=endpoint, region=region)


def _string(spec: SpecConfig, name: str, field_prefix: str, errors: list[FieldError]) -> str:
    value: Any = spec.param(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(FieldError(f"{field_prefix}{name}", f"must be a string, not {type(value).__name__}"))
        return ""
    return value


def _valid_sha256(value: str) -> bool:
    match = _COMPOSITE_CHECKSUM_RE.fullmatch(value)
    digest = match.group("digest") if match else value
    try:
        return len(base64.b64decode(digest, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False
