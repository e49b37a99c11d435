"""The S3 fixtures (a real SeaweedFS, node credentials, a fresh bucket) for the tests in this folder."""

from __future__ import annotations

from tests.s3.fixtures import bucket, s3_env, seaweed

__all__ = ["bucket", "s3_env", "seaweed"]
